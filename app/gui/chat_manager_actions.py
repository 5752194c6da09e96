"""The chat manager and personas, as seen from the main window."""

from __future__ import annotations

from app.gui.chat.chats_dialog import ChatsDialog
from app.gui.personas_dialog import PersonasDialog


class ChatManagerActions:
    """Mixed into MainWindow: needs ctx, controller, header, library, _open_chat, _on_character."""

    def _connect_chat_manager(self) -> None:
        self.header.manage_requested.connect(self.show_chats)
        self.header.persona_chosen.connect(self._choose_persona)
        self.header.personas_requested.connect(self.show_personas)

    def _show_header_personas(self) -> None:
        chat = self.controller.chat_id
        own = self.ctx.store.chats.info(chat)["persona_id"] if chat is not None else None
        self.header.show_personas(self.ctx.store.personas.list(), own)

    def show_chats(self) -> ChatsDialog | None:
        chat = self.controller.chat_id
        if chat is None:
            return None
        dialog = ChatsDialog(self.ctx.store, self.ctx.store.chats.character_of(chat), chat, self)
        dialog.chat_chosen.connect(self._open_chat_anywhere)
        dialog.chats_changed.connect(lambda: self._on_chats_changed(dialog))
        dialog.finished.connect(dialog.deleteLater)
        dialog.show()
        self.chats_dialog = dialog
        return dialog

    def _open_chat_anywhere(self, chat_id: int) -> None:
        """A search hit may be another character's chat: choose that character first."""
        character = self.ctx.store.chats.character_of(chat_id)
        if character != self.library.current_id():
            self.library.select(character)
        self._open_chat(chat_id)

    def _on_chats_changed(self, dialog: ChatsDialog) -> None:
        chat = self.controller.chat_id
        if chat is None or self.controller.busy:
            return
        character = self.ctx.store.chats.character_of(chat)
        if self.ctx.store.chats.info(chat)["deleted_at"] is not None:  # the open chat was trashed
            self._on_character(character)
            dialog.current_chat = self.controller.chat_id
            dialog.reload()
            return
        self.header.show_chats(
            self.controller.card.get("name", ""), self.ctx.store.chats.of_character(character), chat
        )

    def _choose_persona(self, persona_id: int | None) -> None:
        if self.controller.chat_id is None:
            return
        self.ctx.store.personas.set_for_chat(self.controller.chat_id, persona_id)
        if not self.controller.busy:
            self.controller.reload()

    def show_personas(self) -> PersonasDialog:
        dialog = PersonasDialog(self.ctx.store, self)
        dialog.personas_changed.connect(self._on_personas_changed)
        dialog.finished.connect(dialog.deleteLater)
        dialog.show()
        self.personas_dialog = dialog
        return dialog

    def _on_personas_changed(self) -> None:
        self._show_header_personas()
        if not self.controller.busy:
            self.controller.reload()
