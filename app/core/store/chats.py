"""The chat library: rename, duplicate, branch, trash with undo, search across all chats.

Deleting moves a chat (or a character) to the trash by stamping `deleted_at`; nothing is
removed until the user deletes it for good (`delete_forever`, `empty_trash`), so every
delete can be undone until then. Removing for good is recorded, then done a batch at a
time on a background thread (purge.py: `mark`, `remove_going`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.core.store import purge as purging
from app.core.store.db import StoreError
from app.core.store.nodes import NewNode, insert_nodes, nodes_from_rows
from app.core.store.part import StorePart, new_id
from app.core.store.records import ChatEntry, ChatInfo, ChatListing, from_row
from app.core.store.tree import attached

# a group chat is listed under its group's name (groups.py), not its host member's
_CHAT_COLUMNS = (
    "c.id, c.title, c.character_id,"
    " COALESCE((SELECT g.name FROM groups g WHERE g.id = c.group_id), ch.name)"
    " AS character_name, c.persona_id,"
    " c.created_at, c.last_used_at, c.deleted_at"
)
# The lists only: counting costs the chat's length, which `info` must not pay at each reply.
# What a delete hid is not counted: the rows still hidden are counted once per chat that has
# any (purge.HIDDEN, nothing when no purge is pending) and taken off its count.
_LISTED = (
    f"WITH RECURSIVE {purging.HIDDEN},"
    " gone(chat_id, n) AS (SELECT chat_id, count(*) FROM hidden GROUP BY chat_id)"
    f" SELECT {_CHAT_COLUMNS}, (SELECT count(*) FROM messages m WHERE m.chat_id = c.id)"
    " - COALESCE(gone.n, 0) AS message_count"
    " FROM chats c JOIN characters ch ON ch.id = c.character_id"
    " LEFT JOIN gone ON gone.chat_id = c.id"
)


@dataclass(frozen=True)
class ChatHit:
    """One search result: where it is and a snippet with the match in [brackets]."""

    chat_id: int
    chat_title: str
    character_id: int
    character_name: str
    message_id: int
    snippet: str
    created_at: float

    @classmethod
    def of(cls, r: sqlite3.Row) -> ChatHit:
        """From a search row: message id, chat id and title, character, snippet, time."""
        return cls(
            r["chat_id"],
            r["title"],
            r["character_id"],
            r["name"],
            r["id"],
            r["snip"],
            r["created_at"],
        )


def fts_query(text: str) -> str:
    """Every word must occur (in any order); quoting keeps FTS5 syntax out of user text."""
    words = text.split()
    return " ".join('"' + w.replace('"', '""') + '"' for w in words) or '""'


class Chats(StorePart):
    """`store.chats`: start, list, rename, duplicate, branch, trash and search chats."""

    def new(self, character_id: int, greetings: list[str], title: str = "") -> int:
        """Start a chat; each greeting becomes a root-level swipe, the first one shown."""
        now = time.time()
        with self._tx() as c:
            chat_id = new_id(
                c.execute(
                    "INSERT INTO chats (character_id, title, created_at, last_used_at)"
                    " VALUES (?, ?, ?, ?)",
                    (character_id, title or time.strftime("Chat %Y-%m-%d %H:%M"), now, now),
                )
            )
            first = None
            for text in greetings:
                mid = c.execute(
                    "INSERT INTO messages (chat_id, parent_id, role, text, created_at)"
                    " VALUES (?, NULL, 'assistant', ?, ?)",
                    (chat_id, text, now),
                ).lastrowid
                first = first or mid
            c.execute("UPDATE chats SET active_leaf_id = ? WHERE id = ?", (first, chat_id))
        return chat_id

    def of_character(self, character_id: int) -> list[ChatEntry]:
        rows = self._query(
            "SELECT id, title, last_used_at FROM chats WHERE character_id = ?"
            " AND deleted_at IS NULL ORDER BY last_used_at DESC",
            (character_id,),
        )
        return [from_row(ChatEntry, r) for r in rows]

    def touch(self, chat_id: int) -> None:
        with self._tx() as c:
            c.execute("UPDATE chats SET last_used_at = ? WHERE id = ?", (time.time(), chat_id))

    def character_of(self, chat_id: int) -> int:
        return int(self._query("SELECT character_id FROM chats WHERE id = ?", (chat_id,))[0][0])

    def set_draft(self, chat_id: int, text: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE chats SET draft = ? WHERE id = ?", (text, chat_id))

    def draft(self, chat_id: int) -> str:
        rows = self._query("SELECT draft FROM chats WHERE id = ?", (chat_id,))
        return rows[0]["draft"] if rows else ""

    def info(self, chat_id: int) -> ChatInfo:
        rows = self._query(
            f"SELECT {_CHAT_COLUMNS}, c.extra FROM chats c"
            " JOIN characters ch ON ch.id = c.character_id WHERE c.id = ?",
            (chat_id,),
        )
        if not rows:
            raise StoreError(f"No chat with id {chat_id}")
        return from_row(ChatInfo, rows[0])

    def all(self) -> list[ChatListing]:
        """Every chat not in the trash (nor its character), most recently used first."""
        rows = self._query(
            f"{_LISTED} WHERE c.deleted_at IS NULL AND ch.deleted_at IS NULL"
            " ORDER BY c.last_used_at DESC, c.id DESC"
        )
        return [from_row(ChatListing, r) for r in rows]

    def rename(self, chat_id: int, title: str) -> None:
        self.info(chat_id)
        with self._tx() as c:
            c.execute("UPDATE chats SET title = ? WHERE id = ?", (title, chat_id))

    def persona_of(self, chat_id: int) -> int | None:
        """The persona the chat chose (None: the default one)."""
        rows = self._query("SELECT persona_id FROM chats WHERE id = ?", (chat_id,))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def extra(self, chat_id: int) -> dict[str, Any]:
        """Fields an imported chat file carried (SillyTavern metadata), kept for export, as a
        dict (`info` has them as the stored JSON)."""
        rows = self._query("SELECT extra FROM chats WHERE id = ?", (chat_id,))
        if not rows:
            raise StoreError(f"No chat with id {chat_id}")
        raw = rows[0]["extra"]
        value = json.loads(raw) if raw else {}
        return value if isinstance(value, dict) else {}

    def set_extra(self, chat_id: int, extra: dict[str, Any]) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE chats SET extra = ? WHERE id = ?",
                (json.dumps(extra, ensure_ascii=False) if extra else None, chat_id),
            )

    def from_nodes(
        self,
        character_id: int,
        title: str,
        nodes: list[NewNode],
        leaf_key: Hashable | None = None,
        extra: dict[str, Any] | None = None,
        persona_id: int | None = None,
    ) -> int:
        """A new chat holding `nodes`, all in one transaction; `leaf_key` is its active leaf
        (default: follow the shown children down from the first root)."""
        now = time.time()
        with self._tx() as c:
            chat_id = new_id(
                c.execute(
                    "INSERT INTO chats (character_id, title, persona_id, created_at,"
                    " last_used_at, extra) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        character_id,
                        title,
                        persona_id,
                        now,
                        now,
                        json.dumps(extra, ensure_ascii=False) if extra else None,
                    ),
                )
            )
            ids = insert_nodes(c, chat_id, nodes)
            leaf = ids.get(leaf_key) if leaf_key is not None else None
            c.execute("UPDATE chats SET active_leaf_id = ? WHERE id = ?", (leaf, chat_id))
        if leaf is None and ids:
            roots = [ids[n.key] for n in nodes if n.parent_key is None]
            self._store.messages.show_branch(chat_id, roots[0])
        return chat_id

    def duplicate(self, chat_id: int, title: str | None = None) -> int:
        """A copy of the whole tree (every branch and swipe), showing the same path."""
        info = self.info(chat_id)
        rows = self._query("SELECT * FROM messages WHERE chat_id = ? ORDER BY id", (chat_id,))
        rows = attached(rows)  # not a branch a delete hid, which waits for its purge
        return self._same_group(
            chat_id,
            self.from_nodes(
                info.character_id,
                title or f"{info.title} (copy)",
                nodes_from_rows(rows),
                self._store.messages.active_leaf(chat_id),
                self.extra(chat_id),
                info.persona_id,
            ),
        )

    def branch_from(self, message_id: int, title: str | None = None) -> int:
        """ "Branch here": a new chat holding the path from the root to `message_id`, each
        message with its swipes (as SillyTavern's branch copies the messages with theirs)."""
        msg = self._store.messages.get(message_id)
        path = self._ancestors(message_id)
        # One query for the path and every message's swipes (the roots, and the children of
        # each message above `message_id`), not a query per message nor the whole chat.
        rows = self._query(
            "WITH RECURSIVE up(id) AS (SELECT ? UNION ALL SELECT m.parent_id FROM messages m"
            " JOIN up ON m.id = up.id WHERE m.parent_id IS NOT NULL)"
            " SELECT * FROM messages WHERE chat_id = ? AND (parent_id IS NULL OR parent_id IN"
            " (SELECT id FROM up WHERE id != ?)) ORDER BY id",
            (message_id, msg.chat_id, message_id),
        )
        nodes = nodes_from_rows(rows)
        on_path = set(path)
        for node in nodes:  # show the path we branched along, not whatever was shown below
            node.shown = node.key in on_path
        info = self.info(msg.chat_id)
        extra = self.extra(msg.chat_id)
        extra.setdefault("chat_metadata", {})
        if isinstance(extra["chat_metadata"], dict):
            extra["chat_metadata"]["main_chat"] = info.title
        return self._same_group(
            msg.chat_id,
            self.from_nodes(
                info.character_id,
                title or f"{info.title} (branch)",
                nodes,
                message_id,
                extra,
                info.persona_id,
            ),
        )

    def _same_group(self, source: int, copy: int) -> int:
        """A copy or branch of a group chat is one of the group's chats (groups.py)."""
        with self._tx() as c:
            c.execute(
                "UPDATE chats SET group_id = (SELECT group_id FROM chats WHERE id = ?)"
                " WHERE id = ?",
                (source, copy),
            )
        return copy

    def _ancestors(self, message_id: int) -> list[int]:
        rows = self._query(
            "WITH RECURSIVE up(id, depth) AS (SELECT ?, 0 UNION ALL"
            " SELECT m.parent_id, depth + 1 FROM messages m JOIN up ON m.id = up.id"
            " WHERE m.parent_id IS NOT NULL) SELECT id FROM up ORDER BY depth DESC",
            (message_id,),
        )
        return [r["id"] for r in rows]

    # --- trash ------------------------------------------------------------------------
    def delete(self, chat_id: int) -> None:
        """Move to the trash; `restore` undoes it until it is deleted for good."""
        self.info(chat_id)
        with self._tx() as c:
            c.execute("UPDATE chats SET deleted_at = ? WHERE id = ?", (time.time(), chat_id))

    def restore(self, chat_id: int) -> None:
        """Out of the trash, with what it needs to be seen: its character (and so that
        character's other chats) and its group, when they are in the trash too. A chat on
        its way out (`delete_forever`) has no messages left to show: refused."""
        info = self.info(chat_id)
        going = self._query(
            "SELECT 1 FROM chats c JOIN characters ch ON ch.id = c.character_id"
            f" WHERE c.id = ? AND (c.{purging.GOING} OR ch.{purging.GOING})",
            (chat_id,),
        )
        if going:
            raise StoreError(f"“{info.title}” is being deleted for good")
        with self._tx() as c:
            c.execute("UPDATE chats SET deleted_at = NULL WHERE id = ?", (chat_id,))
            c.execute("UPDATE characters SET deleted_at = NULL WHERE id = ?", (info.character_id,))
            c.execute(
                "UPDATE groups SET deleted_at = NULL"
                " WHERE id = (SELECT group_id FROM chats WHERE id = ?)",
                (chat_id,),
            )

    def trash(self) -> list[ChatListing]:
        """The chats in the trash, last deleted first; not those on their way out."""
        rows = self._query(
            f"{_LISTED} WHERE c.deleted_at > 0"
            " AND (ch.deleted_at IS NULL OR ch.deleted_at > 0) ORDER BY c.deleted_at DESC"
        )
        return [from_row(ChatListing, r) for r in rows]

    def delete_forever(self, chats: Sequence[int] = (), characters: Sequence[int] = ()) -> int:
        """Start removing these chats and characters of the trash for good (a character
        with its chats): one short transaction records it and hides their messages, so they
        leave the trash at once; `purge.remove_going` (on a background thread) or
        `remove_going` (here) removes the rows, and the next start finishes what an exit
        left. Returns how many it marked."""
        with self._tx() as c:
            return purging.mark(c, chats, characters)

    def empty_trash(self, older_than: float | timedelta = 0.0) -> int:
        """`delete_forever` for everything that went to the trash at least `older_than`
        (seconds or a timedelta) ago; returns how many it marked."""
        age = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
        args = (time.time() - age,)
        old = "SELECT id FROM {0} WHERE deleted_at > 0 AND deleted_at <= ?"
        with self._tx() as c:
            chats = [int(r[0]) for r in c.execute(old.format("chats"), args)]
            characters = [int(r[0]) for r in c.execute(old.format("characters"), args)]
            return purging.mark(c, chats, characters)

    def removal_pending(self) -> bool:
        """Whether chats or characters deleted for good wait for their rows' removal."""
        return bool(self._query(purging.ANY_GOING))

    def remove_going(self) -> int:
        """`purge.remove_going` on this connection, for the command line and tests: the
        window runs it in the background. Returns how many chats and characters went."""
        with self._tx() as c:
            purging.hide_going(c)
        self._store.messages.purge()
        with self._tx() as c:
            return purging.delete_going(c)

    def purge_trash(self, older_than: float | timedelta = 0.0) -> int:
        """Remove for good, here and now, chats and characters that went to the trash at
        least `older_than` ago (and what an earlier removal left); returns how many.

        One cascading DELETE of a chat fails past about 1,000 chained messages (SQLite's
        trigger depth), so the messages of every chat that goes are hidden first and purged
        a batch per transaction (purge.py); the chat and character rows are deleted last,
        with nothing left to cascade."""
        self.empty_trash(older_than)
        return self.remove_going()

    # --- search -----------------------------------------------------------------------
    def search(self, text: str, limit: int = 50) -> list[ChatHit]:
        """Messages containing every word of `text`, across all chats not in the trash,
        best matches first (none a delete hid)."""
        if not text.strip():
            return []
        rows = self._query(
            f"WITH RECURSIVE {purging.HIDDEN}"
            " SELECT m.id, m.chat_id, m.created_at, c.title, c.character_id, ch.name,"
            " snippet(messages_fts, 0, '[', ']', '…', 12) AS snip"
            " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
            " JOIN chats c ON c.id = m.chat_id JOIN characters ch ON ch.id = c.character_id"
            " WHERE messages_fts MATCH ? AND c.deleted_at IS NULL AND ch.deleted_at IS NULL"
            " AND m.id NOT IN (SELECT id FROM hidden)"
            " ORDER BY bm25(messages_fts), m.created_at DESC LIMIT ?",
            (fts_query(text), limit),
        )
        return [ChatHit.of(r) for r in rows]
