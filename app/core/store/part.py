"""The base of the Store's managers: each shares the Store's connection and transactions."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.core.store.store import Store


def new_id(cursor: sqlite3.Cursor) -> int:
    """The id an INSERT gave its row (sqlite3 types `lastrowid` as optional)."""
    rowid = cursor.lastrowid
    if rowid is None:
        raise sqlite3.DatabaseError("an INSERT gave no row id")
    return rowid


class StorePart:
    """One manager of a `Store` (`store.chats`, `store.messages`, …). It reads and writes
    through the Store, so all of them share one connection, one lock and the same
    transaction rules, and one manager reaches another through `self._store`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._store._tx()

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self._store._query(sql, args)
