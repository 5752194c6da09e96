"""Writing a chat as SillyTavern `.jsonl`: the active path, each message with its swipes.

Fields an imported file carried come back as they were read (`Message.extra`, the chat's
metadata); what Parlor knows better (text, role, swipes) is written fresh. Each reply's
gen_info goes into the message's `extra` (`model` where SillyTavern looks for it, the rest
under `extra.parlor`), and the branches that are not on the path go into
`chat_metadata.parlor` (see parlor_block).
"""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from typing import Any

from app.core.chat_io.dates import humanized_date, st_send_date
from app.core.chat_io.parlor_block import KEY, encode_rest
from app.core.store import Message, Store
from app.core.store.world_state import WorldInfoStore

_DERIVED_INFO = {"model", "api"}  # what SillyTavern itself keeps in `extra`


def st_chat_rows(store: Store, chat_id: int) -> list[dict[str, Any]]:
    """The metadata line, then one dict per message on the active path."""
    messages = store.messages.of_chat(chat_id)
    path = store.messages.active_path(chat_id)
    by_parent: dict[int | None, list[Message]] = defaultdict(list)
    for msg in messages:
        by_parent[msg.parent_id].append(msg)
    names = speaker_names(store, chat_id)
    coords: dict[int, tuple[int, int]] = {}
    lines = []
    for number, node in enumerate(path):
        siblings = by_parent[node.parent_id]
        coords.update({s.id: (number, j) for j, s in enumerate(siblings)})
        lines.append(_line(node, siblings, names))
    texts = {m.id: m.text for m in messages}
    rest = [m for m in messages if m.id not in coords]
    block = encode_rest(rest, coords, texts, store.messages.shown_child_ids(chat_id))
    return [_header(store, chat_id, names, block), *lines]


def st_chat_text(store: Store, chat_id: int) -> str:
    return "".join(
        json.dumps(_js_numbers(row), ensure_ascii=False, allow_nan=False) + "\n"
        for row in st_chat_rows(store, chat_id)
    )


def _js_numbers(value: Any) -> Any:
    """NaN and infinities as null, as SillyTavern's JSON.stringify writes them: its
    JSON.parse would refuse the line otherwise (values kept from older imports)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _js_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_js_numbers(v) for v in value]
    return value


def speaker_names(store: Store, chat_id: int) -> dict[str, str]:
    """Speaker names by role: the chat's persona, else the file's user, else the default."""
    info = store.chats.info(chat_id)
    stored = store.chats.extra(chat_id).get("user_name")
    default = store.personas.default()
    if info.persona_id is not None:
        user = store.personas.get(info.persona_id).name
    elif isinstance(stored, str) and stored and stored != "unused":
        user = stored
    else:
        user = default.name if default else "User"
    names = {"user": user, "assistant": info.character_name, "system": "System"}
    # a group chat's replies: each under its speaker's name ("speaker:<character id>")
    spoken = {m.speaker_id for m in store.messages.of_chat(chat_id) if m.speaker_id}
    names.update(
        {f"speaker:{cid}": name for cid, name in store.groups.speaker_names(spoken).items()}
    )
    return names


def _header(
    store: Store, chat_id: int, names: dict[str, str], block: dict[str, Any] | None
) -> dict[str, Any]:
    info = store.chats.info(chat_id)
    stored = store.chats.extra(chat_id)
    meta = stored.get("chat_metadata")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta.setdefault("integrity", str(uuid.uuid4()))
    meta.pop(KEY, None)
    if block:
        meta[KEY] = block
    # world info's sticky/cooldown state on the exported path (SillyTavern's timedWorldInfo)
    timed = WorldInfoStore(store).timed_state([m.id for m in store.messages.active_path(chat_id)])
    if timed is not None:
        meta["timedWorldInfo"] = timed
    head = {
        "user_name": names["user"],
        "character_name": names["assistant"],
        "create_date": stored.get("create_date") or humanized_date(info.created_at),
        "chat_metadata": meta,
    }
    head.update({k: v for k, v in stored.items() if k not in head})
    return head


def _line(node: Message, siblings: list[Message], names: dict[str, str]) -> dict[str, Any]:
    stored = dict(node.extra or {})
    stored.pop("swipe_info", None)
    row: dict[str, Any] = {
        "name": names.get(f"speaker:{node.speaker_id}") or stored.get("name") or names[node.role],
        "is_user": node.role == "user" or (node.role == "system" and bool(stored.get("is_user"))),
        "is_system": node.role == "system",
        "send_date": stored.get("send_date") or st_send_date(node.created_at),
        "mes": node.text,
        "extra": st_extra(node, stored.get("extra"), node.role),
    }
    if node.gen_info and "gen_started" not in stored:
        row["gen_started"] = st_send_date(node.created_at)
    row.update({k: v for k, v in stored.items() if k not in row})
    row["swipe_id"] = siblings.index(node)
    row["swipes"] = [s.text for s in siblings]
    row["swipe_info"] = [_swipe_info(s, node.role) for s in siblings]
    return row


def _swipe_info(msg: Message, line_role: str) -> dict[str, Any]:
    stored = (msg.extra or {}).get("swipe_info")
    entry = dict(stored) if isinstance(stored, dict) else {}
    entry.setdefault("send_date", st_send_date(msg.created_at))
    entry["extra"] = st_extra(msg, entry.get("extra"), line_role)
    return entry


def st_extra(msg: Message, base: Any, line_role: str) -> dict[str, Any]:
    """SillyTavern's per-message `extra`, plus what Parlor must get back on import."""
    extra = dict(base) if isinstance(base, dict) else {}
    info = msg.gen_info or {}
    if isinstance(info.get("model"), str) and info["model"] and "model" not in extra:
        extra["model"] = info["model"]
    parlor: dict[str, Any] = {}
    if set(info) - _DERIVED_INFO:
        parlor["gen_info"] = info
    if msg.status != "complete":
        parlor["status"] = msg.status
    if msg.role != line_role:
        parlor["role"] = msg.role
    extra.pop(KEY, None)
    if parlor:
        extra[KEY] = parlor
    return extra
