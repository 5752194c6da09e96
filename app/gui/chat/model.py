"""The messages on a chat's active path, as a Qt list model.

Only the GUI thread touches this model (C6): the generation worker emits text,
the controller appends it here.
"""

from __future__ import annotations

from dataclasses import replace
from enum import IntEnum
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, Qt, Signal

from app.core.chat.job import PromptIds
from app.core.store import Message
from app.core.store.path_pages import UNBOUNDED
from app.core.store.tree import Messages


class Roles(IntEnum):
    MESSAGE = Qt.ItemDataRole.UserRole + 1
    ROLE = Qt.ItemDataRole.UserRole + 2
    NAME = Qt.ItemDataRole.UserRole + 3
    STATUS = Qt.ItemDataRole.UserRole + 4
    SWIPE = Qt.ItemDataRole.UserRole + 5
    OUT_OF_CONTEXT = Qt.ItemDataRole.UserRole + 6


# Messages shown when a chat opens; earlier ones load as the reader scrolls up. Each new
# bubble costs a text layout (about 1.5 ms here), so a page is about three screens, not more.
PAGE = 30


class ChatModel(QAbstractListModel):
    """A window of PAGE-sized pages over the path, read from the store page by page.

    Laying out a message costs a text layout and reading one costs a row, so a
    100,000-message chat must neither lay out nor read them all: the model holds the pages
    shown (the newest when a chat opens; the ones around a Find hit after a jump) and reads
    the page above or below when the reader scrolls there. Nothing here reads the whole
    path, except `messages()`, which scripts and tests use.
    """

    path_changed = Signal()  # another chat, a send, swipe or delete: positions moved

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._messages: list[Message] = []
        self._has_earlier = False
        self._has_later = False
        self._later_ids: list[int] | None = None  # the path below the window, when known
        self._context_start: int | None = None  # the oldest message the last prompt held
        self.prompt_ids = PromptIds()  # the messages the last prompt was built from
        self.source: Messages | None = None
        self.store_path: Path | None = None  # for background reads (Find)
        self.paging = False  # rows are coming in as a page, not as a new message
        self.chat_id: int | None = None
        self.leaf: int | None = None  # the newest message of the path shown
        self.names = {"user": "You", "assistant": "", "system": "System"}

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._messages)

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        # Editable so the view can open the delegate's in-place editor; the delegate, not
        # setData, saves the text (through the controller, into the store).
        return super().flags(index) | Qt.ItemFlag.ItemIsEditable

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._messages):
            return None
        msg = self._messages[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return msg.text
        return {
            Roles.MESSAGE: msg,
            Roles.ROLE: msg.role,
            Roles.NAME: self.name_of(msg),
            Roles.STATUS: msg.status,
            Roles.SWIPE: (msg.sibling_index + 1, msg.sibling_count),
            # ids grow down a path (a child is always written after its parent)
            Roles.OUT_OF_CONTEXT: self._context_start is not None and msg.id < self._context_start,
        }.get(role)

    def name_of(self, msg: Message) -> str:
        """The speaker's name as it was when the message was written (an imported chat's
        `name`, or the persona a Parlor message was sent as); else today's name."""
        for source in (msg.extra, msg.gen_info):
            name = (source or {}).get("name")
            if msg.role == "user" and isinstance(name, str) and name:
                return name
        return self.names.get(msg.role, "")

    # --- out of context -----------------------------------------------------------------
    def set_out_of_context(self, dropped: int) -> None:
        """Mark the `dropped` oldest messages of the last prompt (`prompt_ids`) as no longer
        in the model's context."""
        start, before = self.prompt_ids.first_kept(dropped), self._context_start
        if start == before:
            return
        self._context_start = start
        # only the rows whose mark changed: each turn of a long chat moves the start by a
        # message or two, and a change of every row makes the view lay out the whole page
        changed = [
            row
            for row, m in enumerate(self._messages)
            if (before is not None and m.id < before) != (start is not None and m.id < start)
        ]
        if changed:
            self.dataChanged.emit(self.index(changed[0]), self.index(changed[-1]))

    # --- which pages are loaded ---------------------------------------------------------
    def show_end(self, chat_id: int | None, leaf: int | None) -> None:
        """Show the newest page of the path that ends at `leaf` (None: an empty chat)."""
        self.chat_id, self.leaf = chat_id, leaf
        page = [] if self.source is None or leaf is None else self.source.tail(chat_id, PAGE, leaf)
        self._reset(page, bool(page) and page[0].parent_id is not None, False, None)

    def show_around(self, path: list[int], position: int) -> int:
        """Show the page of `path` (every id of the path, oldest first) around `position`
        and return the row it is on. For Find: its background search listed the path."""
        start = max(0, min(position - PAGE // 2, len(path) - PAGE))
        end = min(len(path), start + PAGE)
        page = self.source.placed(path[start:end]) if self.source is not None else []
        later = path[end:]
        self._reset(page, start > 0, bool(later), later or None, moved=False)
        return position - start

    def set_messages(self, messages: list[Message]) -> None:
        """Show exactly `messages` (a fixed list, for scripts and benchmarks)."""
        self.chat_id = self.leaf = None
        self._reset(list(messages), False, False, None)

    def _reset(
        self,
        page: list[Message],
        earlier: bool,
        later: bool,
        later_ids: list[int] | None,
        moved: bool = True,
    ) -> None:
        self.beginResetModel()
        self._messages, self._has_earlier, self._has_later = page, earlier, later
        self._later_ids = later_ids
        self.endResetModel()
        if moved:
            self.path_changed.emit()

    def has_earlier(self) -> bool:
        return self._has_earlier

    def has_later(self) -> bool:
        """The window ends above the newest message (after a jump to a Find hit)."""
        return self._has_later

    def load_earlier(self) -> int:
        """Prepend the previous page; returns how many messages were added."""
        if not self._has_earlier or not self._messages or self.source is None:
            return 0
        page = self.source.before(self._messages[0].id, PAGE)
        self._has_earlier = bool(page) and page[0].parent_id is not None
        if page:
            self.beginInsertRows(QModelIndex(), 0, len(page) - 1)
            self._messages[:0] = page
            self.endInsertRows()
        return len(page)

    def load_later(self) -> int:
        """Append the next page below the window; returns how many messages were added."""
        if not self._has_later or self.source is None:
            return 0
        if self._later_ids is not None:
            ids, self._later_ids = self._later_ids[:PAGE], self._later_ids[PAGE:] or None
            page = self.source.placed(ids)
            self._has_later = self._later_ids is not None
        else:  # below a swipe: the branch it restored, as the store follows it
            page = self.source.after(self._messages[-1].id, PAGE) if self._messages else []
            self._has_later = bool(page) and page[-1].id != self.leaf
        if page:
            first = len(self._messages)
            self.paging = True  # a page, not a new message: the view need not follow it
            try:
                self.beginInsertRows(QModelIndex(), first, first + len(page) - 1)
                self._messages += page
                self.endInsertRows()
            finally:
                self.paging = False
        return len(page)

    # --- what is shown ------------------------------------------------------------------
    def loaded(self) -> list[Message]:
        """The messages of the pages loaded, oldest first."""
        return list(self._messages)

    def message_at(self, row: int) -> Message | None:
        return self._messages[row] if 0 <= row < len(self._messages) else None

    def row_of(self, message_id: int) -> int:
        """The row showing `message_id`, or -1 when its page is not loaded."""
        return next((r for r, m in enumerate(self._messages) if m.id == message_id), -1)

    def rows_to_end(self, row: int) -> int | None:
        """How many messages run from row `row` to the end of the path, when the model knows
        without a read: the rows loaded reach the end, or a Find jump listed the ids below
        them. None for a row not loaded, or below a swipe whose branch is read as it goes."""
        if not 0 <= row < len(self._messages):
            return None
        below = len(self._messages) - row
        if not self._has_later:
            return below
        if self._later_ids and self._later_ids[-1] == self.leaf:
            return below + len(self._later_ids)
        return None

    def newest(self) -> Message | None:
        """The last message of the path, whether or not its page is loaded."""
        if not self._has_later:
            return self._messages[-1] if self._messages else None
        return self.source.get(self.leaf) if self.source is not None and self.leaf else None

    def messages(self) -> list[Message]:
        """Every message of the path, loaded or not: reads the whole path from the store,
        so it is for scripts and tests, never for what a click does."""
        if self.source is None or self.leaf is None:
            return list(self._messages)
        return self.source.tail(self.chat_id, UNBOUNDED, self.leaf)

    # --- changes at the end of the path -------------------------------------------------
    def append(self, message: Message) -> None:
        row = len(self._messages)
        self.beginInsertRows(QModelIndex(), row, row)
        self._messages.append(message)
        self.endInsertRows()
        self.leaf = message.id if self.chat_id is not None else self.leaf
        self.path_changed.emit()

    def replace_from(self, row: int, messages: list[Message], later: bool = False) -> None:
        """Put `messages` in place of row `row` and everything below it (a swipe, a new
        reply beside the last one); `later`: the branch goes on below them."""
        self.truncate(row, emit=False)
        if messages:
            self.beginInsertRows(QModelIndex(), row, row + len(messages) - 1)
            self._messages += messages
            self.endInsertRows()
        self._has_later, self._later_ids = later, None
        self.path_changed.emit()

    def truncate(self, row: int, emit: bool = True) -> None:
        """Drop row `row` and the rows below it (a delete waiting for its Undo)."""
        row = max(0, row)
        if row < len(self._messages):
            self.beginRemoveRows(QModelIndex(), row, len(self._messages) - 1)
            del self._messages[row:]
            self.endRemoveRows()
        if emit:
            self._has_later, self._later_ids = False, None
            self.path_changed.emit()

    def replace_message(self, message: Message) -> None:
        """Show a message's new text or status where it is (an edit)."""
        row = self.row_of(message.id)
        if row >= 0:
            self._messages[row] = message
            self.dataChanged.emit(self.index(row), self.index(row))

    def update_last(self, **changes) -> None:
        """Replace fields of the newest message (the reply being streamed); nothing while
        the window shows a page further up (after a Find jump): the row is not loaded."""
        if not self._messages or self._has_later:
            return
        self._messages[-1] = replace(self._messages[-1], **changes)
        index = self.index(len(self._messages) - 1)
        self.dataChanged.emit(index, index)

    def append_text(self, piece: str) -> None:
        if self._messages:
            self.update_last(text=self._messages[-1].text + piece)
