"""The trash: deleted characters and chats, to restore or to delete for good.

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QEvent, QLocale, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractButton,
    QDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from app.core.store import Store, StoreError
from app.core.store.purge import remove_going
from app.core.store.records import CharacterEntry, ChatListing
from app.gui.icons import set_icon
from app.gui.models.jobs import JobSlot
from app.gui.plain_text import plain_tip
from app.gui.window_state import remember_size

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

log = logging.getLogger(__name__)
ITEM_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class TrashItem:
    """One row of the trash: a character (with how many of its chats it hides) or a chat."""

    entry: CharacterEntry | ChatListing
    chats: int = 0  # a character's chats that come back or go with it

    @property
    def is_character(self) -> bool:
        return isinstance(self.entry, CharacterEntry)

    @property
    def name(self) -> str:
        return self.entry.name if isinstance(self.entry, CharacterEntry) else self.entry.title

    @property
    def deleted_at(self) -> float:
        return self.entry.deleted_at or 0.0


def trash_items(store: Store) -> list[TrashItem]:
    """Everything in the trash, the last deleted first."""
    counts = store.characters.chats_in_trash()
    items = [TrashItem(c, counts.get(c.id, 0)) for c in store.characters.trash()]
    items += [TrashItem(chat) for chat in store.chats.trash()]
    return sorted(items, key=lambda item: item.deleted_at, reverse=True)


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def _count(n: int, one: str, many: str) -> str:
    """ "1 chat", "3 chats", "100,001 messages": `one` and `many` come translated, `many`
    with {0} for the number, written as the user's locale writes it."""
    return one if n == 1 else many.format(QLocale().toString(n))


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


