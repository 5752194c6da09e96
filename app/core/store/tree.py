"""The message tree of a chat: the active path, swipes, branches, streaming saves."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from typing import Any

from app.core.store import path_pages as pages
from app.core.store import purge as purging
from app.core.store.db import StoreError
from app.core.store.message import Message
from app.core.store.part import StorePart


def attached(rows: list[sqlite3.Row]) -> list[sqlite3.Row]:
    """The rows still in their chat's tree (a root, or below one), in their order: never a
    message a delete hid (its own parent, purge.py) nor anything below it."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for r in rows:
        children[r["parent_id"]].append(r["id"])
    kept: set[int] = set()
    todo = list(children[None])
    while todo:
        mid = todo.pop()
        kept.add(mid)
        todo.extend(children.get(mid, ()))
    return [r for r in rows if r["id"] in kept]


class Messages(StorePart):
    """`store.messages`: a chat's message tree.

    Regenerate is not a method of its own kind: a new reply is a sibling of the old one, so
    the controller calls `regenerate(old_id)` (or `append` with the old reply's
    parent), which adds it as the last swipe and shows it; the old reply stays one swipe left.
    """

    def _children_by_parent(self, chat_id: int) -> dict[int | None, list[int]]:
        children: dict[int | None, list[int]] = defaultdict(list)
        for row in self._query(
            "SELECT id, parent_id FROM messages WHERE chat_id = ? ORDER BY id", (chat_id,)
        ):
            children[row["parent_id"]].append(row["id"])
        return children

    def active_leaf(self, chat_id: int) -> int | None:
        rows = self._query("SELECT active_leaf_id FROM chats WHERE id = ?", (chat_id,))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def active_path(self, chat_id: int) -> list[Message]:
        """Messages from the root to the active leaf, each with its swipe position."""
        leaf = self.active_leaf(chat_id)
        if leaf is None:
            return []
        rows = self._query(
            "WITH RECURSIVE path(id, depth) AS (SELECT ?, 0 UNION ALL"
            " SELECT m.parent_id, depth + 1 FROM messages m JOIN path ON m.id = path.id"
            " WHERE m.parent_id IS NOT NULL)"
            " SELECT m.* FROM path JOIN messages m ON m.id = path.id ORDER BY depth DESC",
            (leaf,),
        )
        children = self._children_by_parent(chat_id)
        path = []
        for row in rows:
            siblings = children[row["parent_id"]]
            path.append(Message.from_row(row, siblings.index(row["id"]), len(siblings)))
        return path

    def get(self, message_id: int) -> Message:
        return Message.from_row(
            self._query("SELECT * FROM messages WHERE id = ?", (message_id,))[0]
        )

    # --- pages of the active path (what the window shows; costs the page, not the chat) ---
    def tail(self, chat_id: int, n: int, leaf: int | None = None) -> list[Message]:
        """The newest `n` messages of the path ending at `leaf` (default: the active leaf),
        oldest first, each with its swipe position."""
        leaf = self.active_leaf(chat_id) if leaf is None else leaf
        return [] if leaf is None else pages.up_to(self._query, leaf, n)

    def before(self, message_id: int, n: int) -> list[Message]:
        """Up to `n` messages above `message_id` on its path, oldest first."""
        msg = self.get(message_id)
        return [] if msg.parent_id is None else pages.up_to(self._query, msg.parent_id, n)

    def after(self, message_id: int, n: int) -> list[Message]:
        """Up to `n` messages below `message_id` along its remembered branch."""
        return pages.down_from(self._query, message_id, n)

    def placed(self, ids: list[int]) -> list[Message]:
        """The messages `ids` in that order, each with its swipe position."""
        return pages.by_ids(self._query, ids)

    def steps_to(self, chat_id: int, message_id: int) -> int | None:
        """How many messages of the active path run from `message_id` to the leaf (both
        counted); None when it is not on the path. Walks only that far."""
        leaf = self.active_leaf(chat_id)
        return None if leaf is None else pages.steps_between(self._query, leaf, message_id)

    def append(
        self,
        chat_id: int,
        parent_id: int | None,
        role: str,
        text: str,
        status: str = "complete",
        gen_info: dict[str, Any] | None = None,
    ) -> int:
        """Add a node under `parent_id` and make it the chat's active leaf, in one commit."""
        now = time.time()
        info = json.dumps(gen_info) if gen_info else None
        with self._tx() as c:
            mid = c.execute(
                "INSERT INTO messages (chat_id, parent_id, role, text, status, gen_info,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (chat_id, parent_id, role, text, status, info, now),
            ).lastrowid
            if mid is None:
                raise StoreError("SQLite gave the new message no id")
            self._activate(c, chat_id, mid, parent_id)
        return mid

    @staticmethod
    def _activate(c: sqlite3.Connection, chat_id: int, leaf: int, parent_id: int | None) -> None:
        if parent_id is not None:
            c.execute("UPDATE messages SET active_child_id = ? WHERE id = ?", (leaf, parent_id))
        c.execute(
            "UPDATE chats SET active_leaf_id = ?, last_used_at = ? WHERE id = ?",
            (leaf, time.time(), chat_id),
        )

    def update(
        self,
        message_id: int,
        text: str,
        status: str | None = None,
        gen_info: dict[str, Any] | None = None,
    ) -> None:
        """Save new text (a streaming reply is saved this way every couple of seconds)."""
        with self._tx() as c:
            c.execute(
                "UPDATE messages SET text = ?, status = COALESCE(?, status),"
                " gen_info = COALESCE(?, gen_info) WHERE id = ?",
                (text, status, json.dumps(gen_info) if gen_info else None, message_id),
            )

    def _descend(self, node: int) -> int:
        """Follow each node's last-shown child (else its newest) down to a leaf; the walk
        costs the branch's length, not the chat's size."""
        return pages.descend(self._query, node)

    def _exists(self, message_id: int) -> bool:
        return bool(self._query("SELECT 1 FROM messages WHERE id = ?", (message_id,)))

    def swipe(self, message_id: int, step: int) -> int | None:
        """Show the sibling `step` places away; returns the new active leaf or None at an end."""
        msg = self.get(message_id)
        siblings = self.sibling_ids(message_id)
        index = siblings.index(message_id) + step
        if not 0 <= index < len(siblings):
            return None
        return self.show_branch(msg.chat_id, siblings[index])

    def show_branch(self, chat_id: int, node: int) -> int:
        """Make the path through `node` (down its remembered children) the active one."""
        leaf = self._descend(node)
        with self._tx() as c:
            parent = self.get(node).parent_id
            if parent is not None:
                c.execute("UPDATE messages SET active_child_id = ? WHERE id = ?", (node, parent))
            c.execute(
                "UPDATE chats SET active_leaf_id = ?, last_used_at = ? WHERE id = ?",
                (leaf, time.time(), chat_id),
            )
        return leaf

    def delete(self, message_id: int) -> int | None:
        """Delete a message and everything below it; the path moves to its parent. Hidden
        in one transaction, then removed a batch per transaction on this connection."""
        leaf = self.hide(message_id)
        self.purge()
        return leaf

    def hide(self, message_id: int) -> int | None:
        """Delete a message and everything below it as the chat sees it, in one short
        transaction whatever the branch's length; the rows are removed by `purge` (the
        window runs it in the background: purge.py). Returns the new active leaf."""
        msg = self.get(message_id)
        # One transaction: a crash can never leave the chat pointing at a hidden message.
        # The reads below run on the same connection, so they see it hidden.
        with self._tx() as c:
            purging.hide(c, message_id)
            if msg.parent_id is None:
                roots = pages.root_ids(self._query, msg.chat_id)
                leaf = self._descend(roots[0]) if roots else None
            else:
                leaf = self._descend(msg.parent_id)
            c.execute("UPDATE chats SET active_leaf_id = ? WHERE id = ?", (leaf, msg.chat_id))
        return leaf

    def purge(self) -> int:
        """Remove what `hide` hid, here and now, a step per transaction; how many rows."""
        total = 0
        while self.hidden_pending():
            with self._tx() as c:
                total += purging.purge_step(c)
        return total

    def hidden_pending(self) -> bool:
        """Whether hidden messages wait for a purge (one indexed row read)."""
        return bool(self._query("SELECT 1 FROM message_purges LIMIT 1"))

    def recover_interrupted(self) -> int:
        """Mark replies that were streaming when the app died; their text is kept."""
        with self._tx() as c:
            return c.execute(
                "UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'"
            ).rowcount

    def search(self, text: str, limit: int = 50) -> list[Message]:
        """Messages holding `text` as a phrase, newest first (none a delete hid)."""
        rows = self._query(
            f"WITH RECURSIVE {purging.HIDDEN}"
            " SELECT m.* FROM messages_fts f JOIN messages m ON m.id = f.rowid"
            " WHERE messages_fts MATCH ? AND m.id NOT IN (SELECT id FROM hidden)"
            " ORDER BY m.created_at DESC LIMIT ?",
            ('"' + text.replace('"', '""') + '"', limit),
        )
        return [Message.from_row(r) for r in rows]

    def sibling_ids(self, message_id: int) -> list[int]:
        """The message and its swipes (same parent), in swipe order."""
        msg = self.get(message_id)
        rows = self._query(
            "SELECT id FROM messages WHERE chat_id = ? AND parent_id IS ? ORDER BY id",
            (msg.chat_id, msg.parent_id),
        )
        return [r["id"] for r in rows]

    def edit(self, message_id: int, text: str) -> None:
        """Replace a message's text; its status, gen_info and place in the tree stay."""
        with self._tx() as c:
            c.execute("UPDATE messages SET text = ? WHERE id = ?", (text, message_id))

    def regenerate(
        self,
        message_id: int,
        text: str = "",
        status: str = "streaming",
        gen_info: dict[str, Any] | None = None,
    ) -> int:
        """Add a new swipe beside `message_id` (same parent and role) and show it.

        Starts as `streaming` with empty text: the caller streams into it with
        `update_message` and finishes with the final status, as for any reply."""
        msg = self.get(message_id)
        return self.append(msg.chat_id, msg.parent_id, msg.role, text, status, gen_info)

    def of_chat(self, chat_id: int) -> list[Message]:
        """Every message of the chat, every branch, parents before children (not those a
        delete hid, which wait for their purge)."""
        rows = attached(
            self._query("SELECT * FROM messages WHERE chat_id = ? ORDER BY id", (chat_id,))
        )
        children = self._children_by_parent(chat_id)
        out = []
        for row in rows:
            siblings = children[row["parent_id"]]
            out.append(Message.from_row(row, siblings.index(row["id"]), len(siblings)))
        return out

    def shown_child_ids(self, chat_id: int) -> set[int]:
        """The child each message showed last (what swiping back to it restores)."""
        rows = self._query(
            "SELECT active_child_id FROM messages WHERE chat_id = ?"
            " AND active_child_id IS NOT NULL",
            (chat_id,),
        )
        return {r[0] for r in rows}
