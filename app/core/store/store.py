"""The Store: characters, chats and the message tree, each change its own transaction.

Messages form a tree. A chat remembers its active leaf; every node remembers which child
was last shown (`active_child_id`), so swiping an earlier message and back restores the
path the user had below it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.store.chats import ChatLibrary
from app.core.store.db import StoreError, open_database
from app.core.store.personas import Personas
from app.core.store.tree import MessageTree

if TYPE_CHECKING:
    from app.core.store.groups import GroupStore


class Store(MessageTree, ChatLibrary, Personas):
    """All reads and writes of the history. Safe to call from one thread at a time."""

    def __init__(self, path: Path):
        self.path = path
        self._conn = open_database(path)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @property
    def groups(self) -> GroupStore:
        """Group chats (groups.py): members, settings, chats and who spoke each message."""
        from app.core.store.groups import GroupStore  # groups.py builds on this module

        return GroupStore(self)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                # Any failure (a value SQLite cannot bind, a bug, Ctrl+C) ends the
                # transaction here; left open, it would make every later write fail too.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"Could not save to {self.path}: {exc}") from exc
                if isinstance(exc, UnicodeEncodeError):
                    raise StoreError(f"Could not save to {self.path}: the text holds a "
                                     "character UTF-8 cannot store (a lone surrogate)") from exc
                raise

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"Could not read {self.path}: {exc}") from exc

    # --- characters -------------------------------------------------------------------
    def add_character(self, card_data: dict, avatar: bytes | None = None,
                      builtin_key: str | None = None, extra: dict | None = None) -> int:
        """`card_data` is the V3 `data`; `extra` the card's other top-level keys (kept so an
        export gives back what was imported)."""
        now = time.time()
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO characters (name, card_json, avatar, builtin_key, created_at,"
                " updated_at, card_extra) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (card_data.get("name") or "Unnamed", json.dumps(card_data), avatar,
                 builtin_key, now, now, json.dumps(extra) if extra else None))
            return cur.lastrowid

    def character_extra(self, character_id: int) -> dict:
        rows = self._query("SELECT card_extra FROM characters WHERE id = ?", (character_id,))
        try:
            extra = json.loads(rows[0]["card_extra"]) if rows and rows[0]["card_extra"] else {}
        except (TypeError, ValueError, RecursionError):
            extra = None
        return extra if isinstance(extra, dict) else {}  # optional keys: damaged means none

    def character_by_builtin(self, key: str) -> int | None:
        rows = self._query("SELECT id FROM characters WHERE builtin_key = ?", (key,))
        return rows[0]["id"] if rows else None

    def characters(self) -> list[sqlite3.Row]:
        return self._query("SELECT id, name, avatar FROM characters WHERE deleted_at IS NULL"
                           " ORDER BY name COLLATE NOCASE")

    def update_character(self, character_id: int, card_data: dict,
                         avatar: bytes | None = None) -> None:
        """Save an edited card (and avatar) over the stored one, in one commit."""
        with self._tx() as c:
            c.execute("UPDATE characters SET name = ?, card_json = ?, avatar = ?,"
                      " updated_at = ? WHERE id = ?",
                      (card_data.get("name") or "Unnamed", json.dumps(card_data), avatar,
                       time.time(), character_id))

    def character_card(self, character_id: int) -> dict:
        rows = self._query("SELECT card_json FROM characters WHERE id = ?", (character_id,))
        if not rows:
            raise StoreError(f"No character with id {character_id}")
        # A row written by an older, unchecked import may hold anything: say so, never crash
        # the library that lists it (it aborted every start).
        try:
            data = json.loads(rows[0]["card_json"])
        except (TypeError, ValueError, RecursionError) as exc:
            raise StoreError(f"Character {character_id} in {self.path} is damaged: its card "
                             f"is not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise StoreError(f"Character {character_id} in {self.path} is damaged: its card "
                             f"is a JSON {type(data).__name__}, not an object")
        return data

    def find_characters(self, name: str) -> list[sqlite3.Row]:
        """Characters (not in the trash) with this name, ignoring case, newest first."""
        return self._query("SELECT id, name, card_json FROM characters WHERE deleted_at IS NULL"
                           " AND name = ? COLLATE NOCASE ORDER BY id DESC", (name,))

    def delete_character(self, character_id: int) -> None:
        """Move a character (and so its chats) to the trash; `restore_character` undoes it."""
        self.character_card(character_id)
        with self._tx() as c:
            c.execute("UPDATE characters SET deleted_at = ? WHERE id = ?",
                      (time.time(), character_id))

    def restore_character(self, character_id: int) -> None:
        self.character_card(character_id)
        with self._tx() as c:
            c.execute("UPDATE characters SET deleted_at = NULL WHERE id = ?", (character_id,))

    def character_trash(self) -> list[sqlite3.Row]:
        return self._query("SELECT id, name, avatar, deleted_at FROM characters"
                           " WHERE deleted_at IS NOT NULL ORDER BY deleted_at DESC")

    # --- chats ------------------------------------------------------------------------
    def new_chat(self, character_id: int, greetings: list[str], title: str = "") -> int:
        """Start a chat; each greeting becomes a root-level swipe, the first one shown."""
        now = time.time()
        with self._tx() as c:
            chat_id = c.execute(
                "INSERT INTO chats (character_id, title, created_at, last_used_at)"
                " VALUES (?, ?, ?, ?)",
                (character_id, title or time.strftime("Chat %Y-%m-%d %H:%M"), now, now),
            ).lastrowid
            first = None
            for text in greetings:
                mid = c.execute(
                    "INSERT INTO messages (chat_id, parent_id, role, text, created_at)"
                    " VALUES (?, NULL, 'assistant', ?, ?)", (chat_id, text, now)).lastrowid
                first = first or mid
            c.execute("UPDATE chats SET active_leaf_id = ? WHERE id = ?", (first, chat_id))
        return chat_id

    def chats(self, character_id: int) -> list[sqlite3.Row]:
        return self._query(
            "SELECT id, title, last_used_at FROM chats WHERE character_id = ?"
            " AND deleted_at IS NULL ORDER BY last_used_at DESC", (character_id,))

    def touch_chat(self, chat_id: int) -> None:
        with self._tx() as c:
            c.execute("UPDATE chats SET last_used_at = ? WHERE id = ?", (time.time(), chat_id))

    def chat_character(self, chat_id: int) -> int:
        return self._query("SELECT character_id FROM chats WHERE id = ?", (chat_id,))[0][0]

    def set_draft(self, chat_id: int, text: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE chats SET draft = ? WHERE id = ?", (text, chat_id))

    def draft(self, chat_id: int) -> str:
        rows = self._query("SELECT draft FROM chats WHERE id = ?", (chat_id,))
        return rows[0]["draft"] if rows else ""
