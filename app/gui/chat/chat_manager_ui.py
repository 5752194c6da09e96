"""The chat manager and personas, as seen from the main window.

`ChatManagerUi` is owned by the main window: it opens the chats and personas dialogs, keeps
the header's chat and persona lists true, and asks the window to open a chat or a character
through its `open_chat` / `open_character` signals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from app.core.store import Store
from app.gui.chat.chats_dialog import ChatsDialog
from app.gui.personas_dialog import PersonasDialog

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow


class ChatManagerUi(QObject):
    open_chat = Signal(int)  # a chat of the current character
    open_character = Signal(int)  # the character's newest chat

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._controller = window.controller
        self._header, self._library = window.header, window.library
        self.chats_dialog: ChatsDialog | None = None
        self.personas_dialog: PersonasDialog | None = None
        self._header.manage_requested.connect(self.show_chats)
        self._header.persona_chosen.connect(self._choose_persona)
        self._header.personas_requested.connect(self.show_personas)

    @property
    def _store(self) -> Store:
        return self._window.ctx.store  # a restored backup replaces the context's store

    def show_header_personas(self) -> None:
        chat = self._controller.chat_id
        own = self._store.chats.persona_of(chat) if chat is not None else None
        self._header.show_personas(self._store.personas.list(), own)

    def show_chats(self) -> ChatsDialog | None:
        chat = self._controller.chat_id
        if chat is None:
            return None
        dialog = ChatsDialog(self._store, self._store.chats.character_of(chat), chat, self._window)
        dialog.chat_chosen.connect(self._open_chat_anywhere)
        dialog.chats_changed.connect(lambda: self._on_chats_changed(dialog))
        dialog.finished.connect(dialog.deleteLater)
        dialog.show()
        self.chats_dialog = dialog
        return dialog

    def _open_chat_anywhere(self, chat_id: int) -> None:
        """A search hit may be another character's chat: choose that character first."""
        character = self._store.chats.character_of(chat_id)
        if character != self._library.current_id():
            self._library.select(character)
        self.open_chat.emit(chat_id)

    def _on_chats_changed(self, dialog: ChatsDialog) -> None:
        chat = self._controller.chat_id
        if chat is None or self._controller.busy:
            return
        character = self._store.chats.character_of(chat)
        if self._store.chats.info(chat).deleted_at is not None:  # the open chat was trashed
            self.open_character.emit(character)
            dialog.current_chat = self._controller.chat_id
            dialog.reload()
            return
        self._header.show_chats(
            self._controller.card.get("name", ""), self._store.chats.of_character(character), chat
        )

    def _choose_persona(self, persona_id: int | None) -> None:
        if self._controller.chat_id is None:
            return
        self._store.personas.set_for_chat(self._controller.chat_id, persona_id)
        if not self._controller.busy:
            self._controller.reload()

    def show_personas(self) -> PersonasDialog:
        dialog = PersonasDialog(self._store, self._window)
        dialog.personas_changed.connect(self._on_personas_changed)
        dialog.finished.connect(dialog.deleteLater)
        dialog.show()
        self.personas_dialog = dialog
        return dialog

    def _on_personas_changed(self) -> None:
        self.show_header_personas()
        if not self._controller.busy:
            self._controller.reload()
