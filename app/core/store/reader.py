"""Reads for background threads: the newest part of a chat's path for its prompt, Find in a
chat, and the search across chats, each on its own read-only connection.

The Store's one connection is guarded by a lock; a 100,000-message read holding it would
stall every store call of the GUI thread behind it. A `Reader` opens its own connection
instead: the database is in WAL mode, so it reads the last committed state while the window
keeps writing, and nothing waits on it.

Find uses the full-text index (`messages_fts`, kept by triggers since the first schema): the
text typed is a phrase whose last word may be unfinished, and every hit is checked to hold
the text as typed (case aside). When the index finds nothing, the chat's texts are scanned,
so a piece from inside a word is still found.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from app.core.store import path_pages as pages
from app.core.store import purge as purging
from app.core.store.chats import ChatHit, fts_query
from app.core.store.db import StoreError
from app.core.store.message import Message, Role, Status


@dataclass(frozen=True)
class PathHits:
    """Where a text occurs on a chat's active path: `path` is every id, oldest first, and
    `hits` the positions in it whose message holds the text, oldest first."""

    needle: str
    path: list[int] = field(default_factory=list)
    hits: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class PathTail:
    """The newest messages of a path, oldest first, and what the path holds before them:
    `before` messages in all, `sent_before` of them a prompt would send (with text, not
    hidden system lines) and `user_before` of those the user's."""

    messages: list[Message]
    before: int = 0
    sent_before: int = 0
    user_before: int = 0


def phrase_query(needle: str) -> str | None:
    """The FTS5 query for `needle` as a phrase, its last word a prefix unless the needle
    ends between words; None when it holds no word the index knows."""
    if not any(ch.isalnum() for ch in needle):
        return None
    star = "*" if needle[-1].isalnum() else ""
    return '"' + needle.replace('"', '""') + '"' + star


_ROLES = {r.value: r for r in Role}
_STATUSES = {s.value: s for s in Status}


def _message(r: tuple[Any, ...]) -> Message:
    mid, chat, parent, role, text, status, created, info, extra, speaker = r
    return Message(
        mid,
        chat,
        parent,
        _ROLES[role],
        text,
        _STATUSES[status],
        created,
        json.loads(info) if info else None,
        extra=json.loads(extra) if extra else None,
        speaker_id=speaker,
    )


def read_tail(path: Path, chat_id: int, leaf: int | None, limit: int) -> PathTail:
    """`Reader.history_tail` on a connection of its own (nothing when `leaf` is None)."""
    if leaf is None:
        return PathTail([])
    with Reader(path) as reader:
        return reader.history_tail(chat_id, leaf, limit)


