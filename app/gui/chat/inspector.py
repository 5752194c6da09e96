"""The prompt inspector: the exact text sent for the last reply, part by part, with counts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.gui.chat.lore_trace_table import LoreTraceTable


def _plain_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    return label


class PromptInspector(QDialog):
    def __init__(self, prompt, n_ctx: int, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Prompt inspector"))
        self.resize(760, 640)
        lay = QVBoxLayout(self)
        summary = self.tr("{0} tokens of a {1}-token context").format(prompt.tokens, n_ctx)
        if prompt.dropped_messages:
            summary += self.tr(" · {0} older messages left out").format(prompt.dropped_messages)
        if prompt.lore:
            summary += self.tr(" · lore: {0}").format(", ".join(prompt.lore))
        lay.addWidget(_plain_label(summary))  # lore entry names come from the card
        lay.addWidget(self._parts_table(prompt.parts))
        trace = getattr(prompt, "lore_trace", None) or []
        self.lore_table = LoreTraceTable(trace) if trace else None
        if self.lore_table is not None:
            fired = sum(1 for t in trace if t.fired)
            lay.addWidget(
                _plain_label(self.tr("Lore: {0} of {1} entries fired").format(fired, len(trace)))
            )
            lay.addWidget(self.lore_table)
        self.text = QPlainTextEdit(prompt.text)
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setAccessibleName(self.tr("Prompt text"))
        lay.addWidget(self.text, 1)
        for warning in prompt.warnings:
            lay.addWidget(_plain_label("⚠ " + warning))  # may quote a template's error
        unknown = getattr(prompt, "unknown_macros", None) or []
        self.unknown_label = None
        if unknown:  # left as written: a typo, or a macro Parlor does not know
            self.unknown_label = _plain_label(
                self.tr("Unknown macros, sent as written: {0}").format(", ".join(unknown))
            )
            lay.addWidget(self.unknown_label)
        banned = getattr(prompt, "banned_words", None) or []
        if banned:
            lay.addWidget(
                _plain_label(
                    self.tr("Banned words (taken out of the prompt, not enforced): {0}").format(
                        ", ".join(banned)
                    )
                )
            )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def _parts_table(self, parts) -> QTableWidget:
        table = QTableWidget(len(parts), 2)
        table.setHorizontalHeaderLabels([self.tr("Part"), self.tr("Tokens")])
        for row, part in enumerate(parts):
            table.setItem(row, 0, QTableWidgetItem(part.name))
            table.setItem(row, 1, QTableWidgetItem(str(part.tokens)))
        table.horizontalHeader().setStretchLastSection(True)
        table.setMaximumHeight(30 + 26 * min(len(parts), 8))
        return table
