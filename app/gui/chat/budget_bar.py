"""A bar showing how the context is spent: card, persona, lore, examples, history, reply."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QWidget

# Which prompt parts go under which label, and the colour each label is drawn in.
GROUPS = (
    ("card", ("system", "description", "personality", "scenario", "post_history"), "#5e81ac"),
    ("persona", ("persona",), "#b48ead"),
    (
        "lore",
        ("lore", "lore_before", "lore_after", "authors_note", "authors_note_before"),
        "#a3be8c",
    ),
    ("examples", ("examples",), "#ebcb8b"),
    ("history", ("history",), "#88c0d0"),
    ("reply", ("reply",), "#d08770"),
)


def group_tokens(parts, reply_reserve: int) -> list[tuple[str, int, str]]:
    """(label, tokens, colour) per group; unknown part names count as card text."""
    known = {name for _label, names, _c in GROUPS for name in names}
    totals = {label: 0 for label, _names, _c in GROUPS}
    for part in parts:
        label = next((lb for lb, names, _c in GROUPS if part.name in names), None)
        totals[label if part.name in known else "card"] += part.tokens
    totals["reply"] = reply_reserve
    return [(label, totals[label], colour) for label, _names, colour in GROUPS]


class BudgetBar(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.segments: list[tuple[str, int, str]] = []
        self.n_ctx = 0
        self.setAccessibleName(self.tr("Context use"))
        self.setMinimumWidth(160)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, 14)

    def show_prompt(self, prompt, n_ctx: int, reply_reserve: int) -> None:
        self.n_ctx = n_ctx
        self.segments = group_tokens(prompt.parts, reply_reserve)
        lines = [f"{label}: {tokens}" for label, tokens, _c in self.segments]
        lines.append(
            self.tr("{0} of {1} tokens").format(sum(t for _l, t, _c in self.segments), n_ctx)
        )
        if prompt.dropped_messages:
            lines.append(
                self.tr("{0} older messages no longer fit").format(prompt.dropped_messages)
            )
        self.setToolTip("\n".join(lines))
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        rect = QRectF(self.rect()).adjusted(1, 2, -1, -2)
        painter.fillRect(rect, self.palette().color(QPalette.ColorRole.AlternateBase))
        x = rect.left()
        for _label, tokens, colour in self.segments:
            width = rect.width() * tokens / self.n_ctx if self.n_ctx else 0
            painter.fillRect(QRectF(x, rect.top(), width, rect.height()), QColor(colour))
            x += width
        painter.setPen(self.palette().color(QPalette.ColorRole.Mid))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect)
