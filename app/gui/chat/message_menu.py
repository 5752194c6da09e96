"""What the user can do to one message from the chat view: the right-click menu, swipes by
key or chevron, branch here, edit the last message, and keeping the view in place while
pages load and replies stream.

`ChatViewActions` is owned by the main window; it declares what it uses in its constructor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QPoint, Signal
from PySide6.QtWidgets import QApplication, QMenu

from app.gui.models.jobs import JobSlot

if TYPE_CHECKING:
    from app.gui.chat.message_ops import MessageOps
    from app.gui.groups.view import GroupChatModel
    from app.gui.main_window import MainWindow


class ChatViewActions(QObject):
    branched = Signal(int)  # the new chat's id: open it
    error = Signal(str)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._model: GroupChatModel = window.chat_model
        self._view, self._controller = window.chat_view, window.controller
        self.ops: MessageOps | None = None  # set once the chat view's wiring exists
        self.menu: QMenu | None = None  # the last menu shown
        self._branch_job = JobSlot()
        self._view.customContextMenuRequested.connect(self.show_menu)
        self._view.itemDelegate().swipe_clicked.connect(self._swipe_row)
        self._model.rowsInserted.connect(self._on_rows_inserted)
        self._model.dataChanged.connect(self._follow_stream)
        self._view.verticalScrollBar().valueChanged.connect(self._maybe_load_earlier)

    def _message_at(self, row: int):
        return self._model.message_at(row)

    def show_menu(self, pos: QPoint) -> None:
        msg = self._message_at(self._view.indexAt(pos).row())
        if msg is None or self.ops is None:
            return
        ops, w = self.ops, self._window
        menu = QMenu(w)
        menu.addAction(self.tr("Copy"), lambda: QApplication.clipboard().setText(msg.text))
        menu.addAction(self.tr("Edit"), lambda: ops.edit(msg.id))
        if msg.sibling_count > 1:
            menu.addAction(self.tr("Previous swipe"), lambda: self._controller.swipe(msg.id, -1))
            menu.addAction(self.tr("Next swipe"), lambda: self._controller.swipe(msg.id, +1))
        menu.addAction(w.regenerate_action)
        menu.addAction(w.continue_action)
        menu.addAction(
            self.tr("Branch here (a new chat up to this message)"), lambda: self.branch_here(msg.id)
        )
        menu.addSeparator()
        menu.addAction(self.tr("Delete (and what follows)"), lambda: ops.delete(msg.id))
        menu.popup(self._view.viewport().mapToGlobal(pos))
        self.menu = menu

    def branch_here(self, message_id: int) -> None:
        """Start a new chat holding the path up to `message_id`, like SillyTavern's branch.

        The copy is written on a background thread: a 100,000-message path is as many rows
        to write, seconds the window must not wait for; `branched` opens it when it is in."""
        if self._controller.busy or self._branch_job.busy:
            return
        store = self._window.ctx.store
        self._branch_job.start(
            lambda _report, _cancel: store.chats.branch_from(message_id),
            on_success=self.branched.emit,
            on_failure=self.error.emit,
            name="branch-here",
            result_wins=True,  # the copy commits as its last step
        )

    def edit_last_user_message(self) -> None:
        """Up in an empty composer: edit in place (Enter saves, Esc cancels)."""
        if self._model.has_later():  # Find left the window up the path: back to the end
            self._controller.reload()
        users = [m for m in self._model.loaded() if m.role == "user"]
        if users and self.ops is not None and not self._controller.busy:
            self.ops.edit(users[-1].id)

    def swipe_last(self, step: int) -> None:
        last = self._model.newest()  # one row, however long the chat
        if last is not None and last.role == "assistant":
            self._controller.swipe(last.id, step)

    def _swipe_row(self, row: int, step: int) -> None:
        msg = self._message_at(row)
        if msg is not None:
            self._controller.swipe(msg.id, step)

    def _on_rows_inserted(self, _parent, _first: int, last: int) -> None:
        # a new message, not an earlier page (nor the next page below a Find hit)
        if last == self._model.rowCount() - 1 and not self._model.paging:
            self._view.scrollToBottom()

    def _maybe_load_earlier(self, value: int) -> None:
        """Near the top of a long chat: prepend a page and keep the reader's place."""
        bar = self._view.verticalScrollBar()
        if value > 40 or not self._model.has_earlier():
            return
        old_max = bar.maximum()
        self._model.load_earlier()
        self._view.doItemsLayout()
        bar.setValue(value + bar.maximum() - old_max)

    def _follow_stream(self, *_args) -> None:
        bar = self._view.verticalScrollBar()
        if bar.maximum() - bar.value() < 80:  # only follow a reader who is at the bottom
            self._view.scrollToBottom()
