"""The editor a message bubble turns into: Enter saves, Esc cancels, Shift+Enter is a new
line, as in SillyTavern's in-place message editor. The cursor starts at the end; nothing is
selected, so one keystroke cannot replace a long reply."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import QFrame, QPlainTextEdit, QWidget

ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


class MessageEditor(QPlainTextEdit):
    save = Signal()
    cancel = Signal()
    grew = Signal()  # the text needs another height: the row should follow

    def __init__(self, parent: QWidget, message_id: int) -> None:
        super().__init__(parent)
        self.message_id = message_id
        self.started = False
        self.done = False
        self._original = ""
        self._height = 0.0
        self.setAccessibleName(self.tr("Edit message"))
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setTabChangesFocus(True)
        self.document().contentsChanged.connect(self._check_height)

    def start(self, text: str) -> None:
        self._original = text
        self.setPlainText(text)
        self.moveCursor(QTextCursor.MoveOperation.End)
        self.started = True

    def changed(self) -> bool:
        return self.toPlainText() != self._original

    def wanted_height(self) -> float:
        lines = self.document().documentLayout().documentSize().height()
        return lines * self.fontMetrics().lineSpacing() + 16

    def _check_height(self) -> None:
        height = self.wanted_height()
        if height != self._height:
            self._height = height
            self.grew.emit()

    def event(self, event: QEvent) -> bool:
        # Enter and Esc belong to the editor while it is open, not to the window's
        # shortcuts (Esc stops a reply, Ctrl+Enter regenerates).
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in (
            *ENTER_KEYS,
            Qt.Key.Key_Escape,
        ):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Escape:
            self.cancel.emit()
            return
        if event.key() in ENTER_KEYS and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.save.emit()
            return
        if event.key() in ENTER_KEYS:  # Shift+Enter: a new line, not a paragraph break
            self.insertPlainText("\n")
            return
        super().keyPressEvent(event)
