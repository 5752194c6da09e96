"""Removing for good what a delete hid: a bounded batch per transaction, off the GUI thread.

Deleting a message deletes everything below it, which in a long chat is 100,000 rows: too
much for one statement on the GUI thread (and SQLite ends a cascade 1,000 levels deep, so
one statement could not delete a long chain at all). So a delete happens in two parts:

- `hide` (on the caller's transaction, one row): the message becomes its own parent, so
  no walk from the chat's roots or its leaf reaches it or anything below it, and it is
  listed in `message_purges`. The chat looks as it will after the delete, at once.
- `purge_step` removes listed messages top down: each gets its children listed (and made
  their own parents) and is then deleted, a cascade of one level. A step does at most
  `BATCH` messages in the caller's transaction; `purge` runs steps on a connection of its
  own until nothing is listed, for a background thread.

An exit between steps leaves only hidden rows, still listed; the next purge finishes them.
Every step reads the list afresh inside its write transaction, so two purges may run at
once, and a purge over a database restored meanwhile removes only what that one lists.

Until then the rows are still there, so whatever reads messages by chat or by text rather
than by walking from a root (the chat lists' counts, the searches, "export everything")
leaves out `HIDDEN`. Emptying the trash goes the same way (`hide_chats`): a chat's roots
are hidden, its rows purged, and only then the chat row deleted, a cascade of nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from app.core.store.db import StoreError

BATCH = 200  # messages a step removes or lists: a few milliseconds of write lock

# A CTE (for a WITH RECURSIVE) of the messages a delete hid and no purge has removed yet,
# with their chats: each listed message and, down the parent_id index, everything below it
# (a listed one is its own parent, hence `m.id != h.id`). When no purge is pending it reads
# one empty table; when one is, it costs the rows still hidden, never a chat's length.
# CROSS JOIN keeps the list outside: joined the other way round, SQLite scans every message.
HIDDEN = (
    "hidden(id, chat_id) AS (SELECT m.id, m.chat_id FROM message_purges p"
    " CROSS JOIN messages m ON m.id = p.message_id UNION ALL SELECT m.id, h.chat_id"
    " FROM hidden h JOIN messages m ON m.parent_id = h.id WHERE m.id != h.id)"
)


def hide(c: sqlite3.Connection, message_id: int) -> None:
    """Take `message_id` and everything below it out of its chat's tree, for `purge`."""
    c.execute("UPDATE messages SET parent_id = id WHERE id = ?", (message_id,))
    c.execute("INSERT OR IGNORE INTO message_purges (message_id) VALUES (?)", (message_id,))


def hide_chats(c: sqlite3.Connection, chat_ids: list[int]) -> None:
    """Hide every message of these chats (their roots, with what is below them), so that
    once `purge` has run, deleting the chat rows cascades to no message."""
    for chat_id in chat_ids:
        roots = c.execute(
            "SELECT id FROM messages WHERE chat_id = ? AND parent_id IS NULL", (chat_id,)
        ).fetchall()
        for (root,) in roots:
            hide(c, int(root))


def purge_step(c: sqlite3.Connection, limit: int = BATCH) -> int:
    """Remove hidden messages in the caller's transaction, listing or removing at most
    `limit` of them; returns how many it removed (`pending` says whether any are left)."""
    done = removed = 0
    while done < limit:
        listed = c.execute(
            "SELECT message_id FROM message_purges ORDER BY message_id LIMIT ?", (limit - done,)
        ).fetchall()
        if not listed:
            break
        for row in listed:
            work, gone = _purge_one(c, int(row[0]), limit - done)
            done, removed = done + work, removed + gone
            if done >= limit:
                break
    return removed


def _purge_one(c: sqlite3.Connection, mid: int, budget: int) -> tuple[int, int]:
    """List up to `budget` of the message's children; delete it once it has none left
    (its listing goes with it: ON DELETE CASCADE). Returns (messages touched, removed)."""
    children = [
        (int(r[0]),)
        for r in c.execute(
            "SELECT id FROM messages WHERE parent_id = ? AND id != ? LIMIT ?", (mid, mid, budget)
        )
    ]
    c.executemany("UPDATE messages SET parent_id = id WHERE id = ?", children)
    c.executemany("INSERT OR IGNORE INTO message_purges (message_id) VALUES (?)", children)
    if len(children) == budget:  # maybe more children: it stays listed for the next step
        return budget, 0
    c.execute("DELETE FROM messages WHERE id = ?", (mid,))
    c.execute("DELETE FROM message_purges WHERE message_id = ?", (mid,))  # if it was gone
    return len(children) + 1, 1


def pending(c: sqlite3.Connection) -> bool:
    """Whether a delete has left messages to purge."""
    return c.execute("SELECT 1 FROM message_purges LIMIT 1").fetchone() is not None


def purge(path: Path, cancel: threading.Event | None = None) -> int:
    """Purge every hidden message of the database at `path` on a connection of its own,
    one step per transaction, stopping between steps when `cancel` is set. Returns how many
    messages it removed."""
    total = 0
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    except sqlite3.Error as exc:
        raise StoreError(f"Could not open {path}: {exc}") from exc
    try:
        conn.execute("PRAGMA foreign_keys = ON")  # per connection: the cascades need it
        conn.execute("PRAGMA synchronous = NORMAL")  # as the Store's: WAL keeps it safe
        while (cancel is None or not cancel.is_set()) and pending(conn):
            conn.execute("BEGIN IMMEDIATE")
            try:
                total += purge_step(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    except sqlite3.Error as exc:
        raise StoreError(f"Could not delete from {path}: {exc}") from exc
    finally:
        conn.close()
    return total
