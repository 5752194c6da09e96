"""The trash window: deleted characters and chats, to restore or to delete for good
(`TrashUi` in trash.py runs what the window asks for)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
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

from app.core.store import StoreError
from app.core.store.records import CharacterEntry, ChatListing
from app.gui.icons import set_icon
from app.gui.plain_text import plain_tip
from app.gui.trash_items import TrashItem, count_text, trash_items, when_text
from app.gui.window_state import remember_size

if TYPE_CHECKING:
    from app.gui.trash import TrashUi

ITEM_ROLE = Qt.ItemDataRole.UserRole


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
            size = count_text(item.chats, self.tr("1 chat"), self.tr("{0} chats"))
        else:
            what = self.tr("Chat with {0}").format(entry.character_name)
            size = count_text(entry.message_count, self.tr("1 message"), self.tr("{0} messages"))
        row = QTreeWidgetItem([item.name, what, size, when_text(item.deleted_at)])
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
            chats = count_text(n_chats, self.tr("its chat"), self.tr("its {0} chats"))
            text = self.tr("Delete “{0}” and {1} for good?").format(item.name, chats)
        else:
            text = self.tr("Delete “{0}” for good?").format(item.name)
        going = self.tr("“{0}” was deleted for good.").format(item.name)
        return self._ask(text, lambda: self.delete_forever([item], going))

    def ask_empty(self) -> QMessageBox | None:
        items = self.items()
        if not items:
            return None
        text = count_text(
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
        removed = count_text(messages, self.tr("1 message"), self.tr("{0} messages"))
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
