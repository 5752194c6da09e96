"""The chat view's model and delegate, aware of who spoke each message in a group chat.

Each reply of a group chat is shown under its speaker's current name and avatar; in a
one-character chat nothing changes (no speakers are set).
"""

from __future__ import annotations

from PySide6.QtGui import QPixmap

from app.core.store import Message
from app.gui.chat.delegate import MessageDelegate
from app.gui.chat.model import ChatModel


class GroupChatModel(ChatModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.speakers: dict[int, str] = {}  # character id -> name, for the open group chat

    def name_of(self, msg: Message) -> str:
        if msg.role == "assistant" and msg.speaker_id in self.speakers:
            return self.speakers[msg.speaker_id]
        return super().name_of(msg)


class GroupMessageDelegate(MessageDelegate):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        # by name, while a group chat is open (None otherwise); a member without a
        # portrait gets its initial, never another member's face
        self.speaker_avatars: dict[str, QPixmap] | None = None

    def _paint_avatar(self, painter, option, bubble, is_user: bool, right: bool, name: str) -> None:
        if is_user or self.speaker_avatars is None:
            return super()._paint_avatar(painter, option, bubble, is_user, right, name)
        own = self.speaker_avatars.get(name)
        shared = self.avatars
        self.avatars = {**shared, "assistant": own}
        try:
            super()._paint_avatar(painter, option, bubble, is_user, right, name)
        finally:
            self.avatars = shared
