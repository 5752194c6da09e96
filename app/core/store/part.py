"""The base of the Store's managers: each shares the Store's connection and transactions."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.store.store import Store


class StorePart:
    """One manager of a `Store` (`store.chats`, `store.messages`, …). It reads and writes
    through the Store, so all of them share one connection, one lock and the same
    transaction rules, and one manager reaches another through `self._store`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._store._tx()

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        return self._store._query(sql, args)
