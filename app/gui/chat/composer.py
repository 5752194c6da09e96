"""The text box at the bottom: Enter sends, Shift+Enter starts a new line (or the reverse)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QPlainTextEdit


class Composer(QPlainTextEdit):
    submitted = Signal(str)
    edit_last_requested = Signal()  # Up in an empty composer, as in chat apps

    def __init__(self, parent=None, enter_sends: bool = True) -> None:
        super().__init__(parent)
        self.enter_sends = enter_sends
        self.setPlaceholderText(self.tr("Write a message… (Enter sends, Shift+Enter: new line)"))
        self.setAccessibleName(self.tr("Message"))
        self.setTabChangesFocus(True)
        self.document().contentsChanged.connect(self._fit_height)
        self._fit_height()

    def _fit_height(self) -> None:
        """Grow with the text up to about eight lines, then scroll."""
        lines = max(1, min(8, int(self.document().size().height())))
        line_h = self.fontMetrics().lineSpacing()
        self.setFixedHeight(lines * line_h + 2 * int(self.document().documentMargin()) + 8)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Up and not self.toPlainText():
            self.edit_last_requested.emit()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            if shift != self.enter_sends:
                self.submit()
                return
        super().keyPressEvent(event)

    def submit(self) -> None:
        text = self.toPlainText().strip()
        if text:
            self.clear()
            self.submitted.emit(text)
