"""The trash as the main window owns it: restoring, and deleting for good in the background
(the window itself is trash_dialog.py).

Deleting in the library or the chat manager only moves a thing here, with an Undo offer;
this window is where it comes back later or goes for good. Going for good is two parts
(core/store/purge.py): `store.chats.delete_forever` records it and hides the messages in one
short transaction on the GUI thread, so the items leave the list at once, and `TrashUi`'s
job removes the rows on Qt's thread pool (C9) on a connection of its own, because a trashed
100,000-message chat takes seconds. The job belongs to the window, not to the dialog:
closing the dialog leaves it running, closing the window stops it between batches, and the
next start finishes what was recorded (`TrashUi` looks at once).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Signal
from shiboken6 import isValid

from app.core.store import Store, StoreError
from app.core.store.purge import remove_going
from app.gui.models.jobs import JobSlot
from app.gui.trash_dialog import TrashDialog
from app.gui.trash_items import TrashItem

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

log = logging.getLogger(__name__)


class TrashUi(QObject):
    """The trash as the main window owns it: the dialog, restoring (and showing what came
    back in the window), and the background removal of what was deleted for good."""

    removed = Signal(int)  # a removal finished: how many chats and characters went
    failed = Signal(str)
    busy_changed = Signal(bool)
    progress = Signal(int)  # messages removed so far

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._slot = JobSlot()
        self.dialog: TrashDialog | None = None
        window.installEventFilter(self)  # closing the window stops the job between batches
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        try:
            if self.store.chats.removal_pending():  # an exit cut the last removal short
                self.start_removal()
        except StoreError as exc:
            log.warning("could not look for an unfinished removal: %s", exc)

    @property
    def store(self) -> Store:
        return self._window.ctx.store  # a restored backup replaces the context's store

    @property
    def busy(self) -> bool:
        return self._slot.busy

    def show(self) -> TrashDialog:
        if self.dialog is None or not isValid(self.dialog):
            self.dialog = TrashDialog(self, self._window)
            self.dialog.finished.connect(self.dialog.deleteLater)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def restore(self, item: TrashItem) -> None:
        """Back from the trash (a chat with its character, if that is in the trash too), and
        shown where it belongs: the library, the chat header, an open chat manager."""
        if item.is_character:
            self.store.characters.restore(item.entry.id)
        else:
            self.store.chats.restore(item.entry.id)
        window = self._window
        window.library.reload()  # keeps the character chosen: no chat is reopened
        chat = window.controller.chat_id
        if chat is not None:
            window.header.show_chats(*window.groups.header_chats(chat), chat)
        chats_dialog = window.chats.chats_dialog
        if chats_dialog is not None and isValid(chats_dialog):
            chats_dialog.reload()

    def delete_forever(self, items: list[TrashItem]) -> int:
        """Record the removal (a StoreError leaves everything as it was), then remove it
        in the background. Returns how many items it marked."""
        chats = [i.entry.id for i in items if not i.is_character]
        characters = [i.entry.id for i in items if i.is_character]
        marked = self.store.chats.delete_forever(chats, characters)
        self._end_undo_offers()
        self.start_removal()
        return marked

    def _end_undo_offers(self) -> None:
        """An Undo offered for something now gone for good could only fail."""
        self._window.library.undo_bar.hide()
        chats_dialog = self._window.chats.chats_dialog
        if chats_dialog is not None and isValid(chats_dialog):
            chats_dialog.undo_bar.hide()

    def start_removal(self) -> None:
        """Remove what is recorded; a removal already running stops after its batch and this
        one takes over (it removes everything recorded, its own rows and the other's)."""
        path = self.store.path
        self._slot.start(
            lambda report, cancel: remove_going(path, cancel, report),
            on_success=self._on_removed,
            on_failure=self._on_failed,
            on_cancel=lambda _message: self._idle(),
            on_progress=self.progress.emit,
            name="remove deleted for good",
        )
        self.busy_changed.emit(True)

    def _idle(self) -> None:
        self._slot.job = None  # `busy` is false from now, whatever the pool thread does
        self.busy_changed.emit(False)

    def _on_removed(self, removed: int) -> None:
        self._idle()
        self.removed.emit(removed)

    def _on_failed(self, message: str) -> None:
        self._idle()  # what is recorded stays hidden: the next start tries again
        log.warning("deleting for good did not finish: %s", message)
        self.failed.emit(message)

    def shutdown(self, timeout: float = 5.0) -> None:
        self._slot.shutdown(timeout)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self._window and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False
