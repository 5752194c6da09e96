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

# Some SillyTavern chat files carry this as the header's `user_name` and `character_name`
# (the test fixture `new_style.jsonl` does): a placeholder, not anyone's name; the speaker's
# name is on the lines themselves. Parlor's exporter reads it the same way.
PLACEHOLDER_NAME = "unused"


@dataclass
class StChat:
    metadata: dict[str, Any] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)

    @property
    def user_name(self) -> str | None:
        """The header's user name, or (when it holds SillyTavern's placeholder) the name
        on the first of the user's lines; None when neither names anyone."""
        header = self.metadata.get("user_name")
        if isinstance(header, str) and header.strip() and header != PLACEHOLDER_NAME:
            return header
        return next((m.name for m in self.messages if m.role == "user" and m.name), None)


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
