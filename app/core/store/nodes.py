"""Writing many tree nodes at once: imports, duplicated chats and branches.

A whole imported chat goes in one transaction, so a failed import leaves nothing half-made,
and 2,000 messages take one commit instead of 2,000.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from app.core.store.part import new_id

ROLES = ("user", "assistant", "system")
STATUSES = ("complete", "streaming", "stopped", "interrupted", "error")


@dataclass
class NewNode:
    """A message to insert. `key`/`parent_key` are the caller's ids (any hashable); a parent
    must come before its children. `shown` marks the child its parent last showed."""

    key: Hashable
    parent_key: Hashable | None
    role: str
    text: str
    status: str = "complete"
    gen_info: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None
    created_at: float | None = None
    shown: bool = False
    speaker_id: int | None = None  # the character who spoke it (group chats)
    meta: dict[str, Any] = field(default_factory=dict)  # the caller's notes; not stored


def _json(value: Any) -> str | None:
    return json.dumps(value, ensure_ascii=False) if value else None


def insert_nodes(
    c: sqlite3.Connection, chat_id: int, nodes: Iterable[NewNode]
) -> dict[Hashable, int]:
    """Insert `nodes` into `chat_id` inside the caller's transaction; returns key -> new id."""
    ids: dict[Hashable, int] = {}
    now = time.time()
    for node in nodes:
        if node.parent_key is not None and node.parent_key not in ids:
            raise ValueError(f"message {node.key!r} comes before its parent {node.parent_key!r}")
        parent = ids.get(node.parent_key) if node.parent_key is not None else None
        mid = new_id(
            c.execute(
                "INSERT INTO messages (chat_id, parent_id, role, text, status, gen_info, extra,"
                " created_at, speaker_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    chat_id,
                    parent,
                    node.role,
                    node.text,
                    node.status,
                    _json(node.gen_info),
                    _json(node.extra),
                    node.created_at if node.created_at is not None else now,
                    node.speaker_id,
                ),
            )
        )
        ids[node.key] = mid
        if node.shown and parent is not None:
            c.execute("UPDATE messages SET active_child_id = ? WHERE id = ?", (mid, parent))
    return ids


def nodes_from_rows(rows: Iterable[sqlite3.Row]) -> list[NewNode]:
    """Copies of stored messages (ordered parent first), keyed by their old ids."""
    rows = list(rows)
    shown = {r["active_child_id"] for r in rows if r["active_child_id"] is not None}
    return [
        NewNode(
            r["id"],
            r["parent_id"],
            r["role"],
            r["text"],
            r["status"],
            json.loads(r["gen_info"]) if r["gen_info"] else None,
            json.loads(r["extra"]) if r["extra"] else None,
            r["created_at"],
            r["id"] in shown,
            r["speaker_id"] if "speaker_id" in r.keys() else None,
        )
        for r in rows
    ]
