"""The rest of the tree, in `chat_metadata.parlor`, so a round trip keeps every branch.

A SillyTavern file holds one path (each message with its swipes). Everything else (the
replies below a swipe that is not shown) is written as a flat list of nodes. A node hangs
either under another node of the list (`parent`) or under a swipe of the file (`at`:
[line, swipe], both from 0 among the message lines, with `check`, a hash of that swipe's
text). If the file was edited elsewhere and a swipe no longer matches, the branch under it
is left out with a warning rather than attached to the wrong message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from typing import Any

from app.core.chat_io.dates import parse_send_date  # bounded: a 400-digit time is no time
from app.core.store import Message
from app.core.store.nodes import ROLES, STATUSES, NewNode

KEY = "parlor"
VERSION = 1


def text_check(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def encode_rest(
    rest: list[Message], coords: dict[int, tuple[int, int]], texts: dict[int, str], shown: set[int]
) -> dict[str, Any] | None:
    """The block for messages not in the file's lines (parents first), or None if none."""
    if not rest:
        return None
    nodes = []
    for msg in rest:
        node: dict[str, Any] = {"id": msg.id}
        if msg.parent_id in coords:
            node["at"] = list(coords[msg.parent_id])
            node["check"] = text_check(texts[msg.parent_id])
        else:
            node["parent"] = msg.parent_id
        node.update(role=msg.role, text=msg.text, status=msg.status, created_at=msg.created_at)
        if msg.gen_info:
            node["gen_info"] = msg.gen_info
        if msg.extra:
            node["extra"] = msg.extra
        if msg.id in shown:
            node["shown"] = True
        nodes.append(node)
    return {"version": VERSION, "nodes": nodes}


def decode_rest(
    block: Any, line_texts: dict[tuple[int, int], str], warnings: list[str]
) -> list[NewNode]:
    """Nodes to add after the file's lines; what cannot be placed is dropped and counted."""
    if not isinstance(block, dict) or not isinstance(block.get("nodes"), list):
        warnings.append("chat_metadata.parlor is not a Parlor tree; other branches are lost")
        return []
    if block.get("version") != VERSION:
        warnings.append(
            f"chat_metadata.parlor has version {block.get('version')!r}; this"
            f" Parlor reads version {VERSION}, so other branches are lost"
        )
        return []
    out: list[NewNode] = []
    kept: set[Hashable] = set()
    for item in block["nodes"]:
        node = _node(item, kept, line_texts)
        if node is not None:
            kept.add(node.key)
            out.append(node)
    dropped = len(block["nodes"]) - len(out)
    if dropped:
        warnings.append(
            f"{dropped} message(s) of other branches could not be restored: the"
            " chat was changed outside Parlor, or the tree data is damaged"
        )
    return out


def _node(item: Any, kept: set[Hashable], line_texts: dict[tuple[int, int], str]) -> NewNode | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), int):
        return None
    if item.get("role") not in ROLES or not isinstance(item.get("text"), str):
        return None
    parent = _parent(item, kept, line_texts)
    if parent is False:
        return None
    status = str(item["status"]) if item.get("status") in STATUSES else "complete"
    stamp = item.get("created_at")
    gen_info, extra = item.get("gen_info"), item.get("extra")
    return NewNode(
        ("p", item["id"]),
        parent,
        item["role"],
        item["text"],
        status,
        gen_info if isinstance(gen_info, dict) else None,
        extra if isinstance(extra, dict) else None,
        parse_send_date(stamp) if isinstance(stamp, int | float) else None,
        bool(item.get("shown")),
    )


def _parent(
    item: dict[str, Any], kept: set[Hashable], line_texts: dict[tuple[int, int], str]
) -> Hashable | None | bool:
    """The parent's key, None for a root, False when it cannot be placed."""
    at = item.get("at")
    if at is not None:
        if not (isinstance(at, list) and len(at) == 2 and all(isinstance(v, int) for v in at)):
            return False
        key = (at[0], at[1])
        ok = key in line_texts and text_check(line_texts[key]) == item.get("check")
        return key if ok else False
    parent = item.get("parent")
    if parent is None:
        return None
    return ("p", parent) if ("p", parent) in kept else False
