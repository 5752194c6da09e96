"""One node of a chat's message tree, as the rest of the app sees it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from app.core.appdata.text_enum import TextEnum


class Role(TextEnum):
    """Who wrote a message (the `role` column)."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class Status(TextEnum):
    """Where a message stands (the `status` column and its CHECK constraint)."""

    COMPLETE = "complete"
    STREAMING = "streaming"  # being written; saved every couple of seconds
    STOPPED = "stopped"  # the user stopped it; what was written is kept
    INTERRUPTED = "interrupted"  # the app ended while it streamed (found at the next start)
    ERROR = "error"  # generation failed; the text so far is kept


@dataclass(frozen=True)
class Message:
    """`extra` holds fields an imported file carried that Parlor has no column for (kept so an
    export gives them back); `sibling_index`/`sibling_count` place it among its swipes."""

    id: int
    chat_id: int
    parent_id: int | None
    role: Role
    text: str
    status: Status
    created_at: float
    gen_info: dict[str, Any] | None = None
    sibling_index: int = 0
    sibling_count: int = 1
    extra: dict[str, Any] | None = None
    speaker_id: int | None = None  # the character who spoke it (group chats), else None

    @classmethod
    def from_row(cls, row: sqlite3.Row, index: int = 0, count: int = 1) -> Message:
        info = json.loads(row["gen_info"]) if row["gen_info"] else None
        raw = row["extra"] if "extra" in row.keys() else None
        extra = json.loads(raw) if raw else None
        speaker = row["speaker_id"] if "speaker_id" in row.keys() else None
        return cls(
            row["id"],
            row["chat_id"],
            row["parent_id"],
            Role(row["role"]),
            row["text"],
            Status(row["status"]),
            row["created_at"],
            info,
            index,
            count,
            extra,
            speaker,
        )
