"""The lorebook (character_book) editor: a list of entries and a form for the chosen one.

The book is edited in a deep copy and a field is written back only when its widget changed,
so everything the form does not show (decorators, `extensions`, SillyTavern's extra world-info
fields, ids, numbers written as floats) leaves the editor exactly as it came in.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.core.cards import CardError, load_lorebook, save_lorebook
from app.gui.characters.entry_advanced import AdvancedFields, toggle_regex

_FLAGS = ("enabled", "constant", "selective", "case_sensitive")
_NOT_SET = object()
# SillyTavern's world-info positions (`world_info_position`), stored as `extensions.position`,
# which wins over the V3 `position` text when the prompt is built.
_POSITIONS = (
    ("Before the character", 0),
    ("After the character", 1),
    ("Top of the author's note", 2),
    ("Bottom of the author's note", 3),
    ("In the chat at a depth", 4),
    ("Before the example messages", 5),
    ("After the example messages", 6),
)
_AT_DEPTH = 4
_ROLES = (("System", 0), ("User", 1), ("Assistant", 2))


def split_keys(text: str) -> list[str]:
    """Comma-separated keys as the user typed them, blanks dropped; a `/regex/` key may hold
    commas (SillyTavern's `splitKeywordsAndRegexes`)."""
    parts, keys, i = text.split(","), [], 0
    while i < len(parts):
        key, j = parts[i], i
        if key.strip().startswith("/") and not _REGEX_KEY.fullmatch(key.strip()):
            for k in range(i + 1, len(parts)):
                joined = ",".join(parts[i : k + 1])
                if _REGEX_KEY.fullmatch(joined.strip()):
                    key, j = joined, k
                    break
        keys.append(key.strip())
        i = j + 1
    return [k for k in keys if k]


_REGEX_KEY = re.compile(r"/(?:[^/\\]|\\.)+/[gimsuy]*")


def entry_title(entry: dict, index: int) -> str:
    """What the entry list shows: the comment or name, else the keys."""
    for key in ("comment", "name"):
        if isinstance(entry.get(key), str) and entry[key].strip():
            return entry[key].strip()
    keys = ", ".join(str(k) for k in entry.get("keys") or [] if str(k))
    return keys or f"#{index + 1}"


class EntryForm(QWidget):
    """The fields of one entry. `load` shows it; `store` writes back what the user changed."""

    edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.comment = QLineEdit()
        self.keys = QLineEdit()
        self.secondary = QLineEdit()
        self.content = QPlainTextEdit()
        for widget, name in (
            (self.comment, "Entry name"),
            (self.keys, "Keys"),
            (self.secondary, "Secondary keys"),
            (self.content, "Content"),
        ):
            widget.setAccessibleName(self.tr(name))
        self.order = QSpinBox()
        self.order.setRange(-1_000_000, 1_000_000)
        self.position = QComboBox()
        self.position.setAccessibleName(self.tr("Position"))
        self.depth = QSpinBox()
        self.depth.setRange(0, 1000)
        self.depth.setAccessibleName(self.tr("Depth"))
        self.role = QComboBox()
        self.role.setAccessibleName(self.tr("Role"))
        for label, value in _ROLES:
            self.role.addItem(self.tr(label), value)
        self.flags = {name: QCheckBox() for name in _FLAGS}
        self.regex = QCheckBox(self.tr("Regular expressions"))
        self.regex.setToolTip(
            self.tr(
                "Write the keys as /pattern/ (SillyTavern treats only "
                "such keys as regular expressions)"
            )
        )
        self.advanced = AdvancedFields()
        self._shown: dict[str, Any] = {}
        self._build()

    def _build(self) -> None:
        tr = self.tr
        self.comment.setPlaceholderText(tr("A title for this entry (not sent to the model)"))
        self.keys.setPlaceholderText(tr("Words that bring this entry in, separated by commas"))
        self.secondary.setPlaceholderText(tr("With “selective”: at least one of these too"))
        self.content.setPlaceholderText(tr("What the model is told when a key appears"))
        labels = {
            "enabled": tr("Enabled"),
            "constant": tr("Always included (constant)"),
            "selective": tr("Selective (needs a secondary key)"),
            "case_sensitive": tr("Case-sensitive keys"),
        }
        for name, box in self.flags.items():
            box.setText(labels[name])
            box.toggled.connect(self.edited)
        form = QFormLayout(self)
        form.addRow(tr("Title"), self.comment)
        keys_row = QHBoxLayout()
        keys_row.addWidget(self.keys, 1)
        keys_row.addWidget(self.regex)
        form.addRow(tr("Keys"), keys_row)
        form.addRow(tr("Secondary keys"), self.secondary)
        form.addRow(tr("Content"), self.content)
        flags = QGridLayout()
        for i, box in enumerate(self.flags.values()):
            flags.addWidget(box, i // 2, i % 2)
        form.addRow(flags)
        self.order.setMaximumWidth(140)
        form.addRow(tr("Insertion order"), self.order)
        form.addRow(tr("Position"), self.position)
        depth_row = QHBoxLayout()
        self.depth.setMaximumWidth(100)
        self.depth.setToolTip(tr("How many messages from the end the entry is inserted"))
        depth_row.addWidget(self.depth)
        depth_row.addWidget(QLabel(tr("Role")))
        depth_row.addWidget(self.role)
        depth_row.addStretch(1)
        form.addRow(tr("Depth"), depth_row)
        form.addRow(self.advanced)
        self.advanced.edited.connect(self.edited)
        self.regex.clicked.connect(self._on_regex)
        for signal in (
            self.comment.textEdited,
            self.keys.textEdited,
            self.secondary.textEdited,
            self.content.textChanged,
            self.order.valueChanged,
            self.position.currentIndexChanged,
            self.depth.valueChanged,
            self.role.currentIndexChanged,
        ):
            signal.connect(self.edited)
        self.position.currentIndexChanged.connect(self._on_position)

    def load(self, entry: dict) -> None:
        self.blockSignals(True)
        self.comment.setText(str(entry.get("comment") or ""))
        self.keys.setText(", ".join(str(k) for k in entry.get("keys") or []))
        self.secondary.setText(", ".join(str(k) for k in entry.get("secondary_keys") or []))
        self.content.setPlainText(str(entry.get("content") or ""))
        for name, box in self.flags.items():
            box.setChecked(bool(entry.get(name, name == "enabled")))
        order = entry.get("insertion_order")
        self.order.setValue(int(order) if isinstance(order, (int, float)) else 100)
        ext = entry.get("extensions") if isinstance(entry.get("extensions"), dict) else {}
        self._fill_positions(_position_of(entry, ext))
        depth = ext.get("depth")
        self.depth.setValue(int(depth) if isinstance(depth, (int, float)) else 4)
        role = ext.get("role")
        self.role.setCurrentIndex(role if role in (0, 1, 2) else 0)
        self._on_position()
        self.advanced.load(ext)
        keys = [str(k) for k in entry.get("keys") or []]
        self.regex.setChecked(bool(keys) and toggle_regex(keys, True) == keys)
        self.blockSignals(False)
        self._shown = self.values()

    def _on_regex(self, on: bool) -> None:
        self.keys.setText(", ".join(toggle_regex(split_keys(self.keys.text()), on)))
        self.keys.textEdited.emit(self.keys.text())

    def _fill_positions(self, current: Any) -> None:
        self.position.blockSignals(True)
        self.position.clear()
        self.position.addItem(self.tr("Not set (after the character)"), _NOT_SET)
        for label, value in _POSITIONS:
            self.position.addItem(self.tr(label), value)
        if current is not _NOT_SET and current not in range(len(_POSITIONS)):
            self.position.addItem(self.tr("As written: {0}").format(current), current)
        for i in range(self.position.count()):
            if self.position.itemData(i) is current or self.position.itemData(i) == current:
                self.position.setCurrentIndex(i)
        self.position.blockSignals(False)

    def _on_position(self) -> None:
        at_depth = self.position.currentData() == _AT_DEPTH
        self.depth.setEnabled(at_depth)
        self.role.setEnabled(at_depth)

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "comment": self.comment.text(),
            "keys": self.keys.text(),
            "secondary_keys": self.secondary.text(),
            "content": self.content.toPlainText(),
            "insertion_order": self.order.value(),
            "position": self.position.currentData(),
            "depth": self.depth.value(),
            "role": self.role.currentData(),
        }
        values.update({name: box.isChecked() for name, box in self.flags.items()})
        return values

    def store(self, entry: dict) -> bool:
        """Write the changed fields into `entry`; True if anything changed."""
        changed = self.advanced.store(_extensions(entry))
        for key, value in self.values().items():
            if value == self._shown.get(key):
                continue
            changed = True
            if key in ("keys", "secondary_keys"):
                entry[key] = split_keys(value)
            elif key == "position":
                _store_position(entry, value)
            elif key in ("depth", "role"):
                _extensions(entry)[key] = value
            else:
                entry[key] = value
        self._shown = self.values()
        return changed


def _position_of(entry: dict, ext: dict) -> Any:
    """The position the prompt builder will use: `extensions.position`, else the V3 text."""
    position = ext.get("position", _NOT_SET)
    if isinstance(position, (int, float)) and not isinstance(position, bool):
        return int(position) if int(position) == position else position
    if position is not _NOT_SET:
        return position
    text = entry.get("position", _NOT_SET)
    return {"before_char": 0, "after_char": 1}.get(text, text) if isinstance(text, str) else text


def _store_position(entry: dict, value: Any) -> None:
    """Write both spellings, so SillyTavern and V3 readers agree with the prompt."""
    if value is _NOT_SET:
        entry.pop("position", None)
        _extensions(entry).pop("position", None)
        return
    _extensions(entry)["position"] = value
    entry["position"] = "before_char" if value == 0 else "after_char"


def _extensions(entry: dict) -> dict:
    if not isinstance(entry.get("extensions"), dict):
        entry["extensions"] = {}
    return entry["extensions"]


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


# How the entry list can be sorted (SillyTavern's world-info editor has the same choices).
SORTS = (
    ("Book order", "book"),
    ("Order, highest first", "order"),
    ("Title A–Z", "title"),
    ("Id", "id"),
)
_SORT_KEYS = {
    "book": lambda entries: lambda i: i,
    "order": lambda entries: lambda i: (-_number(entries[i].get("insertion_order")), i),
    "title": lambda entries: lambda i: (entry_title(entries[i], i).casefold(), i),
    "id": lambda entries: lambda i: (str(entries[i].get("id", "")).zfill(12), i),
}


class LorebookEditor(QWidget):
    """Edits a V3 `character_book` dict; `book()` gives it back with the changes."""

    changed = Signal()

    def __init__(self, book: dict | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = QLineEdit()
        self.name.setPlaceholderText(self.tr("Lorebook name"))
        self.name.setAccessibleName(self.tr("Lorebook name"))
        self.entries = QListWidget()
        self.entries.setAccessibleName(self.tr("Lorebook entries"))
        self.form = EntryForm()
        self.count_label = QLabel()
        self.sort = QComboBox()
        self.sort.setAccessibleName(self.tr("Sort entries"))
        for label, key in SORTS:
            self.sort.addItem(self.tr(label), key)
        self._book: dict | None = None
        self._had_book = False
        self._row = -1
        self._build()
        self.set_book(book)

    def _build(self) -> None:
        buttons = QHBoxLayout()
        self.add_button = self._button(self.tr("Add entry"), self.add_entry)
        self.remove_button = self._button(self.tr("Remove entry"), self.remove_entry)
        self.import_button = self._button(self.tr("Import…"), self._choose_import)
        self.export_button = self._button(self.tr("Export…"), self._choose_export)
        self.import_button.setToolTip(
            self.tr("Add the entries of a lorebook or SillyTavern world info file")
        )
        for button in (self.add_button, self.remove_button, self.import_button, self.export_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        order = QHBoxLayout()  # a row of its own, so the editor fits beside a book list
        order.addWidget(self.sort)
        order.addWidget(self.count_label)
        order.addStretch(1)
        self.sort.currentIndexChanged.connect(lambda: self._refresh_list(self._row))
        self.entries.setMinimumWidth(180)
        self.entries.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.entries.setTextElideMode(Qt.TextElideMode.ElideRight)
        # The form scrolls rather than setting the window's smallest size (it is taller and
        # wider than an 800x600 screen has room for beside the entry list).
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        split = QSplitter()
        split.addWidget(self.entries)
        split.addWidget(scroll)
        split.setSizes([220, 520])
        layout = QVBoxLayout(self)
        top = QFormLayout()
        top.addRow(self.tr("Lorebook name"), self.name)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addLayout(order)
        layout.addWidget(split, 1)
        self.entries.currentRowChanged.connect(self._on_row)
        self.form.edited.connect(self._on_form_edited)
        self.name.textEdited.connect(self.changed)

    def _button(self, text: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setAccessibleName(text.rstrip("…"))
        button.clicked.connect(slot)
        return button

    # --- the book in and out ----------------------------------------------------------
    def set_book(self, book: dict | None) -> None:
        self._had_book = book is not None
        self._book = copy.deepcopy(book) if book is not None else {"entries": [], "extensions": {}}
        self._book.setdefault("entries", [])
        self.name.setText(str(self._book.get("name") or ""))
        self._row = -1
        self._refresh_list(0)

    def book(self) -> dict | None:
        """The edited book; None when there was none and the user added nothing."""
        self._commit()
        book = copy.deepcopy(self._book)
        name = self.name.text()
        if name != str(book.get("name") or ""):
            book["name"] = name
        if not self._had_book and not book["entries"] and not name:
            return None
        return book

    def entry_count(self) -> int:
        return len(self._book["entries"])

    # --- entries ----------------------------------------------------------------------
    def add_entry(self) -> None:
        self._commit()
        ids = [e.get("id") for e in self._book["entries"] if isinstance(e.get("id"), int)]
        self._book["entries"].append(
            {
                "keys": [],
                "content": "",
                "extensions": {},
                "enabled": True,
                "insertion_order": 100,
                "use_regex": False,
                "constant": False,
                "selective": False,
                "id": max(ids, default=-1) + 1,
                "comment": self.tr("New entry"),
            }
        )
        self._refresh_list(len(self._book["entries"]) - 1)
        self.form.keys.setFocus()
        self.changed.emit()

    def remove_entry(self) -> None:
        index = self._row  # the shown entry's place in the book
        if index < 0:
            return
        del self._book["entries"][index]
        self._row = -1
        self._refresh_list(min(index, len(self._book["entries"]) - 1))
        self.changed.emit()

    def _refresh_list(self, select: int) -> None:
        """List the entries in the chosen sort; `select` is an entry's place in the book
        (each item keeps it, so a sorted list still edits the right entry)."""
        self._commit()
        self.entries.blockSignals(True)
        self.entries.clear()
        entries = self._book["entries"]
        for i in sorted(range(len(entries)), key=_SORT_KEYS[self.sort.currentData()](entries)):
            item = QListWidgetItem(entry_title(entries[i], i))
            item.setData(Qt.ItemDataRole.UserRole, i)
            if not entries[i].get("enabled", True):
                item.setForeground(Qt.GlobalColor.gray)
                item.setToolTip(self.tr("Disabled"))
            self.entries.addItem(item)
        self.entries.blockSignals(False)
        self.count_label.setText(self.tr("{0} entries").format(self.entries.count()))
        self.set_filter(getattr(self, "_needle", ""))
        self._row = -1
        self.entries.setCurrentRow(self._row_of(select))
        self._on_row(self.entries.currentRow())

    def _row_of(self, index: int) -> int:
        for row in range(self.entries.count()):
            if self.entries.item(row).data(Qt.ItemDataRole.UserRole) == index:
                return row
        return -1

    def set_filter(self, needle: str) -> None:
        """Show only the entries whose title, keys or content hold `needle` (case-folded)."""
        self._needle = needle
        for row in range(self.entries.count()):
            entry = self._book["entries"][self.entries.item(row).data(Qt.ItemDataRole.UserRole)]
            text = " ".join(
                str(v)
                for v in (
                    entry.get("comment"),
                    entry.get("name"),
                    entry.get("content"),
                    *(entry.get("keys") or []),
                )
            )
            self.entries.setRowHidden(row, bool(needle) and needle not in text.casefold())

    def _on_row(self, row: int) -> None:
        self._commit()
        item = self.entries.item(row) if row >= 0 else None
        self._row = item.data(Qt.ItemDataRole.UserRole) if item is not None else -1
        self.form.setEnabled(self._row >= 0)
        self.remove_button.setEnabled(self._row >= 0)
        if self._row >= 0:
            self.form.load(self._book["entries"][self._row])

    def _commit(self) -> None:
        if 0 <= self._row < len(self._book["entries"]):
            self.form.store(self._book["entries"][self._row])

    def _on_form_edited(self) -> None:
        if 0 <= self._row < len(self._book["entries"]):
            self.form.store(self._book["entries"][self._row])
            item = self.entries.item(self._row_of(self._row))
            if item is not None:
                item.setText(entry_title(self._book["entries"][self._row], self._row))
        self.changed.emit()

    # --- files ------------------------------------------------------------------------
    def import_file(self, path: str) -> int:
        """Add the entries of a lorebook file; an empty book takes the whole file (its name
        and settings too). Returns how many entries came in; raises CardError."""
        imported = load_lorebook(path)
        self._commit()
        if not self._book["entries"]:
            self._book = imported
            self._had_book = True
            self.name.setText(str(imported.get("name") or ""))
        else:
            self._book["entries"].extend(imported["entries"])
        self._row = -1
        self._refresh_list(max(0, len(self._book["entries"]) - len(imported["entries"])))
        self.changed.emit()
        return len(imported["entries"])

    def export_file(self, path: str, *, world_info: bool = True) -> None:
        """Write the book as SillyTavern world info (default) or a V3 lorebook. CardError."""
        save_lorebook(self.book() or {"entries": [], "extensions": {}}, path, world_info=world_info)

    def _choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            self.tr("Import a lorebook"),
            "",
            self.tr("Lorebooks and world info (*.json);;Character cards (*.png *.charx)"),
        )
        if path:
            try:
                self.import_file(path)
            except CardError as exc:
                QMessageBox.warning(self, self.tr("Import a lorebook"), str(exc))

    def _choose_export(self) -> None:
        world_info = self.tr("SillyTavern world info (*.json)")
        path, chosen = QFileDialog.getSaveFileName(
            self,
            self.tr("Export the lorebook"),
            (self.name.text() or "lorebook") + ".json",
            f"{world_info};;{self.tr('V3 lorebook (*.json)')}",
        )
        if path:
            try:
                self.export_file(path, world_info=chosen == world_info)
            except CardError as exc:
                QMessageBox.warning(self, self.tr("Export the lorebook"), str(exc))
