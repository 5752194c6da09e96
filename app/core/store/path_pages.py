"""A chat's active path read a page at a time, and the tree walks that cost what they change.

A 100,000-message chat must open, take a message and swipe without reading 100,000 rows:
every query here follows the tree from one node (a recursive CTE over primary-key and
`messages_by_parent` lookups), so its cost is the number of messages it returns or walks
past, never the size of the chat. The functions take a `Query` so the Store's connection and
a background reader's own connection (reader.py) run the same SQL.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from app.core.store.message import Message

Query = Callable[[str, tuple[object, ...]], list[sqlite3.Row]]

# A message with its place among its swipes, from the (chat_id, parent_id) index.
_COLUMNS = (
    "m.*, (SELECT count(*) FROM messages s WHERE s.chat_id = m.chat_id"
    " AND s.parent_id IS m.parent_id AND s.id < m.id) AS sibling_index,"
    " (SELECT count(*) FROM messages s WHERE s.chat_id = m.chat_id"
    " AND s.parent_id IS m.parent_id) AS sibling_count"
)

# Up to the root; a message a delete hid is its own parent (purge.py), and a walk from
# inside a hidden branch stops there instead of going round.
_UP = (
    "WITH RECURSIVE up(id, d) AS (SELECT ?, 0 UNION ALL SELECT m.parent_id, d + 1"
    " FROM messages m JOIN up ON m.id = up.id WHERE m.parent_id IS NOT NULL"
    " AND m.parent_id != m.id AND d + 1 < ?)"
)

# Down a branch the way a swipe restores it: each node's remembered child while it is still
# a child of that node (SQLite reuses deleted ids), else its newest child.
_DOWN = (
    "WITH RECURSIVE down(id, d) AS (SELECT ?, 0 UNION ALL SELECT COALESCE("
    "(SELECT c.id FROM messages c WHERE c.id = p.active_child_id AND c.parent_id = p.id),"
    " (SELECT max(c.id) FROM messages c WHERE c.chat_id = p.chat_id AND c.parent_id = p.id)),"
    " d + 1 FROM down JOIN messages p ON p.id = down.id WHERE d < ?)"
)

UNBOUNDED = 1 << 62


def _messages(rows: list[sqlite3.Row]) -> list[Message]:
    return [Message.from_row(r, r["sibling_index"], r["sibling_count"]) for r in rows]


def up_to(query: Query, node: int, n: int) -> list[Message]:
    """`node` and up to `n - 1` of its ancestors, oldest first."""
    if n <= 0:
        return []
    rows = query(
        f"{_UP} SELECT {_COLUMNS} FROM up JOIN messages m ON m.id = up.id ORDER BY up.d DESC",
        (node, n),
    )
    return _messages(rows)


def down_from(query: Query, node: int, n: int) -> list[Message]:
    """Up to `n` messages after `node` along its remembered branch, oldest first."""
    if n <= 0:
        return []
    rows = query(
        f"{_DOWN} SELECT {_COLUMNS} FROM down JOIN messages m ON m.id = down.id"
        " WHERE down.d > 0 ORDER BY down.d",
        (node, n),
    )
    return _messages(rows)


def descend(query: Query, node: int) -> int:
    """The leaf reached from `node` down its remembered children."""
    rows = query(
        f"{_DOWN} SELECT id FROM down WHERE id IS NOT NULL ORDER BY d DESC LIMIT 1",
        (node, UNBOUNDED),
    )
    return int(rows[0][0]) if rows else node


def by_ids(query: Query, ids: Sequence[int]) -> list[Message]:
    """The messages `ids`, in that order (missing ones left out)."""
    found: dict[int, Message] = {}
    for start in range(0, len(ids), 500):  # well under SQLite's variable limit
        chunk = tuple(ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        for msg in _messages(
            query(f"SELECT {_COLUMNS} FROM messages m WHERE m.id IN ({marks})", chunk)
        ):
            found[msg.id] = msg
    return [found[i] for i in ids if i in found]


def path_ids(query: Query, leaf: int | None) -> list[int]:
    """Every id from the root to `leaf`: for background work (Find), not the GUI thread
    (100,000 ids take about 0.1 s, nearly all of it inside SQLite)."""
    if leaf is None:
        return []
    # One JSON array built by SQLite: a row per id costs the interpreter 100,000 steps,
    # holding the lock the GUI thread needs for every paint (json.loads is one C call).
    rows = query(
        f"{_UP} SELECT json_group_array(id) FROM (SELECT id FROM up ORDER BY d DESC)",
        (leaf, UNBOUNDED),
    )
    ids: list[int] = json.loads(rows[0][0]) if rows else []
    return ids


def steps_between(query: Query, leaf: int, node: int) -> int | None:
    """How many messages from `node` down to `leaf` (both counted), if `node` is on the
    way up from `leaf`; it walks only that far."""
    rows = query(
        "WITH RECURSIVE up(id, d) AS (SELECT ?, 0 UNION ALL SELECT m.parent_id, d + 1"
        " FROM messages m JOIN up ON m.id = up.id WHERE m.parent_id IS NOT NULL AND up.id != ?)"
        " SELECT d FROM up WHERE id = ?",
        (leaf, node, node),
    )
    return int(rows[0][0]) + 1 if rows else None


def root_ids(query: Query, chat_id: int) -> list[int]:
    """The chat's greetings (its roots), in swipe order."""
    rows = query(
        "SELECT id FROM messages WHERE chat_id = ? AND parent_id IS NULL ORDER BY id", (chat_id,)
    )
    return [int(r[0]) for r in rows]
