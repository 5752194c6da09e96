"""The character library: avatars, names and tags, with search, import, export and trash.

Cards are read and checked completely before anything is written, and each character is
added in one store transaction, so a broken file leaves nothing behind: it only adds a
line, naming the file, to the report. Deleting moves a character to the store's trash;
the undo bar brings the last ones back.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import (
    QEvent,
    QObject,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QKeySequence,
    QPixmap,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.cards import SPEC_V3, Card, CardError, card_from_json, save_card
from app.core.store import StoreError
from app.gui.characters.card_editor import AvatarError, CardEditor, decode_avatar
from app.gui.characters.card_import import ReadCards, read_cards
from app.gui.characters.library_items import AVATAR_SIZE, CharacterDelegate, Roles
from app.gui.characters.library_view import (
    GridDelegate,
    LibraryControls,
    SortKey,
    apply_mode,
    is_favourite,
    with_favourite,
)
from app.gui.characters.thumbnails import ThumbnailCache
from app.gui.characters.token_counter import TokenCounter
from app.gui.models.progress_job import ProgressJob
from app.gui.plain_text import plain_tip


def card_paths(urls: Iterable) -> list[str]:
    """The local files among dropped URLs (folders and remote URLs are left out)."""
    return [
        url.toLocalFile()
        for url in urls
        if url.isLocalFile() and url.toLocalFile() and Path(url.toLocalFile()).is_file()
    ]


class SearchFilter(QSortFilterProxyModel):
    """Every word typed must appear in the name or a tag (`#tag` matches tags only)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._words: list[str] = []
        self.sort_key = SortKey.NAME
        self.favourites_only = False

    def set_order(self, key: SortKey, favourites_only: bool) -> None:
        self.beginFilterChange()
        self.sort_key, self.favourites_only = key, favourites_only
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        self.invalidate()
        self.sort(0)

    def lessThan(self, left, right) -> bool:  # noqa: N802 - Qt override
        """Favourites first; then by name, newest chat or newest added."""
        if bool(left.data(Roles.FAV)) != bool(right.data(Roles.FAV)):
            return bool(left.data(Roles.FAV))
        if self.sort_key == SortKey.RECENT:
            return (left.data(Roles.RECENT) or 0) > (right.data(Roles.RECENT) or 0)
        if self.sort_key == SortKey.ADDED:
            return (left.data(Roles.ADDED) or 0) > (right.data(Roles.ADDED) or 0)
        return str(left.data() or "").casefold() < str(right.data() or "").casefold()

    def set_query(self, text: str) -> None:
        self.beginFilterChange()  # Qt 6.10+: invalidateFilter() is deprecated
        self._words = text.casefold().split()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent) -> bool:  # noqa: N802 - Qt override
        index = self.sourceModel().index(row, 0, parent)
        if self.favourites_only and not index.data(Roles.FAV):
            return False
        name = str(index.data(Qt.ItemDataRole.DisplayRole) or "").casefold()
        tags = [t.casefold() for t in index.data(Roles.TAGS) or []]
        for word in self._words:
            if word.startswith("#") and len(word) > 1:
                if not any(word[1:] in tag for tag in tags):
                    return False
            elif word not in name and not any(word in tag for tag in tags):
                return False
        return True