class Reader:
    """A read-only connection for one background job; use it as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"Could not read {path}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row

    def __enter__(self) -> Reader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def query(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"Could not read {self.path}: {exc}") from exc

    def leaf(self, chat_id: int) -> int | None:
        rows = self.query("SELECT active_leaf_id FROM chats WHERE id = ?", (chat_id,))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def history_tail(self, chat_id: int, leaf: int | None, limit: int) -> PathTail:
        """The newest `limit` messages of the path up to `leaf` (default: the active leaf),
        and the counts of the older ones: a prompt never needs more than its context's
        worth, and counting the rest stays inside SQLite (a 100,000-message path read row
        by row holds the interpreter for a second, and the GUI thread with it)."""
        leaf = self.leaf(chat_id) if leaf is None else leaf
        if leaf is None:
            return PathTail([])
        messages = self._path_rows(leaf, limit)
        if len(messages) < limit or messages[0].parent_id is None:
            return PathTail(messages)
        rows = self.query(
            f"{pages._UP} SELECT count(*), coalesce(sum(m.text != '' AND m.role != 'system'), 0),"
            " coalesce(sum(m.text != '' AND m.role = 'user'), 0)"
            " FROM up JOIN messages m ON m.id = up.id WHERE up.d >= ?",
            (leaf, pages.UNBOUNDED, limit),
        )
        before, sent, users = (int(v) for v in rows[0])
        return PathTail(messages, before, sent, users)

    def _path_rows(self, leaf: int, limit: int) -> list[Message]:
        try:  # plain tuples and known columns: `Message.from_row` costs 17 µs a row here
            cursor = self._conn.cursor()
            cursor.row_factory = None
            rows = cursor.execute(
                f"{pages._UP} SELECT m.id, m.chat_id, m.parent_id, m.role, m.text, m.status,"
                " m.created_at, m.gen_info, m.extra, m.speaker_id"
                " FROM up JOIN messages m ON m.id = up.id ORDER BY up.d DESC",
                (leaf, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"Could not read {self.path}: {exc}") from exc
        return [_message(r) for r in rows]

    def find_in_path(
        self, chat_id: int, needle: str, cancel: threading.Event | None = None
    ) -> PathHits:
        """Every message of the chat's active path that holds `needle`, case aside."""
        path = pages.path_ids(self.query, self.leaf(chat_id))
        folded = needle.casefold()
        if not folded or not path or (cancel is not None and cancel.is_set()):
            return PathHits(needle, path)
        where = {mid: i for i, mid in enumerate(path)}
        found = self._indexed(chat_id, needle, folded, where) or self._scanned(
            chat_id, folded, where, cancel
        )
        return PathHits(needle, path, sorted(found))

    def _indexed(self, chat_id: int, needle: str, folded: str, where: dict[int, int]) -> list[int]:
        query = phrase_query(needle)
        if query is None:
            return []
        # The index first, then the chat: joined the other way round SQLite walks the
        # whole chat and asks the index once per row (seconds at 100,000 messages).
        rows = self.query(
            "SELECT id, text FROM messages WHERE id IN"
            " (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?) AND chat_id = ?",
            (query, chat_id),
        )
        return [where[r[0]] for r in rows if r[0] in where and folded in r[1].casefold()]

    def _scanned(
        self, chat_id: int, folded: str, where: dict[int, int], cancel: threading.Event | None
    ) -> list[int]:
        cursor = self._conn.execute("SELECT id, text FROM messages WHERE chat_id = ?", (chat_id,))
        found = []
        while rows := cursor.fetchmany(2000):
            if cancel is not None and cancel.is_set():
                break
            found += [where[r[0]] for r in rows if r[0] in where and folded in r[1].casefold()]
        return found

    def search_chats(self, text: str, limit: int = 200, batch: int = 10) -> Iterator[list[ChatHit]]:
        """Messages holding every word of `text` across the chats not in the trash (none a
        delete hid), newest first, a batch at a time as the index yields them: newest-first
        is the index's own order, so the first hits come before the whole search is done
        (ranking by relevance would sort every match first)."""
        if not text.strip():
            return
        try:
            cursor = self._conn.execute(
                f"WITH RECURSIVE {purging.HIDDEN}"
                " SELECT m.id, m.chat_id, m.created_at, c.title, c.character_id,"
                " COALESCE((SELECT g.name FROM groups g WHERE g.id = c.group_id), ch.name)"
                " AS name, snippet(messages_fts, 0, '[', ']', '…', 12) AS snip"
                " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
                " JOIN chats c ON c.id = m.chat_id JOIN characters ch ON ch.id = c.character_id"
                " WHERE messages_fts MATCH ? AND c.deleted_at IS NULL AND ch.deleted_at IS NULL"
                " AND m.id NOT IN (SELECT id FROM hidden)"
                " ORDER BY messages_fts.rowid DESC LIMIT ?",
                (fts_query(text), limit),
            )
            while rows := cursor.fetchmany(batch):
                yield [ChatHit.of(r) for r in rows]
        except sqlite3.Error as exc:
            raise StoreError(f"Could not search {self.path}: {exc}") from exc
