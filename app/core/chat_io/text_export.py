"""Markdown and plain-text exports of a chat's active path, for reading and sharing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from app.core.chat_io.errors import ChatIOError
from app.core.chat_io.st_export import speaker_names, st_chat_text
from app.core.store import Message, Store

FORMATS = ("jsonl", "md", "txt")


def _name(msg: Message, speakers: dict[str, str]) -> str:
    stored = (msg.extra or {}).get("name")
    if f"speaker:{msg.speaker_id}" in speakers:  # a group member's reply
        return speakers[f"speaker:{msg.speaker_id}"]
    return stored if isinstance(stored, str) and stored else speakers[msg.role]


def markdown_text(store: Store, chat_id: int) -> str:
    info = store.chats.info(chat_id)
    speakers = speaker_names(store, chat_id)
    head = (
        f"# {info.title}\n\n*{speakers['assistant']} and {speakers['user']},"
        f" exported from Parlor on {datetime.now():%Y-%m-%d %H:%M}*"
    )
    blocks = []
    for msg in store.messages.active_path(chat_id):
        when = datetime.fromtimestamp(msg.created_at).strftime("%Y-%m-%d %H:%M")
        swipe = (
            f" · swipe {msg.sibling_index + 1} of {msg.sibling_count}"
            if msg.sibling_count > 1
            else ""
        )
        body = msg.text if msg.role != "system" else f"*{msg.text}*"
        blocks.append(f"**{_name(msg, speakers)}** · {when}{swipe}\n\n{body}")
    return head + "\n\n" + "\n\n---\n\n".join(blocks) + "\n"


def plain_text(store: Store, chat_id: int) -> str:
    speakers = speaker_names(store, chat_id)
    blocks = [f"{_name(m, speakers)}: {m.text}" for m in store.messages.active_path(chat_id)]
    return "\n\n".join(blocks) + "\n"


def export_chat(store: Store, chat_id: int, path: str | Path, fmt: str | None = None) -> str:
    """Write the chat to `path` in `fmt` (default: from the extension); returns the format."""
    fmt = (fmt or Path(path).suffix.lstrip(".")).lower()
    if fmt == "markdown":
        fmt = "md"
    if fmt not in FORMATS:
        raise ChatIOError(f"{path}: unknown export format {fmt!r} (use .jsonl, .md or .txt)")
    render = {"jsonl": st_chat_text, "md": markdown_text, "txt": plain_text}[fmt]
    text = render(store, chat_id)
    try:
        Path(path).write_text(text, encoding="utf-8", newline="\n")
    except OSError as exc:
        raise ChatIOError(f"{path}: could not be written ({exc.strerror or exc})") from None
    return fmt
