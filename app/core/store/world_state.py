"""World info kept in the database: per-chat SillyTavern metadata, timed effects per message,
and the library of world-info books.

Per chat, everything lives in the chat's SillyTavern `chat_metadata` (in `chats.extra`, which
import and export already carry): the author's note (`note_prompt`, `note_interval`,
`note_position`, `note_depth`, `note_role`), the chat's scenario (`scenario`), its chat lore
(`world_info`, a book's name) and the seed for probability and group draws (`integrity`).

Sticky and cooldown state (SillyTavern's `timedWorldInfo`) is stored after the message that
ended the history it was computed for. A prompt reads the state of the nearest message on its
own path, so swipes share their parent's state and each branch keeps its own timeline.

Books are stored in Parlor's V3 `character_book` shape, with SillyTavern's extra fields kept
by `app.core.cards` (so export gives the world-info file back).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from app.core.cards import lorebook_from_json
from app.core.store.db import StoreError
from app.core.store.store import Store


@dataclass(frozen=True)
class StoredBook:
    id: int
    name: str
    book: dict[str, Any]
    is_global: bool
    characters: tuple[int, ...] = ()


class WorldInfoStore:
    """World-info reads and writes over one `Store` (its connection and transactions)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- the chat's SillyTavern metadata --------------------------------------------------

    def chat_metadata(self, chat_id: int) -> dict[str, Any]:
        meta = self.store.chats.extra(chat_id).get("chat_metadata")
        return dict(meta) if isinstance(meta, dict) else {}

    def update_chat_metadata(self, chat_id: int, values: dict[str, Any]) -> None:
        """Set keys of the chat's metadata; a value of None removes its key."""
        extra = self.store.chats.extra(chat_id)
        meta = extra.get("chat_metadata")
        meta = dict(meta) if isinstance(meta, dict) else {}
        for key, value in values.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        self.store.chats.set_extra(chat_id, {**extra, "chat_metadata": meta})

    def seed(self, chat_id: int) -> str:
        """The chat's seed: its SillyTavern `integrity` id, made once and kept."""
        seed = self.chat_metadata(chat_id).get("integrity")
        if isinstance(seed, str) and seed:
            return seed
        seed = str(uuid.uuid4())
        self.update_chat_metadata(chat_id, {"integrity": seed})
        return seed

    # --- timed effects ----------------------------------------------------------------------

    def timed_state(self, path_ids: list[int]) -> dict[str, Any] | None:
        """The state stored on the nearest message of `path_ids` (oldest first)."""
        if not path_ids:
            return None
        marks = ",".join("?" * len(path_ids))
        rows = self.store._query(
            f"SELECT message_id, state FROM world_info_timed WHERE message_id IN ({marks})",
            tuple(path_ids),
        )
        states = {row["message_id"]: row["state"] for row in rows}
        for message_id in reversed(path_ids):
            if message_id in states:
                state = json.loads(states[message_id])
                return state if isinstance(state, dict) else None
        return None

    def save_timed_state(self, message_id: int, state: dict[str, Any]) -> None:
        text = json.dumps(state, ensure_ascii=False, sort_keys=True)
        with self.store._tx() as conn:
            conn.execute(
                "INSERT INTO world_info_timed (message_id, state) VALUES (?, ?) "
                "ON CONFLICT(message_id) DO UPDATE SET state = excluded.state",
                (message_id, text),
            )

    # --- the book library -------------------------------------------------------------------

    def save_book(self, name: str, raw: Any, *, is_global: bool | None = None) -> StoredBook:
        """Add or replace the book `name` from any lorebook JSON (world info, V3, a card)."""
        name = name.strip()
        if not name:
            raise StoreError("A world-info book needs a name")
        book = lorebook_from_json(raw, name=name, source=name)
        book["name"] = name
        text = json.dumps(book, ensure_ascii=False)
        with self.store._tx() as conn:
            conn.execute(
                "INSERT INTO world_books (name, book_json, is_global, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET book_json = "
                "excluded.book_json, updated_at = excluded.updated_at"
                + (", is_global = excluded.is_global" if is_global is not None else ""),
                (name, text, int(bool(is_global)), time.time()),
            )
        stored = self.book(name)
        if stored is None:  # just written in this transaction's connection
            raise StoreError(f"The lorebook {name!r} could not be saved")
        return stored

    def book(self, name: str) -> StoredBook | None:
        rows = self.store._query("SELECT * FROM world_books WHERE name = ?", (name,))
        return self._stored(rows[0]) if rows else None

    def books(self) -> list[StoredBook]:
        rows = self.store._query("SELECT * FROM world_books ORDER BY name COLLATE NOCASE")
        return [self._stored(row) for row in rows]

    def delete_book(self, name: str) -> None:
        with self.store._tx() as conn:
            conn.execute("DELETE FROM world_books WHERE name = ?", (name,))

    def rename_book(self, name: str, new_name: str) -> None:
        new_name = new_name.strip()
        if not new_name:
            raise StoreError("A world-info book needs a name")
        stored = self.book(name)
        if stored is None:
            raise StoreError(f"There is no world-info book named {name!r}")
        with self.store._tx() as conn:
            if conn.execute("SELECT 1 FROM world_books WHERE name = ?", (new_name,)).fetchone():
                raise StoreError(f"A world-info book named {new_name!r} already exists")
            book = {**stored.book, "name": new_name}
            conn.execute(
                "UPDATE world_books SET name = ?, book_json = ?, updated_at = ? WHERE id = ?",
                (new_name, json.dumps(book, ensure_ascii=False), time.time(), stored.id),
            )

    def set_global(self, name: str, on: bool) -> None:
        with self.store._tx() as conn:
            conn.execute("UPDATE world_books SET is_global = ? WHERE name = ?", (int(on), name))

    def link_character(self, name: str, character_id: int, on: bool) -> None:
        stored = self.book(name)
        if stored is None:
            raise StoreError(f"There is no world-info book named {name!r}")
        with self.store._tx() as conn:
            if on:
                conn.execute(
                    "INSERT OR IGNORE INTO world_book_characters VALUES (?, ?)",
                    (stored.id, character_id),
                )
            else:
                conn.execute(
                    "DELETE FROM world_book_characters WHERE book_id = ? AND character_id = ?",
                    (stored.id, character_id),
                )

    def _stored(self, row: sqlite3.Row) -> StoredBook:
        links = self.store._query(
            "SELECT character_id FROM world_book_characters WHERE "
            "book_id = ? ORDER BY character_id",
            (row["id"],),
        )
        return StoredBook(
            row["id"],
            row["name"],
            self._parsed(row),
            bool(row["is_global"]),
            tuple(r["character_id"] for r in links),
        )

    def _parsed(self, row: sqlite3.Row) -> dict[str, Any]:
        """The book's dict, the same object while the book is unchanged: the prompt
        builder reads a book's entries once per book object, so a big global book is not
        read again every turn. Callers treat books as values (the editor copies them)."""
        key = (str(self.store.path), row["id"], row["updated_at"], row["name"])
        with _PARSED_LOCK:
            book = _PARSED.get(key)
            if book is None:
                if len(_PARSED) >= 64:
                    _PARSED.pop(next(iter(_PARSED)))
                book = _PARSED[key] = json.loads(row["book_json"])
        return book


_PARSED: dict[tuple[Any, ...], dict[str, Any]] = {}
_PARSED_LOCK = threading.Lock()
