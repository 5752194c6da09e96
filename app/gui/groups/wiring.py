"""Connects group chats to the main window: the groups under the library, the member list
beside the chat, each reply's avatar, the header's chat list, and typing ending auto mode.

The window makes its `GroupWiring` once its widgets exist (before it opens the first chat)
and calls `place()` after `wire_chat`; its own code asks this object three things (the
header's chats, a new chat, a card edit) and otherwise knows nothing of groups.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QSplitter

from app.core.store import StoreError
from app.gui.groups.avatar import member_portraits
from app.gui.groups.member_bar import MemberBar
from app.gui.groups.panel import GroupPanel


class GroupWiring(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.controller = window.controller
        self.panel = GroupPanel(window.ctx.store)
        self.bar = MemberBar(self.controller)
        self.bar.composer = window.composer
        self.panel.group_chosen.connect(self.open_group)
        self.panel.groups_changed.connect(self._on_groups_changed)
        self.panel.status_message.connect(lambda text: window.statusBar().showMessage(text, 10000))
        self.controller.group_changed.connect(self._show_speakers)
        window.composer.textChanged.connect(self._on_typing)
        window.library.characters_changed.connect(self.panel.refresh)

    def place(self) -> None:
        """The group list under the characters; the member list right of the chat."""
        w = self.window
        outer = w.centralWidget()
        sizes = outer.sizes()
        left = QSplitter(Qt.Orientation.Vertical)
        outer.insertWidget(0, left)
        left.addWidget(w.library)
        left.addWidget(self.panel)
        left.setSizes([500, 200])
        outer.setSizes(sizes)
        column = w.chat_view.parentWidget().layout()
        at = column.indexOf(w.chat_view)
        beside = QSplitter(Qt.Orientation.Horizontal)
        column.insertWidget(at, beside, 1)
        beside.addWidget(w.chat_view)
        beside.addWidget(self.bar)
        beside.setStretchFactor(0, 1)
        beside.setCollapsible(0, False)
        beside.setCollapsible(1, True)  # a narrow window may fold the member list away
        self.bar.refresh()
        self._show_speakers()
        # the portrait pane shows one card: in a group chat the member list stands for it
        self.controller.group_changed.connect(self._show_portrait)
        self._show_portrait()

    def _show_portrait(self) -> None:
        self.window.portrait_panel.setVisible(self.controller.group_chat is None)

    # --- what the window asks -----------------------------------------------------------
    def header_chats(self, chat_id: int) -> tuple[str, list]:
        """The header's title and chat list: the group's chats in a group chat."""
        store = self.window.ctx.store
        group_id = store.groups.group_of_chat(chat_id)
        if group_id is None:
            return (
                self.controller.card.get("name", ""),
                store.chats.of_character(store.chats.character_of(chat_id)),
            )
        return store.groups.get(group_id).name, store.groups.chats(group_id)

    def new_chat(self) -> bool:
        """A new chat of the open group; False when no group chat is open."""
        chat = self.controller.group_chat
        if chat is None or self.controller.busy:
            return False
        self.window._open_chat(self.controller.new_group_chat(chat.group.id))
        return True

    def refresh_open_chat(self) -> bool:
        """A card was edited: names and avatars of the open group chat. False when no
        group chat is open (the window refreshes its character)."""
        if self.controller.group_chat is None or self.controller.busy:
            return False
        self.controller.reload()
        self.controller.group_changed.emit()
        return True

    # --- groups -------------------------------------------------------------------------
    def open_group(self, group_id: int) -> None:
        if self.controller.busy:
            return
        store = self.window.ctx.store
        try:
            chats = store.groups.chats(group_id)
            chat_id = chats[0].id if chats else self.controller.new_group_chat(group_id)
        except (StoreError, ValueError) as exc:
            self.window._show_error(str(exc))
            return
        self.window._open_chat(chat_id)

    def _on_groups_changed(self) -> None:
        chat = self.controller.group_chat
        if chat is None:
            return
        if store_group_gone(self.window.ctx.store, chat.group.id):
            character = self.window.library.current_id()
            if character is not None:  # the deleted group's chat is closed
                self.window._on_character(character)
            return
        self.refresh_open_chat()

    def _show_speakers(self) -> None:
        delegate = self.window.chat_view.itemDelegate()
        chat = self.controller.group_chat
        if chat is None:
            delegate.speaker_avatars = None
        else:
            faces = member_portraits(self.window.ctx.store, chat.group.id)
            delegate.speaker_avatars = {
                m.name: faces[m.character_id] for m in chat.group.members if faces[m.character_id]
            }
        self.window.chat_view.viewport().update()

    def _on_typing(self) -> None:
        if self.controller.auto_running and self.window.composer.toPlainText():
            self.controller.stop_auto()


def store_group_gone(store, group_id: int) -> bool:
    return all(g.id != group_id for g in store.groups.all())
