"""Just enough of SillyTavern's `.jsonl` chat format to feed `parlor prompt --chat`.

The first line is metadata (`user_name`, `character_name`, `chat_metadata`, ...), then one
message per line with `name`, `is_user` and `mes`. Messages marked `is_system` are hidden from
the prompt in SillyTavern, so they are skipped here too; narrator lines become system turns.
Full import and export, with swipes and the message tree, is the chat store's business.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.prompt.presets import Message


@dataclass
class StChat:
    metadata: dict[str, Any] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)


def read_st_chat(path: str | Path) -> StChat:
    """Read a SillyTavern chat; a malformed line raises ValueError naming its line number."""
    chat = StChat()
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}, line {number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {number}: not a JSON object")
            if "mes" not in row:  # the metadata line (or something unknown: kept out)
                if not chat.messages and not chat.metadata:
                    chat.metadata = row
                continue
            if row.get("is_system"):
                continue
            chat.messages.append(_message(row))
    return chat


def _message(row: dict[str, Any]) -> Message:
    """A line with its speaker: a narrator line (`extra.type: "narrator"`) is a system turn
    without a name, another group member's line keeps that member's name."""
    text = str(row.get("mes") or "")
    raw_extra = row.get("extra")
    extra: dict[str, Any] = raw_extra if isinstance(raw_extra, dict) else {}
    if not row.get("is_user") and extra.get("type") == "narrator":
        return Message("system", text)
    role = "user" if row.get("is_user") else "assistant"
    name = row.get("name") if isinstance(row.get("name"), str) else None
    return Message(role, text, name)
