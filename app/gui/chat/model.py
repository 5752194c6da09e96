"""The messages on a chat's active path, as a Qt list model.

Only the GUI thread touches this model (C6): the generation worker emits text,
the controller appends it here.
"""

from __future__ import annotations

from dataclasses import replace
from enum import IntEnum

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, Qt

from app.core.store import Message


class Roles(IntEnum):
    MESSAGE = Qt.ItemDataRole.UserRole + 1
    ROLE = Qt.ItemDataRole.UserRole + 2
    NAME = Qt.ItemDataRole.UserRole + 3
    STATUS = Qt.ItemDataRole.UserRole + 4
    SWIPE = Qt.ItemDataRole.UserRole + 5
    OUT_OF_CONTEXT = Qt.ItemDataRole.UserRole + 6


PAGE = 60  # messages shown when a chat opens; earlier ones load as the reader scrolls up


class ChatModel(QAbstractListModel):
    """Shows the newest PAGE messages of the path; `load_earlier` prepends older pages.

    Laying out a message costs a text layout, so a 10,000-message chat must not lay out
    them all to open: only what is shown is in the model.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._messages: list[Message] = []
        self._earlier: list[Message] = []
        self._dropped = 0  # the oldest messages the last prompt had no room for
        self.names = {"user": "You", "assistant": "", "system": "System"}

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._messages)

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        # Editable so the view can open the delegate's in-place editor; the delegate, not
        # setData, saves the text (through the controller, into the store).
        return super().flags(index) | Qt.ItemFlag.ItemIsEditable

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._messages):
            return None
        msg = self._messages[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return msg.text
        return {
            Roles.MESSAGE: msg,
            Roles.ROLE: msg.role,
            Roles.NAME: self.name_of(msg),
            Roles.STATUS: msg.status,
            Roles.SWIPE: (msg.sibling_index + 1, msg.sibling_count),
            Roles.OUT_OF_CONTEXT: len(self._earlier) + index.row() < self._dropped,
        }.get(role)

    def name_of(self, msg: Message) -> str:
        """The speaker's name as it was when the message was written (an imported chat's
        `name`, or the persona a Parlor message was sent as); else today's name."""
        for source in (msg.extra, msg.gen_info):
            name = (source or {}).get("name")
            if msg.role == "user" and isinstance(name, str) and name:
                return name
        return self.names.get(msg.role, "")

    def set_out_of_context(self, dropped: int) -> None:
        """Mark the `dropped` oldest messages as no longer in the model's context."""
        if dropped != self._dropped:
            self._dropped = dropped
            if self._messages:
                self.dataChanged.emit(self.index(0), self.index(len(self._messages) - 1))

    def set_messages(self, messages: list[Message]) -> None:
        self.beginResetModel()
        self._earlier, self._messages = list(messages[:-PAGE]), list(messages[-PAGE:])
        self.endResetModel()

    def has_earlier(self) -> bool:
        return bool(self._earlier)

    def load_earlier(self) -> int:
        """Prepend the previous page; returns how many messages were added."""
        page = self._earlier[-PAGE:]
        if not page:
            return 0
        self.beginInsertRows(QModelIndex(), 0, len(page) - 1)
        self._earlier = self._earlier[:-PAGE]
        self._messages[:0] = page
        self.endInsertRows()
        return len(page)

    def messages(self) -> list[Message]:
        """Every message of the path, loaded or not."""
        return self._earlier + self._messages

    def append(self, message: Message) -> None:
        row = len(self._messages)
        self.beginInsertRows(QModelIndex(), row, row)
        self._messages.append(message)
        self.endInsertRows()

    def update_last(self, **changes) -> None:
        """Replace fields of the newest message (the reply being streamed)."""
        if not self._messages:
            return
        self._messages[-1] = replace(self._messages[-1], **changes)
        index = self.index(len(self._messages) - 1)
        self.dataChanged.emit(index, index)

    def append_text(self, piece: str) -> None:
        if self._messages:
            self.update_last(text=self._messages[-1].text + piece)
