"""The Store: one SQLite file and its managers, each change its own transaction.

    store.characters.add(card_data)        store.chats.new(character_id, greetings)
    store.messages.append(chat, parent, "user", text)   store.personas.list()

Messages form a tree. A chat remembers its active leaf; every node remembers which child
was last shown (`active_child_id`), so swiping an earlier message and back restores the
path the user had below it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.store.characters import Characters
from app.core.store.chats import Chats
from app.core.store.db import StoreError, open_database
from app.core.store.personas import Personas
from app.core.store.tree import Messages

if TYPE_CHECKING:
    from app.core.store.groups import GroupStore


class Store:
    """All reads and writes of the history, through its managers. Safe to call from one
    thread at a time (a re-entrant lock guards the one connection)."""

    def __init__(self, path: Path):
        self.path = path
        self._conn = open_database(path)
        self._lock = threading.RLock()
        self.characters = Characters(self)
        self.chats = Chats(self)
        self.messages = Messages(self)
        self.personas = Personas(self)

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
                    raise StoreError(
                        f"Could not save to {self.path}: the text holds a "
                        "character UTF-8 cannot store (a lone surrogate)"
                    ) from exc
                raise

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"Could not read {self.path}: {exc}") from exc