class CharacterLibrary(QWidget):
    """The list of characters. Wire `character_chosen` to open a chat with that character."""

    character_chosen = Signal(int)
    characters_changed = Signal()
    status_message = Signal(str)

    def __init__(
        self,
        store,
        count_tokens: TokenCounter | Callable[[str], int] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.count_tokens = count_tokens
        self.menu_extras: list = []  # callables (menu, character id) adding their entries
        self.model = QStandardItemModel(self)
        self.proxy = SearchFilter(self)
        self.proxy.setSourceModel(self.model)
        self.view = QListView()
        self.search = QLineEdit()
        self.undo_bar = QFrame()
        self.undo_label = QLabel()
        self.undo_button = QPushButton(self.tr("Undo"))
        self._trash: list[tuple[int, str]] = []
        self._undo_timer = QTimer(self, singleShot=True, interval=30_000)
        self._undo_timer.timeout.connect(self.undo_bar.hide)
        self.last_report: QMessageBox | None = None
        self.import_job: ProgressJob | None = None
        self.thumbnails = ThumbnailCache()
        self.editor: CardEditor | None = None
        self._chosen: int | None = None
        self._build()
        self._build_actions()
        self.drop_filter = CardDropFilter(self)
        self.drop_filter.install(self)
        self.reload()

    # --- layout -----------------------------------------------------------------------
    def _build(self) -> None:
        self.search.setPlaceholderText(self.tr("Search names and tags (#tag)"))
        self.search.setAccessibleName(self.tr("Search characters"))
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.set_query)
        self.view.setModel(self.proxy)
        self.list_delegate = CharacterDelegate(self.view)
        self.grid_delegate = GridDelegate(Roles, self.view)
        self.view.setItemDelegate(self.list_delegate)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # rows elide
        self.controls = LibraryControls()
        self.controls.changed.connect(self.apply_view)
        self.proxy.sort(0)
        self.view.setIconSize(QSize(AVATAR_SIZE, AVATAR_SIZE))
        self.view.setUniformItemSizes(True)
        self.view.setAccessibleName(self.tr("Characters"))
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._show_menu)
        self.view.selectionModel().currentChanged.connect(self._on_current)
        self.view.doubleClicked.connect(lambda _index: self.edit_current())
        self.undo_button.setAccessibleName(self.tr("Undo delete"))
        self.undo_button.clicked.connect(self.undo_delete)
        self.undo_label.setWordWrap(True)
        bar = QHBoxLayout(self.undo_bar)
        bar.setContentsMargins(6, 2, 6, 2)
        bar.addWidget(self.undo_label, 1)
        bar.addWidget(self.undo_button)
        self.undo_bar.setFrameShape(QFrame.Shape.StyledPanel)
        self.undo_bar.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.controls)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.undo_bar)

    def _build_actions(self) -> None:
        """Actions the main window can put in its menus; the shortcuts work once it does."""
        self.import_action = QAction(
            self.tr("&Import characters…"), self, shortcut=QKeySequence("Ctrl+I")
        )
        self.import_action.triggered.connect(self.choose_and_import)
        self.new_action = QAction(self.tr("New &character…"), self)
        self.new_action.triggered.connect(self.new_character)
        self.edit_action = QAction(self.tr("&Edit character…"), self)
        self.edit_action.triggered.connect(self.edit_current)

    # --- contents ---------------------------------------------------------------------
    def reload(self) -> None:
        """Read the characters from the store again, keeping the selection if it is there."""
        keep = self.current_id()
        self._reloading = True  # Qt versions differ in which rows they make current here
        try:
            self.model.clear()
            for row in self.store.characters.list():
                self.model.appendRow(self._item(row.id, row.name, row.avatar))
            self.thumbnails.sweep()  # deleted characters and old avatars
            if not (keep is not None and self.select(keep)) and self.proxy.rowCount():
                self.view.setCurrentIndex(self.proxy.index(0, 0))
        finally:
            self._reloading = False
        self._on_current(self.view.currentIndex(), None)

    def _item(self, character_id: int, name: str, avatar: bytes | None) -> QStandardItem:
        item = QStandardItem(name)
        item.setEditable(False)
        item.setData(character_id, Roles.ID)
        try:
            data = self.store.characters.card(character_id)
            tags = data.get("tags") or []
            recent = max(
                (c.last_used_at or 0 for c in self.store.chats.of_character(character_id)),
                default=0,
            )
        except (StoreError, ValueError):
            data, tags, recent = {}, [], 0
        item.setData(is_favourite(data), Roles.FAV)
        item.setData(recent, Roles.RECENT)
        item.setData(character_id, Roles.ADDED)
        item.setData([str(t) for t in tags if str(t).strip()], Roles.TAGS)
        item.setData(bytes(avatar) if avatar else None, Roles.AVATAR)
        pixmap = self.thumbnails.get(character_id, avatar)
        if pixmap is not None:
            item.setData(pixmap, Qt.ItemDataRole.DecorationRole)
        item.setToolTip(plain_tip(name))  # a card name is untrusted: never markup
        return item

    def ids(self) -> list[int]:
        """The ids shown, in order (after the search filter)."""
        return [self.proxy.index(r, 0).data(Roles.ID) for r in range(self.proxy.rowCount())]

    def current_id(self) -> int | None:
        index = self.view.currentIndex()
        return index.data(Roles.ID) if index.isValid() else None

    def select(self, character_id: int) -> bool:
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if index.data(Roles.ID) == character_id:
                self.view.setCurrentIndex(index)
                return True
        return False

    def _on_current(self, current, _previous) -> None:
        """Say when the chosen character changes; a reload that keeps it says nothing, so
        saving or duplicating does not reopen the chat."""
        chosen = current.data(Roles.ID) if current.isValid() else None
        if getattr(self, "_reloading", False):
            return
        if chosen is not None and chosen != self._chosen:
            self._chosen = chosen
            self.character_chosen.emit(chosen)

    def apply_view(self) -> None:
        """List or grid, sort order and the favourites filter, from the controls."""
        keep = self.current_id()
        apply_mode(self.view, self.controls.mode(), self.list_delegate, self.grid_delegate)
        self.proxy.set_order(self.controls.sort_key(), self.controls.favourites.isChecked())
        if keep is not None:
            self._reloading = True
            try:
                self.select(keep)
            finally:
                self._reloading = False

    def set_favourite(self, character_id: int, favourite: bool) -> None:
        """Stored in the card itself (`extensions.fav`), as SillyTavern does."""
        try:
            self.store.characters.update(
                character_id,
                with_favourite(self.store.characters.card(character_id), favourite),
                self._avatar(character_id),
            )
        except StoreError as exc:
            self.status_message.emit(str(exc))
            return
        self.reload()

    def avatar_pixmap(self, character_id: int) -> QPixmap | None:
        """The list's copy of the avatar (88 px), e.g. for the chat's message bubbles."""
        for row in range(self.model.rowCount()):
            item = self.model.item(row)
            if item.data(Roles.ID) == character_id:
                pixmap = item.data(Qt.ItemDataRole.DecorationRole)
                return pixmap if isinstance(pixmap, QPixmap) else None
        return None

    def _avatar(self, character_id: int) -> bytes | None:
        for row in range(self.model.rowCount()):
            item = self.model.item(row)
            if item.data(Roles.ID) == character_id:
                return item.data(Roles.AVATAR)
        return None

    def card(self, character_id: int) -> Card:
        """The stored character as a Card (its data as saved, its avatar image)."""
        data = self.store.characters.card(character_id)
        card = card_from_json(
            {
                **self.store.characters.extra(character_id),
                "spec": SPEC_V3,
                "spec_version": "3.0",
                "data": data,
            },
            f"character {character_id}",
        )
        card.avatar = self._avatar(character_id)
        return card

    # --- import -----------------------------------------------------------------------
    def import_files(self, paths: Iterable[str]) -> tuple[list[int], list[str]]:
        """Add each card file now (scripts, tests); returns the new ids and one message per
        file that failed. The window's own imports go through `import_in_background`."""
        return self._add_cards(read_cards(paths))

    def _add_cards(self, read: ReadCards) -> tuple[list[int], list[str]]:
        ids: list[int] = []
        errors = list(read.errors)
        for path, card, thumb in read.cards:
            try:
                ids.append(self.store.characters.add(card.data, card.avatar, extra=card.extra))
                self.thumbnails.put(ids[-1], card.avatar, thumb)
            except StoreError as exc:
                errors.append(self.tr("{0}: could not be saved ({1})").format(path, exc))
        if ids:
            self.reload()
            self.select(ids[-1])
            self.characters_changed.emit()
        return ids, errors

    def import_and_report(self, paths: Iterable[str]) -> tuple[list[int], list[str]]:
        """Import now, then say how it went."""
        ids, errors = self.import_files(list(paths))
        self._report(ids, errors)
        return ids, errors

    def import_in_background(self, paths: Iterable[str]) -> ProgressJob:
        """Read the files off the GUI thread (a progress dialog with Cancel shows if it
        takes a while), then add the cards and report; a Cancel adds nothing."""
        paths = list(paths)
        job = ProgressJob(
            self,
            self.tr("Import characters"),
            self.tr("Reading {0} file(s)…").format(len(paths)),
        )
        self.import_job = job
        return job.start(
            lambda report, cancel: read_cards(paths, report, cancel),
            on_success=lambda read: self._report(*self._add_cards(read)),
            on_failure=lambda message: self._report([], [message]),
            on_cancel=lambda _message: self.status_message.emit(
                self.tr("Import cancelled; nothing was added.")
            ),
            name="import-cards",
        )

    def _report(self, ids: list[int], errors: list[str]) -> None:
        """A status line, and a message listing any failures."""
        self.status_message.emit(
            self.tr("Imported {0} character(s).").format(len(ids))
            if not errors
            else self.tr("Imported {0}, {1} failed.").format(len(ids), len(errors))
        )
        if errors:
            box = QMessageBox(
                QMessageBox.Icon.Warning,
                self.tr("Import characters"),
                self.tr("These files could not be imported:"),
                parent=self,
            )
            box.setTextFormat(Qt.TextFormat.PlainText)  # errors quote names from the files
            box.setInformativeText("\n\n".join(errors))
            box.setModal(False)
            box.show()
            self.last_report = box

    def choose_and_import(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self,
            self.tr("Import characters"),
            "",
            self.tr("Character cards (*.png *.json *.charx);;All files (*)"),
        )
        if paths:
            self.import_in_background(paths)

    # --- duplicate, delete, undo ------------------------------------------------------
    def duplicate(self, character_id: int) -> int:
        data = copy.deepcopy(self.store.characters.card(character_id))
        data["name"] = self.tr("{0} (copy)").format(data.get("name") or "")
        new_id = self.store.characters.add(data, self._avatar(character_id))
        self.reload()
        self.select(new_id)
        self.characters_changed.emit()
        self.status_message.emit(self.tr("Made a copy: {0}").format(data["name"]))
        return new_id

    def delete(self, character_id: int) -> None:
        """Move to the trash (chats are kept with it) and offer to undo."""
        name = self.store.characters.card(character_id).get("name") or ""
        self.store.characters.delete(character_id)
        self._trash.append((character_id, name))
        self.reload()
        self.characters_changed.emit()
        text = self.tr("“{0}” was moved to the trash.").format(name)
        self.undo_label.setText(text)
        self.undo_bar.show()
        self._undo_timer.start()
        self.status_message.emit(text)

    def undo_delete(self) -> int | None:
        """Bring back the character deleted last; None if there is nothing to undo."""
        if not self._trash:
            return None
        character_id, name = self._trash.pop()
        try:
            if all(c.id != character_id for c in self.store.characters.trash()):
                raise StoreError(self.tr("it was deleted for good"))  # in the trash, since
            self.store.characters.restore(character_id)
        except StoreError as exc:
            self.status_message.emit(self.tr("“{0}” cannot come back: {1}").format(name, exc))
            character_id = None
        else:
            self.reload()
            self.select(character_id)
            self.characters_changed.emit()
            self.status_message.emit(self.tr("“{0}” is back.").format(name))
        if not self._trash:
            self.undo_bar.hide()
        else:
            self.undo_label.setText(
                self.tr("“{0}” was moved to the trash.").format(self._trash[-1][1])
            )
        return character_id

    # --- export -----------------------------------------------------------------------
    def export(self, character_id: int, path: str, *, v2: bool = False) -> list[str]:
        """Write the card by `path`'s extension (.png has both chunks). Returns warnings."""
        card = self.card(character_id)
        avatar = card.avatar
        if avatar is not None and not avatar.startswith(b"\x89PNG"):
            try:  # a CharX icon in JPEG or WebP: a PNG card needs a PNG image
                avatar = decode_avatar(avatar, card.name)
            except AvatarError:
                avatar = None  # save_card then draws a plain image and says so
        return save_card(
            card, path, avatar_png=avatar if path.lower().endswith(".png") else None, v2=v2
        )

    def _choose_export(self, character_id: int, kind: str) -> None:
        name = self.store.characters.card(character_id).get("name") or "character"
        suffix, title = {
            "png": (".png", self.tr("PNG card (*.png)")),
            "v3": (".json", self.tr("V3 JSON (*.json)")),
            "v2": (".json", self.tr("V2 JSON (*.json)")),
        }[kind]
        path, _ = QFileDialog.getSaveFileName(
            self, self.tr("Export {0}").format(name), _safe_name(name) + suffix, title
        )
        if not path:
            return
        try:
            warnings = self.export(character_id, path, v2=kind == "v2")
        except (CardError, AvatarError) as exc:
            QMessageBox.warning(self, self.tr("Export"), str(exc))
            return
        self.status_message.emit(" ".join([self.tr("Saved {0}.").format(path), *warnings]))

    # --- editing ----------------------------------------------------------------------
    def edit_current(self) -> CardEditor | None:
        current = self.current_id()
        return self.edit(current) if current is not None else None

    def edit(self, character_id: int) -> CardEditor:
        """Open the card editor (window-modal, not blocking); Save writes to the store."""
        editor = CardEditor(
            self.card(character_id), self._avatar(character_id), self.count_tokens, self
        )
        editor.accepted.connect(lambda: self.save_edit(character_id, editor))
        editor.open()
        self.editor = editor
        return editor

    def save_edit(self, character_id: int, editor: CardEditor) -> None:
        card = editor.card()
        try:
            self.store.characters.update(character_id, card.data, editor.avatar())
        except StoreError as exc:
            QMessageBox.warning(self, self.tr("Save character"), str(exc))
            return
        self.reload()
        self.select(character_id)
        self.characters_changed.emit()
        self.status_message.emit(self.tr("Saved {0}.").format(card.name))

    def new_character(self) -> CardEditor:
        from app.core.cards import new_card

        new_id = self.store.characters.add(new_card(self.tr("New character")).data, None)
        self.reload()
        self.select(new_id)
        self.characters_changed.emit()
        return self.edit(new_id)

    # --- context menu -----------------------------------------------------------------
    def _show_menu(self, pos) -> None:
        index = self.view.indexAt(pos)
        menu = QMenu(self)
        if index.isValid():
            cid = index.data(Roles.ID)
            menu.addAction(self.tr("Edit…"), lambda: self.edit(cid))
            menu.addAction(self.tr("Duplicate"), lambda: self.duplicate(cid))
            fav = bool(index.data(Roles.FAV))
            menu.addAction(
                self.tr("Remove from favourites") if fav else self.tr("Add to favourites"),
                lambda: self.set_favourite(cid, not fav),
            )
            for extra in self.menu_extras:
                extra(menu, cid)
            export = menu.addMenu(self.tr("Export"))
            export.addAction(self.tr("PNG card…"), lambda: self._choose_export(cid, "png"))
            export.addAction(self.tr("JSON (V3)…"), lambda: self._choose_export(cid, "v3"))
            export.addAction(self.tr("JSON (V2)…"), lambda: self._choose_export(cid, "v2"))
            menu.addSeparator()
            menu.addAction(self.tr("Delete"), lambda: self.delete(cid))
            menu.addSeparator()
        menu.addAction(self.new_action)
        menu.addAction(self.import_action)
        menu.popup(self.view.viewport().mapToGlobal(pos))
        self._menu = menu


class CardDropFilter(QObject):
    """Lets card files dropped on a widget (the main window, the composer) be imported."""

    def __init__(self, library: CharacterLibrary) -> None:
        super().__init__(library)
        self.library = library

    def install(self, *widgets: QWidget) -> None:
        for widget in widgets:
            widget.setAcceptDrops(True)
            widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if _has_card_files(event.mimeData()):
                event.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop and _has_card_files(event.mimeData()):
            event.acceptProposedAction()
            paths = card_paths(event.mimeData().urls())
            # After the drop returns: the drag source must not wait on message boxes.
            QTimer.singleShot(0, lambda: self.library.import_in_background(paths))
            return True
        return False


def _has_card_files(mime) -> bool:
    return mime is not None and mime.hasUrls() and bool(card_paths(mime.urls()))


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in " -_" else "_" for c in name).strip() or "character"
