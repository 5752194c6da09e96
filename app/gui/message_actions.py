"""What the user can do to one message: copy, edit, swipe, branch, delete."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QApplication,
    QMenu,
)

from app.core.store import StoreError


class MessageActions:
    """Mixed into MainWindow; uses its widgets, controller, worker and context."""

    def _message_at(self, row: int):
        messages = self.chat_model.messages()
        offset = len(messages) - self.chat_model.rowCount()
        return messages[offset + row] if 0 <= row < self.chat_model.rowCount() else None

    def _message_menu(self, pos) -> None:
        msg = self._message_at(self.chat_view.indexAt(pos).row())
        if msg is None:
            return
        menu = QMenu(self)
        menu.addAction(self.tr("Copy"), lambda: QApplication.clipboard().setText(msg.text))
        menu.addAction(self.tr("Edit"), lambda: self.message_ops.edit(msg.id))
        if msg.sibling_count > 1:
            menu.addAction(self.tr("Previous swipe"), lambda: self.controller.swipe(msg.id, -1))
            menu.addAction(self.tr("Next swipe"), lambda: self.controller.swipe(msg.id, +1))
        menu.addAction(self.regenerate_action)
        menu.addAction(self.continue_action)
        menu.addAction(
            self.tr("Branch here (a new chat up to this message)"), lambda: self.branch_here(msg.id)
        )
        menu.addSeparator()
        menu.addAction(
            self.tr("Delete (and what follows)"), lambda: self.message_ops.delete(msg.id)
        )
        menu.popup(self.chat_view.viewport().mapToGlobal(pos))
        self._last_menu = menu

    def branch_here(self, message_id: int) -> None:
        """Start a new chat holding the path up to `message_id`, like SillyTavern's branch."""
        if self.controller.busy:
            return
        try:
            chat = self.ctx.store.chats.branch_from(message_id)
        except StoreError as exc:
            self._show_error(str(exc))
            return
        self._open_chat(chat)

    def edit_message(self, msg) -> None:
        """Edit in place: the bubble becomes an editor (Enter saves, Esc cancels)."""
        self.message_ops.edit(msg.id)

    def _edit_last_user_message(self) -> None:
        users = [m for m in self.chat_model.messages() if m.role == "user"]
        if users and not self.controller.busy:
            self.edit_message(users[-1])

    def _swipe_row(self, row: int, step: int) -> None:
        msg = self._message_at(row)
        if msg is not None:
            self.controller.swipe(msg.id, step)

    def _swipe_last(self, step: int) -> None:
        messages = self.chat_model.messages()
        if messages and messages[-1].role == "assistant":
            self.controller.swipe(messages[-1].id, step)

    def _impersonate(self) -> None:
        self.composer.clear()
        self.controller.impersonate()

    def send(self, text: str) -> None:
        if not self.controller.send(text):
            self.composer.setPlainText(text)  # nothing is lost when sending was refused

    def _on_rows_inserted(self, _parent, _first: int, last: int) -> None:
        if last == self.chat_model.rowCount() - 1:  # a new message, not an earlier page
            self.chat_view.scrollToBottom()

    def _maybe_load_earlier(self, value: int) -> None:
        """Near the top of a long chat: prepend a page and keep the reader's place."""
        bar = self.chat_view.verticalScrollBar()
        if value > 40 or not self.chat_model.has_earlier():
            return
        old_max = bar.maximum()
        self.chat_model.load_earlier()
        self.chat_view.doItemsLayout()
        bar.setValue(value + bar.maximum() - old_max)

    def _follow_stream(self, *_args) -> None:
        bar = self.chat_view.verticalScrollBar()
        if bar.maximum() - bar.value() < 80:  # only follow a reader who is at the bottom
            self.chat_view.scrollToBottom()
