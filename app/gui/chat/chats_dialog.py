"""The chat manager: one character's chats (open, rename, duplicate, delete with undo,
export, import a SillyTavern file) and a search across every chat.

Nothing here blocks: questions are non-modal boxes, and the import takes its "accept the
malformed lines?" answer from a callback, so tests drive the same code the buttons do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from app.core.chat_io import ChatIOError, LineProblem, export_chat, import_st_chat
from app.core.store import StoreError
from app.core.store.reader import Reader
from app.gui.chat.chat_import_job import start_chat_import
from app.gui.models.jobs import JobSlot, Report
from app.gui.undo_bar import make_undo_bar
from app.gui.window_state import remember_size

ID_ROLE = Qt.ItemDataRole.UserRole
EXPORT_FILTERS = {
    "SillyTavern chat (*.jsonl)": "jsonl",
    "Markdown (*.md)": "md",
    "Plain text (*.txt)": "txt",
}
Accept = Callable[[list[LineProblem]], bool]


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def search_all(path: Path, text: str, report: Report, cancel: threading.Event) -> None:
    """The search across chats, on a background thread: each batch of hits is reported
    as the index yields it, so the first ones show while the rest are still looked for."""
    with Reader(path) as reader:
        for batch in reader.search_chats(text):
            if cancel.is_set():
                return
            report(batch, milestone=True)


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in " -_" else "_" for ch in name).strip() or "chat"


class ChatsDialog(QDialog):
    """Manage the chats of `character_id`; `chat_chosen` asks the window to open one.

    `chats_changed` fires after anything that changes the list (so the header's combo can
    follow), including deleting the chat that is open."""

    chat_chosen = Signal(int)
    chats_changed = Signal()
    searched = Signal(int)  # a search across chats has finished: how many hits

    def __init__(
        self, store, character_id: int, current_chat: int | None = None, parent=None
    ) -> None:
        super().__init__(parent)
        self.store, self.character_id, self.current_chat = store, character_id, current_chat
        self._trash: list[tuple[int, str]] = []
        self._search_job = JobSlot()
        self.last_box: QMessageBox | None = None
        self.import_job = None  # the background read of a chat file (chat_import_job)
        name = store.characters.card(character_id).get("name") or ""
        self.setWindowTitle(self.tr("Chats with {0}").format(name))
        self.resize(640, 460)
        remember_size(self, "chats")
        self._build()
        self.reload()

    # --- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText(self.tr("Search the text of all chats…"))
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setAccessibleName(self.tr("Search all chats"))
        self.list = self._chat_tree()
        self.hits = QListWidget()
        self.hits.setAccessibleName(self.tr("Search results"))
        self.hits.setWordWrap(True)
        self.hits.setAlternatingRowColors(True)
        self.hits.setSpacing(3)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.list)
        self.pages.addWidget(self.hits)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # file names and chat titles
        self.status.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.search_box)
        lay.addWidget(self.pages, 1)
        lay.addWidget(self._undo_bar())
        lay.addWidget(self.status)
        lay.addLayout(self._buttons())
        self._search_timer = QTimer(self, singleShot=True, interval=250)
        self._search_timer.timeout.connect(lambda: self.search(self.search_box.text()))
        self.search_box.textChanged.connect(lambda _t: self._search_timer.start())
        self.hits.itemActivated.connect(self._open_item)  # double-click or Enter

    def _chat_tree(self) -> QTreeWidget:
        tree = QTreeWidget()
        tree.setHeaderLabels([self.tr("Chat"), self.tr("Messages"), self.tr("Last used")])
        tree.setRootIsDecorated(False)
        tree.setAlternatingRowColors(True)
        tree.setAccessibleName(self.tr("Chats with this character"))
        tree.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        tree.setColumnWidth(0, 330)
        tree.setColumnWidth(1, 80)
        tree.itemActivated.connect(self._open_item)  # double-click or Enter (F2 renames)
        tree.itemChanged.connect(self._on_item_renamed)
        tree.currentItemChanged.connect(lambda *_: self._update_buttons())
        return tree

    def _undo_bar(self) -> QFrame:
        return make_undo_bar(self, self.undo_delete)

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        specs = [
            ("open_button", self.tr("Open"), self.open_selected),
            ("rename_button", self.tr("Rename"), self._start_rename),
            ("duplicate_button", self.tr("Duplicate"), self._duplicate_selected),
            ("delete_button", self.tr("Delete"), self._delete_selected),
            ("export_button", self.tr("Export…"), self._choose_export),
            ("import_button", self.tr("Import SillyTavern chat…"), self._choose_import),
        ]
        for attr, text, slot in specs:
            button = QPushButton(text)
            button.setAutoDefault(False)
            button.clicked.connect(slot)
            setattr(self, attr, button)
            row.addWidget(button)
        row.addStretch(1)
        close = QPushButton(self.tr("Close"))
        close.setAutoDefault(False)
        close.clicked.connect(self.close)
        row.addWidget(close)
        return row

    # --- the list ----------------------------------------------------------------------
    def reload(self, select: int | None = None) -> None:
        """Show the character's chats, most recently used first, keeping the selection."""
        keep = select if select is not None else self.selected_id()
        self.list.blockSignals(True)  # filling the list is not a rename
        self.list.clear()
        rows = [r for r in self.store.chats.all() if r.character_id == self.character_id]
        for row in rows:
            item = QTreeWidgetItem([row.title, str(row.message_count), _when(row.last_used_at)])
            item.setData(0, ID_ROLE, row.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if row.id == self.current_chat:
                font = item.font(0)
                font.setBold(True)
                item.setFont(0, font)
                item.setToolTip(0, self.tr("The chat that is open"))
            self.list.addTopLevelItem(item)
            if row.id == keep:
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None and self.list.topLevelItemCount():
            self.list.setCurrentItem(self.list.topLevelItem(0))
        self.list.blockSignals(False)
        self._update_buttons()

    def chat_ids(self) -> list[int]:
        return [
            self.list.topLevelItem(i).data(0, ID_ROLE) for i in range(self.list.topLevelItemCount())
        ]

    def selected_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(0, ID_ROLE) if item is not None else None

    def select(self, chat_id: int) -> bool:
        for i in range(self.list.topLevelItemCount()):
            if self.list.topLevelItem(i).data(0, ID_ROLE) == chat_id:
                self.list.setCurrentItem(self.list.topLevelItem(i))
                return True
        return False

    def _update_buttons(self) -> None:
        """The list's buttons act on the list; while search results show, only Open (the
        chosen hit) makes sense."""
        searching = self.pages.currentWidget() is self.hits
        has = self.selected_id() is not None and not searching
        for button in (
            self.rename_button,
            self.duplicate_button,
            self.delete_button,
            self.export_button,
        ):
            button.setEnabled(has)
        self.open_button.setEnabled(has or searching)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    # --- open, rename, duplicate -------------------------------------------------------
    def open_chat(self, chat_id: int) -> None:
        """Ask the window to open `chat_id` (maybe another character's) and get out of
        the way."""
        self.chat_chosen.emit(chat_id)
        self.close()

    def open_selected(self) -> None:
        if self.pages.currentWidget() is self.hits:
            if (hit := self.hits.currentItem()) is not None:
                self._open_item(hit)
        elif (chat_id := self.selected_id()) is not None:
            self.open_chat(chat_id)

    def _open_item(self, item, *_column) -> None:
        data = item.data(0, ID_ROLE) if isinstance(item, QTreeWidgetItem) else item.data(ID_ROLE)
        if data is not None:
            self.open_chat(data)

    def _start_rename(self) -> None:
        if (item := self.list.currentItem()) is not None:
            self.list.editItem(item, 0)

    def _on_item_renamed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0:
            self.rename(item.data(0, ID_ROLE), item.text(0))

    def rename(self, chat_id: int, title: str) -> bool:
        """Rename; an empty title keeps the old one (a chat always has a name to show)."""
        title = title.strip()
        if not title:
            self.reload()
            self._say(self.tr("A chat needs a name; kept the old one."))
            return False
        self.store.chats.rename(chat_id, title)
        self.reload(select=chat_id)
        self.chats_changed.emit()
        return True

    def duplicate(self, chat_id: int) -> int:
        title = self.tr("{0} (copy)").format(self.store.chats.info(chat_id).title)
        new_id = self.store.chats.duplicate(chat_id, title)
        self.reload(select=new_id)
        self.chats_changed.emit()
        self._say(self.tr("Made a copy: {0}").format(title))
        return new_id

    def _duplicate_selected(self) -> None:
        if (chat_id := self.selected_id()) is not None:
            self.duplicate(chat_id)

    # --- delete and undo ---------------------------------------------------------------
    def delete(self, chat_id: int) -> None:
        """Move to the trash and offer to undo (the store keeps it until the trash is
        emptied)."""
        title = self.store.chats.info(chat_id).title
        self.store.chats.delete(chat_id)
        self._trash.append((chat_id, title))
        self.reload()
        self.chats_changed.emit()
        self.undo_label.setText(self.tr("“{0}” was moved to the trash.").format(title))
        self.undo_bar.show()

    def _delete_selected(self) -> None:
        if (chat_id := self.selected_id()) is not None:
            self.delete(chat_id)

    def _in_trash(self, chat_id: int) -> bool:
        try:
            return (self.store.chats.info(chat_id).deleted_at or 0) > 0
        except StoreError:
            return False

    def undo_delete(self) -> int | None:
        """Bring back the chat deleted last; None if there is nothing to undo."""
        if not self._trash:
            return None
        chat_id, title = self._trash.pop()
        try:
            if not self._in_trash(chat_id):  # deleted for good there since the offer
                raise StoreError(self.tr("it was deleted for good"))
            self.store.chats.restore(chat_id)
        except StoreError as exc:
            self._say(self.tr("“{0}” cannot come back: {1}").format(title, exc))
            chat_id = None
        else:
            self.reload(select=chat_id)
            self.chats_changed.emit()
            self._say(self.tr("“{0}” is back.").format(title))
        if self._trash:
            self.undo_label.setText(
                self.tr("“{0}” was moved to the trash.").format(self._trash[-1][1])
            )
        else:
            self.undo_bar.hide()
        return chat_id

    # --- export and import -------------------------------------------------------------
    def export_file(self, chat_id: int, path: str, fmt: str | None = None) -> bool:
        """Write the chat's active path (and, for .jsonl, the rest of its tree)."""
        try:
            export_chat(self.store, chat_id, path, fmt)
        except (ChatIOError, StoreError) as exc:
            self._say(str(exc))
            return False
        self._say(self.tr("Saved {0}.").format(path))
        return True

    def _choose_export(self) -> None:
        chat_id = self.selected_id()
        if chat_id is None:
            return
        title = self.store.chats.info(chat_id).title
        path, chosen = QFileDialog.getSaveFileName(
            self,
            self.tr("Export {0}").format(title),
            _safe_name(title) + ".jsonl",
            ";;".join(EXPORT_FILTERS),
        )
        if path:
            fmt = EXPORT_FILTERS.get(chosen, "jsonl")
            if Path(path).suffix.lower().lstrip(".") in ("jsonl", "md", "txt"):
                fmt = None  # the extension the user typed wins over the filter
            self.export_file(chat_id, path, fmt)

    def import_file(self, path: str, accept_problems: Accept, parsed=None) -> int | None:
        """Import a SillyTavern `.jsonl` chat for this character. Malformed lines are
        listed with their line numbers and the rest is imported only if
        `accept_problems(problems)` says yes. Returns the new chat's id."""
        try:
            result = import_st_chat(
                self.store, path, self.character_id, accept=accept_problems, parsed=parsed
            )
        except StoreError as exc:  # the file was fine, the database could not take it
            self._say(str(exc))
            return None
        except ChatIOError as exc:
            self._say(
                str(exc)
                if not exc.problems
                else self.tr("{0}: not imported ({1} malformed line(s)).").format(
                    Path(path).name, len(exc.problems)
                )
            )
            return None
        self.reload(select=result.chat_id)
        self.chats_changed.emit()
        notes = [str(p) for p in result.problems] + result.warnings
        text = self.tr("Imported {0} ({1} messages).").format(Path(path).name, result.messages)
        self._say(" ".join([text, *([self.tr("Skipped:")] if result.problems else []), *notes]))
        return result.chat_id

    def _choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            self.tr("Import a SillyTavern chat"),
            "",
            self.tr("SillyTavern chats (*.jsonl);;All files (*)"),
        )
        if path:
            start_chat_import(self, path)  # read off the GUI thread, with Cancel

    def import_asking(self, path: str) -> int | None:
        """Import; if some lines are malformed, ask in a non-modal box and import the rest
        only when the user says yes."""
        return self.import_file(path, lambda problems: self._ask_later(path, problems))

    def _ask_later(self, path: str, problems: list[LineProblem]) -> bool:
        listed = "\n".join(str(p) for p in problems[:20])
        if len(problems) > 20:
            listed += "\n" + self.tr("… and {0} more").format(len(problems) - 20)
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            self.tr("Import a SillyTavern chat"),
            self.tr("{0} line(s) of {1} could not be read. Import the rest?").format(
                len(problems), Path(path).name
            ),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setInformativeText(listed)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setModal(False)
        box.buttonClicked.connect(lambda b: self._on_answer(box, b, path))
        box.show()
        self.last_box = box
        return False  # not now; the answer comes back through the box

    def _on_answer(self, box: QMessageBox, button, path: str) -> None:
        if box.standardButton(button) == QMessageBox.StandardButton.Yes:
            start_chat_import(self, path, accept_all=True)

    # --- search across all chats -------------------------------------------------------
    def search(self, text: str) -> None:
        """Show messages of every chat (any character) containing all the words of
        `text`, newest first, as a background search finds them; `searched` gives the
        count at the end. An empty text shows this character's chats again."""
        self._search_timer.stop()
        self._search_job.drop()
        if not text.strip():
            self.pages.setCurrentWidget(self.list)
            self._update_buttons()
            return
        self.hits.clear()
        self.pages.setCurrentWidget(self.hits)
        self._update_buttons()
        self._say(self.tr("Searching…"))
        path = self.store.path
        self._search_job.start(
            lambda report, cancel: search_all(path, text, report, cancel),
            on_progress=self._add_hits,
            on_success=lambda _none: self._search_finished(text),
            on_failure=self._say,
            name="search-chats",
        )

    def _add_hits(self, batch) -> None:
        for hit in batch:
            item = QListWidgetItem(
                f"{hit.character_name} · {hit.chat_title}\n    “{' '.join(hit.snippet.split())}”"
            )
            item.setData(ID_ROLE, hit.chat_id)
            item.setToolTip(self.tr("Double-click to open this chat"))
            self.hits.addItem(item)

    def _search_finished(self, text: str) -> None:
        found = len(self.hit_chat_ids())
        if not found:
            placeholder = QListWidgetItem(self.tr("No message contains “{0}”.").format(text))
            placeholder.setFlags(Qt.ItemFlag.NoItemFlags)
            self.hits.addItem(placeholder)
        self._say(self.tr("{0} message(s) found.").format(found) if found else "")
        self.searched.emit(found)

    def closeEvent(self, event) -> None:  # noqa: N802
        self._search_job.drop()  # its late hits have no list to go to
        super().closeEvent(event)

    def hit_chat_ids(self) -> list[int]:
        return [
            self.hits.item(i).data(ID_ROLE)
            for i in range(self.hits.count())
            if self.hits.item(i).data(ID_ROLE) is not None
        ]
