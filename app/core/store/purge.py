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
leaves out `HIDDEN`.

Deleting from the trash for good goes the same way, and is recorded so that an exit half-way
is finished exactly: `mark` turns the chosen rows' `deleted_at` negative (minus the time they
went to the trash, which is kept) in the transaction that hides their messages, then
`purge_step`s remove the messages and `delete_going` the rows, a cascade of nothing. A row is
`GOING` only because the user asked for it to go (`time.time()` is never negative), so
`remove_going` at the next start deletes what was asked and no other chat of the trash.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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
    with _connection(path) as conn:
        return _purge_steps(conn, cancel)


def _purge_steps(
    conn: sqlite3.Connection,
    cancel: threading.Event | None,
    progress: Callable[[int], None] | None = None,
) -> int:
    total = 0
    while (cancel is None or not cancel.is_set()) and pending(conn):
        total += _in_tx(conn, purge_step)
        if progress is not None:
            progress(total)
    return total


@contextmanager
def _connection(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of the background job's own, set up as the Store's; SQLite's errors
    become StoreErrors that name the file."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    except sqlite3.Error as exc:
        raise StoreError(f"Could not open {path}: {exc}") from exc
    try:
        conn.execute("PRAGMA foreign_keys = ON")  # per connection: the cascades need it
        conn.execute("PRAGMA synchronous = NORMAL")  # as the Store's: WAL keeps it safe
        yield conn
    except sqlite3.Error as exc:
        raise StoreError(f"Could not delete from {path}: {exc}") from exc
    finally:
        conn.close()


def _in_tx(conn: sqlite3.Connection, step: Callable[[sqlite3.Connection], int]) -> int:
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = step(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return done


# --- deleting from the trash for good -------------------------------------------------
GOING = "deleted_at < 0"  # marked by `mark`: on its way out, no longer in the trash
# whether rows marked as going wait for `remove_going`: it reads the chats and the
# characters (a few hundred rows), never the messages
ANY_GOING = (
    f"SELECT 1 FROM chats WHERE {GOING} UNION ALL SELECT 1 FROM characters WHERE {GOING} LIMIT 1"
)
_GOING_CHATS = (
    f"SELECT id FROM chats WHERE {GOING}"
    f" OR character_id IN (SELECT id FROM characters WHERE {GOING})"
)


def mark(c: sqlite3.Connection, chats: Iterable[int], characters: Iterable[int]) -> int:
    """In the caller's transaction: mark these chats and characters of the trash as going
    and hide the messages of every chat that goes (`hide_going`). Rows not in the trash, or
    already going, are left alone. Returns how many rows it marked."""
    marked = 0
    for table, ids in (("characters", characters), ("chats", chats)):
        marked += c.executemany(
            f"UPDATE {table} SET deleted_at = -deleted_at WHERE id = ? AND deleted_at > 0",
            [(i,) for i in ids],
        ).rowcount
    hide_going(c)
    return marked


def hide_going(c: sqlite3.Connection) -> int:
    """Hide every message of the chats that go: those marked, and those of the characters
    marked. A group chat a going character hosts moves to the first member that stays, as
    the delete's trigger (migration 5) would, and stays; without one it goes too. Again
    before each removal: it costs one indexed read per chat once they are hidden. Returns
    how many chats go."""
    stays = (
        "SELECT gm.character_id FROM group_members gm JOIN characters ch"
        " ON ch.id = gm.character_id WHERE gm.group_id = chats.group_id"
        " AND (ch.deleted_at IS NULL OR ch.deleted_at >= 0) ORDER BY gm.position LIMIT 1"
    )
    c.execute(
        f"UPDATE chats SET character_id = ({stays}) WHERE group_id IS NOT NULL"
        f" AND character_id IN (SELECT id FROM characters WHERE {GOING}) AND EXISTS ({stays})"
    )
    chats = [int(r[0]) for r in c.execute(_GOING_CHATS)]
    hide_chats(c, chats)
    return len(chats)


def delete_going(c: sqlite3.Connection) -> int:
    """Delete the going rows whose messages are all purged (a chat with messages waits for
    the next removal: deleting it would cascade down its whole tree). Returns how many
    chats and characters were deleted; a going character's chats go with it."""
    chats = c.execute(
        f"DELETE FROM chats WHERE {GOING}"
        " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.chat_id = chats.id)"
    ).rowcount
    characters = c.execute(
        f"DELETE FROM characters WHERE {GOING} AND NOT EXISTS (SELECT 1 FROM chats"
        " JOIN messages m ON m.chat_id = chats.id WHERE chats.character_id = characters.id)"
    ).rowcount
    return chats + characters


def remove_going(
    path: Path,
    cancel: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Remove what `mark` marked in the database at `path`, on a connection of its own, for
    a background thread: hide, purge a step per transaction (`progress` gets the messages
    removed so far), then delete the rows. Stops between steps when `cancel` is set, before
    deleting any row. Returns how many chats and characters it deleted."""
    with _connection(path) as conn:
        _in_tx(conn, hide_going)
        _purge_steps(conn, cancel, progress)
        if cancel is not None and cancel.is_set():
            return 0
        return _in_tx(conn, delete_going)
