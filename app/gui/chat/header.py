"""Above the chat: which of the character's chats is open, a new chat, the prompt inspector."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget


class ChatHeader(QWidget):
    chat_selected = Signal(int)
    new_chat_requested = Signal()
    inspect_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)  # card names are untrusted text
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.chats = QComboBox()
        self.chats.setAccessibleName(self.tr("Chats with this character"))
        self.chats.setMinimumContentsLength(24)
        self.new_button = QPushButton(self.tr("New chat"))
        self.inspect_button = QPushButton(self.tr("Prompt…"))
        self.inspect_button.setToolTip(self.tr("Show the exact prompt sent for the last reply"))
        lay.addWidget(self.title)
        lay.addStretch(1)
        for w in (self.chats, self.new_button, self.inspect_button):
            lay.addWidget(w)
        self.chats.activated.connect(lambda i: self.chat_selected.emit(self.chats.itemData(i)))
        self.new_button.clicked.connect(self.new_chat_requested)
        self.inspect_button.clicked.connect(self.inspect_requested)

    def show_chats(self, name: str, rows, current: int | None) -> None:
        """`rows`: the character's chats, most recently used first."""
        self.title.setText(name)
        self.chats.clear()
        for row in rows:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["last_used_at"]))
            self.chats.addItem(row["title"], row["id"])
            self.chats.setItemData(self.chats.count() - 1, self.tr("Last used {0}").format(when),
                                   Qt.ItemDataRole.ToolTipRole)
        index = self.chats.findData(current)
        self.chats.setCurrentIndex(max(index, 0))
