"""Every row of an "export everything" library checked before any is written.

The zip is a file from elsewhere. A row that SQLite would take but Parlor cannot read back
(a `card_json` holding a list, a date of 1e999, a message pointing at another chat's node)
would otherwise be stored, and the app would fail on every start after. So each column is
checked for its type and range, JSON columns for holding an object, and the tree's own
pointers for pointing inside their chat. Lone UTF-16 surrogates (which SQLite cannot
store) are replaced with U+FFFD, and the caller is told how many.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.core.cards.surrogates import scrub_text as scrub_surrogates

# Seconds since 1970 for the years 1 to 9999: what Python's dates can show and export.
MIN_TIME, MAX_TIME = -62_135_596_800, 253_402_300_799
MAX_ID = 2**63 - 1


class RowError(ValueError):
    """A row that cannot be imported; the message names the table, row and column."""


@dataclass
class Checked:
    tables: dict[str, list[dict[str, Any]]]
    replaced_surrogates: int = 0


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_ID


def _time(v: Any) -> bool:
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(v)
        and MIN_TIME <= v <= MAX_TIME
    )


def _json_object(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        return isinstance(json.loads(v, parse_constant=_refuse_constant), dict)
    except (ValueError, RecursionError):
        return False


def _refuse_constant(name: str) -> None:  # NaN, Infinity: not JSON, and not exportable
    raise ValueError(name)


def _one_of(*values: Any) -> Callable[[Any], bool]:
    return lambda v: v in values


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


_TEXT = lambda v: isinstance(v, str)  # noqa: E731 - a table of small predicates reads best
_BLOB = lambda v: isinstance(v, (bytes, bytearray))  # noqa: E731

# table -> column -> (required, check, what the column must hold)
COLUMNS: dict[str, dict[str, tuple[bool, Callable[[Any], bool], str]]] = {
    "characters": {
        "id": (True, _int, "a positive integer"),
        "name": (True, _TEXT, "text"),
        "card_json": (True, _json_object, "a JSON object"),
        "avatar": (False, _optional(_BLOB), "image bytes"),
        "builtin_key": (False, _optional(_TEXT), "text"),
        "created_at": (True, _time, "a date"),
        "updated_at": (True, _time, "a date"),
        "deleted_at": (False, _optional(_time), "a date"),
        "card_extra": (False, _optional(_json_object), "a JSON object"),
    },
    "personas": {
        "id": (True, _int, "a positive integer"),
        "name": (True, _TEXT, "text"),
        "description": (False, _TEXT, "text"),
        "is_default": (False, _one_of(0, 1), "0 or 1"),
    },
    "groups": {
        "id": (True, _int, "a positive integer"),
        "name": (True, _TEXT, "text"),
        "avatar": (False, _optional(_BLOB), "image bytes"),
        "settings": (True, _json_object, "a JSON object"),
        "extra": (False, _optional(_json_object), "a JSON object"),
        "created_at": (True, _time, "a date"),
        "updated_at": (True, _time, "a date"),
        "deleted_at": (False, _optional(_time), "a date"),
    },
    "group_members": {
        "group_id": (True, _int, "a positive integer"),
        "character_id": (True, _int, "a positive integer"),
        "position": (True, lambda v: isinstance(v, int) and not isinstance(v, bool), "a number"),
        "muted": (False, _one_of(0, 1), "0 or 1"),
    },
    "chats": {
        "id": (True, _int, "a positive integer"),
        "character_id": (True, _int, "a positive integer"),
        "title": (True, _TEXT, "text"),
        "persona_id": (False, _optional(_int), "a positive integer"),
        "active_leaf_id": (False, _optional(_int), "a positive integer"),
        "draft": (False, _TEXT, "text"),
        "created_at": (True, _time, "a date"),
        "last_used_at": (True, _time, "a date"),
        "deleted_at": (False, _optional(_time), "a date"),
        "extra": (False, _optional(_json_object), "a JSON object"),
    },
    "messages": {
        "id": (True, _int, "a positive integer"),
        "chat_id": (True, _int, "a positive integer"),
        "parent_id": (False, _optional(_int), "a positive integer"),
        "role": (True, _one_of("user", "assistant", "system"), "user, assistant or system"),
        "text": (True, _TEXT, "text"),
        "status": (
            False,
            _one_of("complete", "streaming", "stopped", "interrupted", "error"),
            "a message status",
        ),
        "active_child_id": (False, _optional(_int), "a positive integer"),
        "gen_info": (False, _optional(_json_object), "a JSON object"),
        "created_at": (True, _time, "a date"),
        "extra": (False, _optional(_json_object), "a JSON object"),
    },
}


def check_tables(tables: Any) -> Checked:
    """The library's tables, checked and with surrogates replaced; RowError on the first
    row that cannot be imported. Columns not listed in COLUMNS (added by later migrations)
    are kept if they hold a plain value SQLite can store; the insert keeps those the
    table has."""
    if not isinstance(tables, dict):
        raise RowError("the library's tables are not an object")
    out = Checked({})
    for table, columns in COLUMNS.items():
        rows = tables.get(table, [])
        if not isinstance(rows, list):
            raise RowError(f"the {table} table is not a list of rows")
        out.tables[table] = [_row(table, i, row, columns, out) for i, row in enumerate(rows)]
    _check_tree(out.tables["chats"], out.tables["messages"])
    return out


def _row(table: str, index: int, row: Any, columns: dict[str, Any], out: Checked) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise RowError(f"{table} row {index + 1} is not an object")
    missing = [c for c, (required, _, _) in columns.items() if required and c not in row]
    if missing:
        raise RowError(f"{table} row {index + 1} has no {missing[0]}")
    clean = {}
    for column, value in row.items():
        if isinstance(value, str):
            value, replaced = scrub_surrogates(value)
            out.replaced_surrogates += replaced
        _, check, what = columns.get(column, (False, _plain, "a plain value"))
        if not check(value):
            raise RowError(
                f"{table} row {index + 1} (id {row.get('id')!r}): {column} must be "
                f"{what}, not {_short(value)}"
            )
        clean[column] = value
    return clean


def _plain(v: Any) -> bool:
    """What SQLite can store and Parlor can export again."""
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return -MAX_ID - 1 <= v <= MAX_ID
    return v is None or isinstance(v, (str, bytes, bytearray))


def forget_stale_children(messages: list[dict[str, Any]]) -> None:
    """A remembered child that is no child of the message any more (deleted, hidden, or
    its id reused since) is forgotten: the store's walks already ignore it and take the
    newest child. Exports before this rule wrote such pointers; they import with it."""
    parent_of = {m["id"]: m.get("parent_id") for m in messages}
    for m in messages:
        child = m.get("active_child_id")
        if child is not None and parent_of.get(child) != m["id"]:
            m["active_child_id"] = None


def _check_tree(chats: list[dict[str, Any]], messages: list[dict[str, Any]]) -> None:
    """Pointers SQLite does not check: a chat's active leaf and a node's parent must be
    messages of the same chat; a remembered child only a hint (`forget_stale_children`)."""
    forget_stale_children(messages)
    chat_of = {m["id"]: m["chat_id"] for m in messages}
    for m in messages:
        target = m.get("parent_id")
        if target is not None and chat_of.get(target) != m["chat_id"]:
            raise RowError(
                f"message {m['id']}: parent_id {target} is not a message of chat {m['chat_id']}"
            )
    for chat in chats:
        leaf = chat.get("active_leaf_id")
        if leaf is not None and chat_of.get(leaf) != chat["id"]:
            raise RowError(
                f"chat {chat['id']}: its active message {leaf} is not one of its messages"
            )
    _check_roots(messages)


def _check_roots(messages: list[dict[str, Any]]) -> None:
    """Every message leads up to a root: the store's walks follow parents until there is
    none, so a cycle in a file (its own parent, or two messages each other's) would walk
    forever. Each message is walked past once."""
    parent_of = {m["id"]: m.get("parent_id") for m in messages}
    rooted: set[int] = set()
    for start in parent_of:
        seen: set[int] = set()
        node: int | None = start
        while node is not None and node not in rooted:
            if node in seen:
                raise RowError(f"message {start}: its parents go round in a circle")
            seen.add(node)
            node = parent_of.get(node)
        rooted |= seen


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
