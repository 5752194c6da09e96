"""The world-info manager window: the library of books on the left, the chosen book's entries
on the right (the lorebook editor), and where the book applies: every chat (global), the
current character, or the current chat as its chat lore (SillyTavern's `world_info`).

Edits are saved when another book is chosen or the window closes; import and export read and
write SillyTavern world-info files (and V3 lorebooks, and cards with a book).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.core.cards import CardError, load_lorebook, save_lorebook
from app.core.store import Store, StoreError
from app.core.store.world_state import WorldInfoStore
from app.gui.characters.lorebook_editor import LorebookEditor


class WorldInfoManager(QDialog):
    def __init__(
        self,
        store: Store,
        character_id: int | None = None,
        chat_id: int | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("World info"))
        self.resize(1000, 640)
        self.wi = WorldInfoStore(store)
        self.character_id, self.chat_id = character_id, chat_id
        self.search = QLineEdit()
        self.search.setPlaceholderText(self.tr("Search books and entries"))
        self.search.setAccessibleName(self.tr("Search world info"))
        self.books = QListWidget()
        self.books.setAccessibleName(self.tr("World-info books"))
        self.editor = LorebookEditor()
        self.is_global = QCheckBox(self.tr("In every chat"))
        self.for_character = QCheckBox(self.tr("For this character"))
        self.for_chat = QCheckBox(self.tr("This chat's lore"))
        self._current: str | None = None
        self._build()
        self.reload()

    def _build(self) -> None:
        left = QVBoxLayout()
        left.addWidget(self.search)
        left.addWidget(self.books, 1)
        buttons = QGridLayout()  # two rows: the list column stays narrow enough for 800x600
        for i, (text, slot) in enumerate(
            (
                (self.tr("New…"), self.new_book),
                (self.tr("Import…"), self._import),
                (self.tr("Export…"), self._export),
                (self.tr("Rename…"), self._rename),
                (self.tr("Delete"), self._delete),
            )
        ):
            button = QPushButton(text)
            button.setAccessibleName(text.rstrip("…"))
            button.clicked.connect(slot)
            buttons.addWidget(button, i // 3, i % 3)
        left.addLayout(buttons)
        scope = QVBoxLayout()
        for box in (self.is_global, self.for_character, self.for_chat):
            scope.addWidget(box)
            box.clicked.connect(self._on_scope)
        scope.addStretch(1)
        self.for_character.setEnabled(self.character_id is not None)
        self.for_chat.setEnabled(self.chat_id is not None)
        right = QVBoxLayout()
        right.addLayout(scope)
        right.addWidget(self.editor, 1)
        split = QSplitter()
        split.addWidget(_holder(left))
        split.addWidget(_holder(right))
        split.setSizes([280, 720])
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addWidget(close)
        self.books.currentTextChanged.connect(self._on_book)
        self.search.textChanged.connect(self._filter)

    # --- the list ----------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        self.books.blockSignals(True)
        self.books.clear()
        for stored in self.wi.books():
            self.books.addItem(stored.name)
        self.books.blockSignals(False)
        names = [self.books.item(i).text() for i in range(self.books.count())]
        if select in names or names:
            self.books.setCurrentRow(names.index(select) if select in names else 0)
        else:
            self._show(None)
        self._filter(self.search.text())

    def _filter(self, text: str) -> None:
        """Books whose name or any entry's keys, title or content hold the text."""
        needle = text.strip().casefold()
        for i in range(self.books.count()):
            item = self.books.item(i)
            stored = self.wi.book(item.text()) if needle else None
            item.setHidden(bool(needle) and not _book_has(item.text(), stored, needle))
        self.editor.set_filter(needle)

    def _on_book(self, name: str) -> None:
        self.save()
        self._show(name or None)

    def _show(self, name: str | None) -> None:
        self._current = name
        stored = self.wi.book(name) if name else None
        self.editor.setEnabled(stored is not None)
        self.editor.set_book(stored.book if stored else None)
        self.editor.set_filter(self.search.text().strip().casefold())
        meta = self.wi.chat_metadata(self.chat_id) if self.chat_id is not None else {}
        self.is_global.setChecked(bool(stored and stored.is_global))
        self.for_character.setChecked(bool(stored and self.character_id in stored.characters))
        self.for_chat.setChecked(bool(stored) and meta.get("world_info") == name)

    def save(self) -> bool:
        """Write the shown book's edits; False (and a message) when that failed."""
        if self._current is None:
            return True
        book = self.editor.book()
        stored = self.wi.book(self._current)
        if book is None or stored is None or book == stored.book:
            return True
        try:
            self.wi.save_book(self._current, book)
        except (StoreError, CardError) as exc:
            QMessageBox.warning(self, self.tr("World info"), str(exc))
            return False
        return True

    # --- actions -----------------------------------------------------------------------
    def new_book(self, name: str | None = None) -> None:
        if name is None:
            name, ok = QInputDialog.getText(self, self.tr("New book"), self.tr("Name"))
            if not ok:
                return
        self._guard(lambda: self.wi.save_book(name, {"entries": []}))
        self.reload(name.strip())

    def import_file(self, path: str) -> str | None:
        try:
            book = load_lorebook(path)
        except CardError as exc:
            QMessageBox.warning(self, self.tr("Import world info"), str(exc))
            return None
        name = self._free_name(str(book.get("name") or Path(path).stem))
        if self._guard(lambda: self.wi.save_book(name, book)):
            self.reload(name)
            return name
        return None

    def export_file(self, path: str) -> None:
        if self._current is None or not self.save():
            return
        try:
            save_lorebook(self.wi.book(self._current).book, path)
        except (OSError, CardError) as exc:
            QMessageBox.warning(self, self.tr("Export world info"), str(exc))

    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Import world info"), "", self.tr("World info (*.json *.png *.charx)")
        )
        if path:
            self.import_file(path)

    def _export(self) -> None:
        if self._current is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self,
            self.tr("Export world info"),
            f"{self._current}.json",
            self.tr("SillyTavern world info (*.json)"),
        )
        if path:
            self.export_file(path)

    def _rename(self) -> None:
        if self._current is None:
            return
        name, ok = QInputDialog.getText(
            self, self.tr("Rename book"), self.tr("Name"), text=self._current
        )
        if ok and self.save():
            self.rename(name)

    def rename(self, name: str) -> None:
        old = self._current
        if self._guard(lambda: self.wi.rename_book(old, name)):
            if (
                self.chat_id is not None
                and self.wi.chat_metadata(self.chat_id).get("world_info") == old
            ):
                self.wi.update_chat_metadata(self.chat_id, {"world_info": name.strip()})
            self._current = None
            self.reload(name.strip())

    def _delete(self) -> None:
        if self._current is None:
            return
        answer = QMessageBox.question(
            self, self.tr("Delete book"), self.tr("Delete the book {0}?").format(self._current)
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_current()

    def delete_current(self) -> None:
        name, self._current = self._current, None
        self._guard(lambda: self.wi.delete_book(name))
        self.reload()

    def _on_scope(self) -> None:
        name = self._current
        if name is None:
            return
        self._guard(lambda: self.wi.set_global(name, self.is_global.isChecked()))
        if self.character_id is not None:
            self._guard(
                lambda: self.wi.link_character(
                    name, self.character_id, self.for_character.isChecked()
                )
            )
        if self.chat_id is not None:
            chosen = name if self.for_chat.isChecked() else None
            if chosen or self.wi.chat_metadata(self.chat_id).get("world_info") == name:
                self._guard(
                    lambda: self.wi.update_chat_metadata(self.chat_id, {"world_info": chosen})
                )

    def done(self, result: int) -> None:
        self.save()
        super().done(result)

    def _guard(self, action) -> bool:
        try:
            action()
        except StoreError as exc:
            QMessageBox.warning(self, self.tr("World info"), str(exc))
            return False
        return True

    def _free_name(self, name: str) -> str:
        taken = {b.name for b in self.wi.books()}
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name} ({n})", n + 1
        return candidate


def _book_has(name: str, stored, needle: str) -> bool:
    if needle in name.casefold():
        return True
    entries = stored.book.get("entries", []) if stored else []
    return any(
        needle
        in " ".join(
            str(v)
            for v in (e.get("comment"), e.get("name"), e.get("content"), *(e.get("keys") or []))
        ).casefold()
        for e in entries
        if isinstance(e, dict)
    )


def _holder(layout) -> QWidget:
    widget = QWidget()
    widget.setLayout(layout)
    return widget


def show_world_info(parent: QWidget, store: Store, chat_id: int | None) -> WorldInfoManager:
    """Open the manager for the chat on screen (its character and its chat lore)."""
    character = store.chats.character_of(chat_id) if chat_id is not None else None
    dialog = WorldInfoManager(store, character, chat_id, parent)
    dialog.finished.connect(dialog.deleteLater)
    dialog.show()
    return dialog
