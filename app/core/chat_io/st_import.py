"""Importing a SillyTavern `.jsonl` chat into the store as a message tree.

Each line becomes a message whose swipes are its siblings (the shown one continues the
path); the branches Parlor wrote into `chat_metadata.parlor` are re-attached. Fields Parlor
has no column for stay in `Message.extra` / the chat's extra, so an export gives them back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.chat_io.dates import parse_send_date
from app.core.chat_io.errors import ChatIOError, LineProblem
from app.core.chat_io.parlor_block import KEY, decode_rest
from app.core.chat_io.st_read import StFile, StLine, read_st_file
from app.core.store import Store
from app.core.store.nodes import ROLES, STATUSES, NewNode

# Fields that become columns or tree structure; every other field of a line is kept as is.
_MAPPED = {"mes", "swipes", "swipe_id", "swipe_info", "is_user", "is_system", "extra"}

Accept = Callable[[list[LineProblem]], bool]


@dataclass
class ImportResult:
    chat_id: int
    messages: int
    problems: list[LineProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def import_st_chat(
    store: Store,
    path: str | Path,
    character_id: int,
    *,
    title: str | None = None,
    strict: bool = True,
    accept: Accept | None = None,
    parsed: StFile | None = None,
) -> ImportResult:
    """Import `path` for `character_id`, all in one transaction.

    Malformed lines stop the import (ChatIOError with `.problems`) unless `accept(problems)`
    returns True or, without `accept`, `strict` is False; then the rest is imported.
    `parsed`: the file as `read_st_file` read it already (the window reads off its thread)."""
    parsed = parsed if parsed is not None else read_st_file(path)
    if parsed.problems and not (accept(parsed.problems) if accept else not strict):
        listed = "; ".join(str(p) for p in parsed.problems[:10])
        more = len(parsed.problems) - 10
        raise ChatIOError(
            f"{path}: {len(parsed.problems)} malformed line(s): {listed}"
            + (f" (and {more} more)" if more > 0 else ""),
            parsed.problems,
        )
    nodes, leaf, texts = line_nodes(parsed)
    extra = dict(parsed.metadata)
    meta = extra.get("chat_metadata")
    if isinstance(meta, dict) and KEY in meta:
        meta = dict(meta)
        nodes += decode_rest(meta.pop(KEY), texts, parsed.warnings)
        extra["chat_metadata"] = meta
    chat_id = store.chats.from_nodes(
        character_id, title or Path(path).stem, nodes, leaf, extra, _persona_for(store, extra)
    )
    return ImportResult(chat_id, len(nodes), parsed.problems, parsed.warnings)


def _persona_for(store: Store, meta: dict[str, Any]) -> int | None:
    """The persona named like the file's user, if the user has one (else the default)."""
    name = meta.get("user_name")
    if not isinstance(name, str):
        return None
    for persona in store.personas.list():
        if persona.name.casefold() == name.casefold():
            return persona.id
    return None


def line_nodes(
    parsed: StFile,
) -> tuple[list[NewNode], tuple[int, int] | None, dict[tuple[int, int], str]]:
    """Nodes for the file's lines keyed (line, swipe), the leaf's key, and each key's text."""
    nodes: list[NewNode] = []
    texts: dict[tuple[int, int], str] = {}
    parent = None
    clock = _Clock(parse_send_date(parsed.metadata.get("create_date")), parsed)
    for number, line in enumerate(parsed.messages):
        for j, text in enumerate(line.swipes):
            nodes.append(_swipe_node(line, number, j, parent, clock))
            texts[(number, j)] = text
        parent = (number, line.swipe_id)
    return nodes, parent, texts


def _swipe_node(
    line: StLine, number: int, j: int, parent: tuple[Any, ...] | None, clock: _Clock
) -> NewNode:
    infos = line.row.get("swipe_info")
    entry = infos[j] if isinstance(infos, list) and j < len(infos) else None
    entry = dict(entry) if isinstance(entry, dict) else None
    active = j == line.swipe_id
    stored: dict[str, Any] = {}
    if active:
        stored = {k: v for k, v in line.row.items() if k not in _MAPPED}
        if line.role == "system" and "is_user" in line.row:
            stored["is_user"] = line.row["is_user"]
    st_extra, parlor = _split_extra(line.row.get("extra") if active else (entry or {}).get("extra"))
    if active and st_extra is not None:
        stored["extra"] = st_extra
    if entry is not None:
        if "extra" in entry:
            entry["extra"] = st_extra if not active else _split_extra(entry["extra"])[0]
        stored["swipe_info"] = entry
    date = line.row.get("send_date") if active else (entry or {}).get("send_date")
    role = str(parlor["role"]) if parlor.get("role") in ROLES else line.role
    status = str(parlor["status"]) if parlor.get("status") in STATUSES else "complete"
    return NewNode(
        (number, j),
        parent,
        role,
        line.swipes[j],
        status,
        _gen_info(parlor, st_extra),
        stored or None,
        clock.stamp(date, line.line),
        shown=active,
    )


def _split_extra(value: Any) -> tuple[Any, dict[str, Any]]:
    """SillyTavern's `extra` without Parlor's part, and Parlor's part."""
    if not isinstance(value, dict):
        return value, {}
    rest = dict(value)
    parlor = rest.pop(KEY, None)
    return rest, parlor if isinstance(parlor, dict) else {}


def _gen_info(parlor: dict[str, Any], st_extra: Any) -> dict[str, Any] | None:
    info = parlor.get("gen_info")
    if isinstance(info, dict):
        return info
    if isinstance(st_extra, dict) and isinstance(st_extra.get("model"), str):
        info = {"model": st_extra["model"]}
        if isinstance(st_extra.get("api"), str):
            info["api"] = st_extra["api"]
        return info
    return None


class _Clock:
    """Message times: the parsed `send_date`, else the last good one (order stays right)."""

    def __init__(self, start: float | None, parsed: StFile):
        self.last = start if start is not None else time.time()
        self.parsed = parsed
        self.unreadable = 0

    def stamp(self, value: Any, line: int) -> float:
        parsed = parse_send_date(value)
        if parsed is None:
            if value not in (None, "") and not self.unreadable:
                self.parsed.warnings.append(
                    f"{self.parsed.source}, line {line}: send_date"
                    f" {value!r} is in no known format; kept as text"
                )
            self.unreadable += value not in (None, "")
            return self.last
        self.last = parsed
        return parsed
