"""What the user does to one message from the chat view: the hover buttons, editing in
place, deleting with Undo. The main window builds one and puts its undo bar in the layout."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QListView
from shiboken6 import isValid

from app.gui.chat.controller import ChatController
from app.gui.chat.model import ChatModel
from app.gui.undo_bar import make_undo_bar

UNDO_MS = 30_000  # as long as the character library's Undo


class MessageOps(QObject):
    def __init__(
        self,
        view: QListView,
        model: ChatModel,
        controller: ChatController,
        branch: Callable[[int], None],
        notify: Callable[[str], None],
    ) -> None:
        super().__init__(view)
        self.view, self.model, self.controller = view, model, controller
        self.branch, self.notify = branch, notify
        self.delegate = view.itemDelegate()
        make_undo_bar(self, self.undo)
        self._timer = QTimer(self, singleShot=True, interval=UNDO_MS, timeout=self.expire)
        self.delegate.action_clicked.connect(self._on_action)
        self.delegate.edit_committed.connect(self.controller.edit)
        self.controller.deleted.connect(self._on_deleted)
        self.controller.chat_opened.connect(lambda _chat: self._hide_undo())
        view.setMouseTracking(True)
        view.viewport().installEventFilter(self)
        view.installEventFilter(self)
        view.selectionModel().currentChanged.connect(lambda *_: self._follow_focus())

    # --- which bubble shows its buttons -----------------------------------------------
    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if not isValid(self.view):  # events still arrive while the window is torn down
            return False
        kind = event.type()
        if obj is self.view.viewport() and kind == QEvent.Type.MouseMove:
            self._set_hover(self.view.indexAt(event.position().toPoint()).row())
        elif obj is self.view.viewport() and kind == QEvent.Type.Leave:
            self._set_hover(-1)
        elif obj is self.view and kind in (QEvent.Type.FocusIn, QEvent.Type.FocusOut):
            self._follow_focus()
        elif obj is self.view and kind == QEvent.Type.KeyPress:
            return self._on_key(event)
        return False

    def _on_key(self, event) -> bool:
        """The focused message's buttons from the keyboard: F2 or E edits, Delete deletes,
        Ctrl+C copies, B branches (the hover buttons show which message is focused)."""
        index = self.view.currentIndex()
        if not index.isValid() or self.delegate.editor is not None:
            return False
        key, mods = event.key(), event.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        name = (
            {
                Qt.Key.Key_F2: "edit",
                Qt.Key.Key_E: "edit",
                Qt.Key.Key_Delete: "delete",
                Qt.Key.Key_B: "branch",
            }.get(key)
            if not ctrl
            else ("copy" if key == Qt.Key.Key_C else None)
        )
        if name is None:
            return False
        self._on_action(index.row(), name)
        return True

    def _follow_focus(self) -> None:
        """Keyboard users get the buttons on the focused message (Tab to the chat, arrows)."""
        if self.view.hasFocus() and self.view.currentIndex().isValid():
            self._set_hover(self.view.currentIndex().row())

    def _set_hover(self, row: int) -> None:
        if row != self.delegate.hover_row:
            old, self.delegate.hover_row = self.delegate.hover_row, row
            for r in (old, row):
                if r >= 0:
                    self.view.update(self.model.index(r))

    # --- actions ----------------------------------------------------------------------
    def _row_of(self, message_id: int) -> int:
        return self.model.row_of(message_id)

    def _on_action(self, row: int, name: str) -> None:
        msg = self.model.message_at(row)  # the pages shown: never the whole path
        if msg is None:
            return
        if name == "edit":
            self.edit(msg.id)
        elif name == "copy":
            QApplication.clipboard().setText(msg.text)
            self.notify(self.tr("Copied the message."))
        elif name in ("regenerate", "retry"):  # retry: a failed last reply, written again
            self.controller.regenerate()
        elif name == "continue":
            self.controller.continue_reply()
        elif name == "branch":
            self.branch(msg.id)
        elif name == "delete":
            self.delete(msg.id)

    def edit(self, message_id: int) -> bool:
        """Turn the message's bubble into an editor (loading its page if need be)."""
        if self.controller.busy:
            return False
        row = self._row_of(message_id)
        while row < 0 and self.model.has_earlier():
            self.model.load_earlier()
            row = self._row_of(message_id)
        if row < 0:
            return False
        index = self.model.index(row)
        self.view.scrollTo(index)
        self.view.edit(index)
        if self.delegate.editor is not None:
            self.delegate.editor.setFocus()
        return self.delegate.editor is not None

    def delete(self, message_id: int) -> int:
        return self.controller.delete(message_id)

    # --- undo -------------------------------------------------------------------------
    def _on_deleted(self, count: int) -> None:
        if count <= 0:
            return
        self.undo_label.setText(
            self.tr("Deleted {0} message(s).").format(count)
            if count != 1
            else self.tr("Deleted a message.")
        )
        self.undo_bar.show()
        self._timer.start()

    def undo(self) -> None:
        self.controller.undo_delete()
        self._hide_undo()

    def expire(self) -> None:
        """The Undo offer is over: delete for good."""
        self.controller.commit_delete()
        self._hide_undo()

    def _hide_undo(self) -> None:
        self._timer.stop()
        self.undo_bar.hide()
