"""Above the chat: which of the character's chats is open, who the user is in it (the
persona), the chat manager, a new chat and the prompt inspector."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from app.gui.plain_text import plain_tip

_EDIT = "edit-personas"


class ElidedLabel(QLabel):
    """A label that shortens its text with … instead of demanding the whole width: a
    200-character card name must not push the character library off the window."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(60)

    def setText(self, text: str) -> None:  # noqa: N802
        self._full = text
        self.setToolTip(plain_tip(text))  # card names are untrusted: never markup
        self._elide()

    def full_text(self) -> str:
        return self._full

    def text(self) -> str:
        return self._full

    def sizeHint(self):  # noqa: N802
        hint = super().sizeHint()
        hint.setWidth(min(self.fontMetrics().horizontalAdvance(self._full) + 8, 480))
        return hint

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(
            self._full, Qt.TextElideMode.ElideRight, max(0, self.width() - 4)
        )
        super().setText(shown)


class ChatHeader(QWidget):
    chat_selected = Signal(int)
    new_chat_requested = Signal()
    inspect_requested = Signal()
    manage_requested = Signal()  # "Chats…": open the chat manager
    persona_chosen = Signal(object)  # a persona id, or None for "the default"
    personas_requested = Signal()  # the combo's last entry: edit the personas

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.title = ElidedLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)  # card names are untrusted text
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.chats = QComboBox()
        self.chats.setAccessibleName(self.tr("Chats with this character"))
        # Room for ten characters, longer titles are elided: the window must fit
        # 800 px beside the library.
        self.chats.setMinimumContentsLength(10)
        self.chats.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.manage_button = QPushButton(self.tr("Chats…"))
        self.manage_button.setToolTip(
            self.tr("Rename, duplicate, delete, export, import and search chats")
        )
        self.persona = QComboBox()
        self.persona.setAccessibleName(self.tr("Your persona in this chat"))
        self.persona.setToolTip(self.tr("Who you are in this chat"))
        self.persona.setMinimumContentsLength(8)
        self.persona.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self._persona_index = 0
        self.new_button = QPushButton(self.tr("New chat"))
        self.inspect_button = QPushButton(self.tr("Prompt…"))
        self.inspect_button.setToolTip(self.tr("Show the exact prompt sent for the last reply"))
        lay.addWidget(self.title, 1)
        for w in (
            self.persona,
            self.chats,
            self.manage_button,
            self.new_button,
            self.inspect_button,
        ):
            lay.addWidget(w)
        self.chats.activated.connect(lambda i: self.chat_selected.emit(self.chats.itemData(i)))
        self.persona.activated.connect(self._on_persona)
        self.manage_button.clicked.connect(self.manage_requested)
        self.new_button.clicked.connect(self.new_chat_requested)
        self.inspect_button.clicked.connect(self.inspect_requested)

    def show_chats(self, name: str, rows, current: int | None) -> None:
        """`rows`: the character's chats, most recently used first."""
        self.title.setText(name)
        self.chats.clear()
        for row in rows:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.last_used_at))
            self.chats.addItem(row.title, row.id)
            self.chats.setItemData(
                self.chats.count() - 1,
                self.tr("Last used {0}").format(when),
                Qt.ItemDataRole.ToolTipRole,
            )
        index = self.chats.findData(current)
        self.chats.setCurrentIndex(max(index, 0))

    def show_personas(self, rows, current_id: int | None) -> None:
        """`rows`: every persona (id, name, is_default); `current_id`: the chat's own choice,
        None when it follows the default."""
        self.persona.clear()
        default = next((r.name for r in rows if r.is_default), None)
        self.persona.addItem(
            self.tr("Default persona ({0})").format(default)
            if default
            else self.tr("Default persona"),
            None,
        )
        for row in rows:
            self.persona.addItem(row.name, row.id)
        self.persona.insertSeparator(self.persona.count())
        self.persona.addItem(self.tr("Edit personas…"), _EDIT)
        self._persona_index = max(self.persona.findData(current_id), 0)
        self.persona.setCurrentIndex(self._persona_index)

    def _on_persona(self, index: int) -> None:
        data = self.persona.itemData(index)
        if data == _EDIT:  # an action, not a choice: keep showing the chat's persona
            self.persona.setCurrentIndex(self._persona_index)
            self.personas_requested.emit()
            return
        self._persona_index = index
        self.persona_chosen.emit(data)