class TrashDialog(QDialog):
    """The trash's list with Restore, Delete forever and Empty trash. Questions are
    window-modal boxes that do not block (`last_box`), so tests answer them as a user."""

    def __init__(self, trash: TrashUi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trash = trash
        self.last_box: QMessageBox | None = None
        self._going = ""  # what the removal under way was asked for, to say when it is done
        self.setWindowTitle(self.tr("Trash"))
        self.resize(680, 420)
        remember_size(self, "trash")
        self._build()
        trash.busy_changed.connect(self._show_busy)
        trash.progress.connect(self._show_progress)
        trash.removed.connect(self._on_removed)
        trash.failed.connect(self._on_failed)
        self.reload()
        self._show_busy(trash.busy)

    # --- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        intro = QLabel(
            self.tr(
                "Deleted characters and chats stay here until you delete them for good. "
                "A character comes back with its chats; a chat whose character is in the "
                "trash brings the character back too."
            )
        )
        intro.setWordWrap(True)
        self.list = self._tree()
        self.empty_label = QLabel(self.tr("The trash is empty."))
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setFrameShape(QFrame.Shape.StyledPanel)  # where the list was
        self.empty_label.setEnabled(False)  # drawn in the palette's quieter text colour
        self.pages = QStackedWidget()
        self.pages.addWidget(self.list)
        self.pages.addWidget(self.empty_label)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # names and titles
        self.status.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.pages, 1)
        lay.addLayout(self._busy_row())
        lay.addWidget(self.status)
        lay.addLayout(self._buttons())

    def _tree(self) -> QTreeWidget:
        tree = QTreeWidget()
        tree.setHeaderLabels(
            [self.tr("Name"), self.tr("What"), self.tr("Size"), self.tr("Deleted")]
        )
        tree.setRootIsDecorated(False)
        tree.setAlternatingRowColors(True)
        tree.setAccessibleName(self.tr("Deleted characters and chats"))
        header = tree.header()  # the name takes what the others leave: no count is cut
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        tree.currentItemChanged.connect(lambda *_: self._update_buttons())
        return tree

    def _busy_row(self) -> QHBoxLayout:
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # no total to show: it says that work goes on
        self.busy_bar.setMaximumWidth(160)
        self.busy_label = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.busy_bar)
        row.addWidget(self.busy_label, 1)
        return row

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.restore_button = self._button(self.tr("Restore"), self.restore_selected)
        self.delete_button = self._button(self.tr("Delete forever…"), self.ask_delete_selected)
        self.empty_button = self._button(self.tr("Empty trash…"), self.ask_empty)
        set_icon(self.delete_button, "delete")
        row.addWidget(self.restore_button)
        row.addWidget(self.delete_button)
        row.addStretch(1)
        row.addWidget(self.empty_button)
        row.addWidget(self._button(self.tr("Close"), self.close))
        return row

    def _button(self, text: str, slot: Callable[[], object]) -> QPushButton:
        button = QPushButton(text)
        button.setAutoDefault(False)
        button.clicked.connect(slot)
        return button

    # --- contents ----------------------------------------------------------------------
    def reload(self) -> None:
        """Read the trash again; a store that cannot be read says so and changes nothing."""
        keep = self.selected()
        self.list.clear()
        try:
            items = trash_items(self.trash.store)
        except StoreError as exc:
            items = []
            self.status.setText(str(exc))
        for item in items:
            self.list.addTopLevelItem(self._row(item))
        if items and not (keep is not None and self.select(keep.entry.id, keep.is_character)):
            self.list.setCurrentItem(self._rows()[0])
        self.pages.setCurrentWidget(self.list if items else self.empty_label)
        self._update_buttons()

    def _row(self, item: TrashItem) -> QTreeWidgetItem:
        entry = item.entry
        if isinstance(entry, CharacterEntry):
            what = self.tr("Character")
            size = _count(item.chats, self.tr("1 chat"), self.tr("{0} chats"))
        else:
            what = self.tr("Chat with {0}").format(entry.character_name)
            size = _count(entry.message_count, self.tr("1 message"), self.tr("{0} messages"))
        row = QTreeWidgetItem([item.name, what, size, _when(item.deleted_at)])
        row.setData(0, ITEM_ROLE, item)
        row.setToolTip(0, plain_tip(item.name))  # a long title is cut in its column
        row.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if item.is_character:
            font = row.font(0)
            font.setBold(True)  # a character stands for all its chats
            row.setFont(0, font)
        return row

    def _rows(self) -> list[QTreeWidgetItem]:
        rows = (self.list.topLevelItem(i) for i in range(self.list.topLevelItemCount()))
        return [row for row in rows if row is not None]

    def items(self) -> list[TrashItem]:
        return [row.data(0, ITEM_ROLE) for row in self._rows()]

    def selected(self) -> TrashItem | None:
        row = self.list.currentItem()
        return row.data(0, ITEM_ROLE) if row is not None else None

    def select(self, item_id: int, is_character: bool = False) -> bool:
        for row in self._rows():
            item: TrashItem = row.data(0, ITEM_ROLE)
            if item.entry.id == item_id and item.is_character == is_character:
                self.list.setCurrentItem(row)
                return True
        return False

    def _update_buttons(self) -> None:
        has = self.selected() is not None
        self.restore_button.setEnabled(has)
        self.delete_button.setEnabled(has)
        self.empty_button.setEnabled(self.list.topLevelItemCount() > 0)

    # --- restore and delete ------------------------------------------------------------
    def restore_selected(self) -> bool:
        item = self.selected()
        if item is None:
            return False
        character = self._character_in_trash(item)
        try:
            self.trash.restore(item)
        except StoreError as exc:
            return self._fail(exc)
        self.reload()
        if character is None:
            self.status.setText(self.tr("“{0}” is back.").format(item.name))
        else:
            text = self.tr("“{0}” is back, and {1} with it.")
            self.status.setText(text.format(item.name, character.name))
        return True

    def _character_in_trash(self, item: TrashItem) -> TrashItem | None:
        """The character a chat brings back with it, when that is in the trash too."""
        if not isinstance(item.entry, ChatListing):
            return None
        host = item.entry.character_id
        return next((i for i in self.items() if i.is_character and i.entry.id == host), None)

    def ask_delete_selected(self) -> QMessageBox | None:
        item = self.selected()
        if item is None:
            return None
        # a character takes along its chats listed in the trash on their own, too
        own = [
            i for i in self.items() if not i.is_character and i.entry.character_id == item.entry.id
        ]
        n_chats = item.chats + len(own) if item.is_character else 0
        if not item.is_character:
            text = self.tr("Delete the chat “{0}” for good?").format(item.name)
        elif n_chats:
            chats = _count(n_chats, self.tr("its chat"), self.tr("its {0} chats"))
            text = self.tr("Delete “{0}” and {1} for good?").format(item.name, chats)
        else:
            text = self.tr("Delete “{0}” for good?").format(item.name)
        going = self.tr("“{0}” was deleted for good.").format(item.name)
        return self._ask(text, lambda: self.delete_forever([item], going))

    def ask_empty(self) -> QMessageBox | None:
        items = self.items()
        if not items:
            return None
        text = _count(
            len(items),
            self.tr("Delete the one item in the trash for good?"),
            self.tr("Delete all {0} items in the trash for good?"),
        )
        return self._ask(text, lambda: self.empty(self.tr("The trash was emptied.")))

    def _ask(self, text: str, then: Callable[[], object]) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Delete for good"), text, parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # names and titles come from files
        box.setInformativeText(
            self.tr("This cannot be undone: the messages are removed from this computer.")
        )
        box.addButton(QMessageBox.StandardButton.Cancel)
        yes = box.addButton(self.tr("Delete forever"), QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.buttonClicked.connect(lambda b: self._answered(b, yes, then))
        box.show()
        self.last_box = box
        return box

    def _answered(
        self, button: QAbstractButton, yes: QAbstractButton, then: Callable[[], object]
    ) -> None:
        if button is yes:
            then()

    def delete_forever(self, items: list[TrashItem], done: str = "") -> bool:
        """What the question's Delete forever does (tests call it to skip the question);
        `done` is said once the removal has finished."""
        try:
            self.trash.delete_forever(items)
        except StoreError as exc:
            return self._fail(exc)
        self._going = done
        self.reload()
        return True

    def empty(self, done: str = "") -> bool:
        """Exactly what the list shows (and the question counted), not what another window
        may have put in the trash since."""
        return self.delete_forever(self.items(), done)

    def _fail(self, exc: StoreError) -> bool:
        """A store error changed nothing (each change is one transaction): say so."""
        self.reload()
        self.status.setText(str(exc))
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Trash"), str(exc), parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setInformativeText(self.tr("Nothing was changed."))
        box.setModal(False)
        box.show()
        self.last_box = box
        return False

    # --- the background removal --------------------------------------------------------
    def _show_busy(self, busy: bool) -> None:
        self.busy_bar.setVisible(busy)
        self.busy_label.setVisible(busy)
        if busy:
            self.busy_label.setText(self.tr("Deleting for good…"))
            self.status.clear()

    def _show_progress(self, messages: int) -> None:
        removed = _count(messages, self.tr("1 message"), self.tr("{0} messages"))
        self.busy_label.setText(self.tr("Deleting for good… {0} removed").format(removed))

    def _on_removed(self, removed: int) -> None:
        self.reload()
        self.status.setText(self._going or self.tr("Deleted for good."))
        self._going = ""

    def _on_failed(self, message: str) -> None:
        self._going = ""
        self.reload()
        self.status.setText(
            self.tr(
                "Deleting for good did not finish: {0}. What is left is hidden and is "
                "deleted the next time Parlor starts."
            ).format(message)
        )
