"""Lorebooks: the card's `character_book`, standalone lorebooks and SillyTavern world info.

Parlor's shape is the V3 `character_book` (a dict with `entries` as a list). SillyTavern stores
world info as `{"entries": {"0": {...}, "1": {...}}}` with its own field names (`key`, `uid`,
`disable`, `order`, ...); the mapping below is the one SillyTavern uses when it embeds world info
in a card, so books move between the two without surprises. Fields the mapping does not cover
ride along under `extensions["parlor_world_info"]` (world info -> book) and
`extensions["parlor_book_entry"]` (book -> world info), so a round trip keeps everything.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from app.core.cards.coerce import Fixer, is_number, kind
from app.core.cards.errors import CardError, guarded

BOOK_SPEC = "lorebook_v3"
WI_EXTRA = "parlor_world_info"
BOOK_EXTRA = "parlor_book_entry"
DEFAULT_INSERTION_ORDER = 100

# World-info field -> key under the book entry's `extensions` (SillyTavern's own names).
WI_TO_EXT = {
    "excludeRecursion": "exclude_recursion",
    "displayIndex": "display_index",
    "probability": "probability",
    "useProbability": "useProbability",
    "depth": "depth",
    "selectiveLogic": "selectiveLogic",
    "outletName": "outlet_name",
    "group": "group",
    "groupOverride": "group_override",
    "groupWeight": "group_weight",
    "preventRecursion": "prevent_recursion",
    "delayUntilRecursion": "delay_until_recursion",
    "scanDepth": "scan_depth",
    "matchWholeWords": "match_whole_words",
    "useGroupScoring": "use_group_scoring",
    "caseSensitive": "case_sensitive",
    "automationId": "automation_id",
    "role": "role",
    "vectorized": "vectorized",
    "sticky": "sticky",
    "cooldown": "cooldown",
    "delay": "delay",
    "matchPersonaDescription": "match_persona_description",
    "matchCharacterDescription": "match_character_description",
    "matchCharacterPersonality": "match_character_personality",
    "matchCharacterDepthPrompt": "match_character_depth_prompt",
    "matchScenario": "match_scenario",
    "matchCreatorNotes": "match_creator_notes",
    "triggers": "triggers",
    "ignoreBudget": "ignore_budget",
}
EXT_TO_WI = {ext: wi for wi, ext in WI_TO_EXT.items()}
# World-info fields with a direct counterpart in the book entry.
WI_DIRECT = (
    "uid",
    "key",
    "keysecondary",
    "comment",
    "content",
    "constant",
    "selective",
    "order",
    "disable",
    "position",
    "addMemo",
    "extensions",
)
# Book-entry fields that world info expresses; the rest travel under BOOK_EXTRA.
BOOK_MAPPED = (
    "id",
    "keys",
    "secondary_keys",
    "comment",
    "content",
    "constant",
    "selective",
    "insertion_order",
    "enabled",
    "position",
    "extensions",
)

# SillyTavern's defaults for a new world-info entry (filled in when a book entry lacks them).
WI_DEFAULTS: dict[str, Any] = {
    "vectorized": False,
    "selectiveLogic": 0,
    "addMemo": False,
    "ignoreBudget": False,
    "excludeRecursion": False,
    "preventRecursion": False,
    "matchPersonaDescription": False,
    "matchCharacterDescription": False,
    "matchCharacterPersonality": False,
    "matchCharacterDepthPrompt": False,
    "matchScenario": False,
    "matchCreatorNotes": False,
    "delayUntilRecursion": False,
    "probability": 100,
    "useProbability": True,
    "depth": 4,
    "outletName": "",
    "group": "",
    "groupOverride": False,
    "groupWeight": 100,
    "scanDepth": None,
    "caseSensitive": None,
    "matchWholeWords": None,
    "useGroupScoring": None,
    "automationId": "",
    "role": 0,
    "sticky": None,
    "cooldown": None,
    "delay": None,
    "triggers": [],
}


# --- normalising a book ----------------------------------------------------------------------


def normalize_book(
    book: Any,
    fix: Fixer,
    where: str = "character_book",
    added: list[tuple[Any, ...]] | None = None,
    path: tuple[Any, ...] = (),
) -> dict[str, Any]:
    """Bring a V2/V3 book (or world info) to the V3 shape, in place where it is a dict."""
    book = fix.mapping(book, where)
    if "entries" not in book:
        fix.warn(f"'{where}' had no entries; read as an empty list")
        book["entries"] = []
    book["entries"] = _entry_list(book["entries"], fix, f"{where}.entries")
    for i, entry in enumerate(book["entries"]):
        book["entries"][i] = _normalize_entry(
            entry, fix, f"{where}.entries[{i}]", added, (*path, "entries", i)
        )
    for key in ("name", "description"):
        if key in book and book[key] is not None:
            book[key] = fix.text(book[key], f"{where}.{key}")
    for key in ("scan_depth", "token_budget"):
        if book.get(key) is not None:
            book[key] = fix.number(book[key], f"{where}.{key}")
    if book.get("recursive_scanning") is not None:
        book["recursive_scanning"] = fix.boolean(
            book["recursive_scanning"], f"{where}.recursive_scanning"
        )
    if book.get("extensions") is None:
        book["extensions"] = {}
    fix.mapping(book["extensions"], f"{where}.extensions")
    normalized: dict[str, Any] = book
    return normalized


def _entry_list(entries: Any, fix: Fixer, where: str) -> list[Any]:
    if isinstance(entries, list):
        return entries
    if isinstance(entries, dict):
        fix.warn(f"'{where}' was an object keyed by number (world info); read as a list")
        return [entries[key] for key in _js_key_order(entries)]
    fix.fail(where, f"must be a list of entries, not {kind(entries)}")


def _js_key_order(obj: dict[str, Any]) -> list[Any]:
    """Keys in the order JavaScript iterates them: integer-like keys ascending, then the rest."""
    numeric = sorted(
        (
            k
            for k in obj
            if isinstance(k, str)
            and k.isascii()
            and k.isdigit()
            and (k == "0" or not k.startswith("0"))
        ),
        key=int,
    )
    return numeric + [k for k in obj if k not in set(numeric)]


def looks_like_world_info_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and "keys" not in entry
        and ("key" in entry or "uid" in entry or "keysecondary" in entry or "disable" in entry)
    )


def _normalize_entry(
    entry: Any, fix: Fixer, where: str, added: list[Any] | None, path: tuple[Any, ...]
) -> dict[str, Any]:
    if not isinstance(entry, dict):
        fix.fail(where, f"must be an object, not {kind(entry)}")
    if looks_like_world_info_entry(entry):
        entry = entry_from_world_info(entry, fix, where)
    if "keys" not in entry:
        fix.warn(f"'{where}' had no keys")
        entry["keys"] = []
    entry["keys"] = fix.text_list(entry["keys"], f"{where}.keys", split_commas=True)
    if entry.get("secondary_keys") is not None:
        entry["secondary_keys"] = fix.text_list(
            entry["secondary_keys"], f"{where}.secondary_keys", split_commas=True
        )
    entry["content"] = fix.text(entry.get("content", ""), f"{where}.content")
    if entry.get("extensions") is None:
        entry["extensions"] = {}
    fix.mapping(entry["extensions"], f"{where}.extensions")
    entry["enabled"] = fix.boolean(entry.get("enabled", True), f"{where}.enabled")
    order = entry.get("insertion_order")
    if order is None:
        order = DEFAULT_INSERTION_ORDER
    entry["insertion_order"] = fix.number(order, f"{where}.insertion_order")
    if "use_regex" not in entry:
        entry["use_regex"] = False
        if added is not None:
            added.append((*path, "use_regex"))
    entry["use_regex"] = fix.boolean(entry["use_regex"], f"{where}.use_regex")
    _optional_fields(entry, fix, where)
    normalized: dict[str, Any] = entry
    return normalized


def _optional_fields(entry: dict[str, Any], fix: Fixer, where: str) -> None:
    for key in ("constant", "selective", "case_sensitive"):
        if entry.get(key) is not None:
            entry[key] = fix.boolean(entry[key], f"{where}.{key}")
    for key in ("name", "comment"):
        if entry.get(key) is not None:
            entry[key] = fix.text(entry[key], f"{where}.{key}")
    if entry.get("priority") is not None:
        entry["priority"] = fix.number(entry["priority"], f"{where}.priority")
    if "id" in entry and not isinstance(entry["id"], (str, int, float, type(None))):
        fix.fail(f"{where}.id", f"must be a number or text, not {kind(entry['id'])}")


# --- world info <-> book ---------------------------------------------------------------------


def entry_from_world_info(wi: dict[str, Any], fix: Fixer, where: str) -> dict[str, Any]:
    """One SillyTavern world-info entry as a V3 book entry (SillyTavern's own mapping)."""
    extensions: dict[str, Any] = {}
    leftovers: dict[str, Any] = {}
    own_ext = wi.get("extensions")
    book_extra: dict[str, Any] = {}
    if isinstance(own_ext, dict):
        for key, value in own_ext.items():
            if key == BOOK_EXTRA and isinstance(value, dict):
                book_extra = value
            elif key in EXT_TO_WI or key in (WI_EXTRA, "position"):
                leftovers.setdefault("extensions", {})[key] = value
            else:
                extensions[key] = value
        if not own_ext:
            leftovers["extensions"] = {}
    elif "extensions" in wi:
        leftovers["extensions"] = own_ext
    entry: dict[str, Any] = {}
    if "uid" in wi:
        entry["id"] = wi["uid"]
    entry["keys"] = wi.get("key", [])
    if "keysecondary" in wi:
        entry["secondary_keys"] = wi["keysecondary"]
    for name in ("comment", "content", "constant", "selective"):
        if name in wi:
            entry[name] = wi[name]
    if "order" in wi:
        entry["insertion_order"] = wi["order"]
    entry["enabled"] = not fix.boolean(wi.get("disable", False), f"{where}.disable")
    if "position" in wi:
        position = wi["position"]
        if position not in ("before_char", "after_char"):
            position = "before_char" if position in (0, "0") else "after_char"
        entry["position"] = position
        extensions["position"] = wi["position"]
    for wi_key, ext_key in WI_TO_EXT.items():
        if wi_key in wi:
            extensions[ext_key] = wi[wi_key]
    if isinstance(wi.get("caseSensitive"), bool):
        entry["case_sensitive"] = wi["caseSensitive"]
    if "addMemo" in wi and wi["addMemo"] != bool(wi.get("comment")):
        leftovers["addMemo"] = wi["addMemo"]
    for key, value in wi.items():
        if key not in WI_DIRECT and key not in WI_TO_EXT:
            leftovers[key] = value
    if leftovers:
        extensions[WI_EXTRA] = leftovers
    entry["extensions"] = extensions
    entry.update(book_extra)
    return entry


def _entry_to_world_info(entry: dict[str, Any], uid: Any, index: int) -> dict[str, Any]:
    ext = dict(entry.get("extensions") or {})
    leftovers = ext.pop(WI_EXTRA, None)
    leftovers = leftovers if isinstance(leftovers, dict) else {}
    comment = entry.get("comment") or ""
    wi: dict[str, Any] = {
        "uid": uid,
        "key": list(entry.get("keys") or []),
        "keysecondary": list(entry.get("secondary_keys") or []),
        "comment": comment,
        "content": entry.get("content", ""),
        "constant": bool(entry.get("constant") or False),
        "selective": bool(entry.get("selective") or False),
        "order": entry.get("insertion_order", DEFAULT_INSERTION_ORDER),
        "position": _wi_position(entry, ext),
        "disable": not entry.get("enabled", True),
        "addMemo": leftovers.get("addMemo", bool(comment)),
    }
    ext.pop("position", None)
    for ext_key, wi_key in EXT_TO_WI.items():
        if ext_key in ext:
            wi[wi_key] = ext.pop(ext_key)
    if "caseSensitive" not in wi and isinstance(entry.get("case_sensitive"), bool):
        wi["caseSensitive"] = entry["case_sensitive"]
    for key, value in WI_DEFAULTS.items():
        wi.setdefault(key, copy.deepcopy(value))
    wi.setdefault("displayIndex", index)
    for key, value in leftovers.items():
        if key not in ("addMemo", "extensions"):
            wi[key] = value
    _carry_book_only_fields(entry, uid, wi, ext)
    if ext or "extensions" in leftovers:
        own = leftovers.get("extensions")
        wi["extensions"] = {**ext, **own} if isinstance(own, dict) else (own if not ext else ext)
    return wi


def _carry_book_only_fields(
    entry: dict[str, Any], uid: Any, wi: dict[str, Any], ext: dict[str, Any]
) -> None:
    book_only = {k: v for k, v in entry.items() if k not in BOOK_MAPPED}
    if book_only.get("use_regex") is False:
        del book_only["use_regex"]
    if "case_sensitive" in book_only and wi.get("caseSensitive") == book_only["case_sensitive"]:
        del book_only["case_sensitive"]
    if "id" in entry and str(entry["id"]) != str(uid):
        book_only["id"] = entry["id"]
    if book_only:
        ext[BOOK_EXTRA] = book_only


def _wi_position(entry: dict[str, Any], ext: dict[str, Any]) -> Any:
    if "position" in ext:
        return ext["position"]
    position = entry.get("position")
    if is_number(position):
        return position
    return 0 if position == "before_char" else 1


def lorebook_to_world_info(book: dict[str, Any]) -> dict[str, Any]:
    """A V3 book as a SillyTavern world-info file (`entries` keyed by uid)."""
    book = lorebook_from_json(book)
    leftovers = book.get("extensions", {}).get(WI_EXTRA)
    result: dict[str, Any] = {"entries": {}}
    used = {_uid_of(e.get("id")) for e in book["entries"]} - {None}
    next_uid = 0
    for index, entry in enumerate(book["entries"]):
        uid = _uid_of(entry.get("id"))
        if uid is None or str(uid) in result["entries"]:
            while next_uid in used or str(next_uid) in result["entries"]:
                next_uid += 1
            uid = next_uid
        result["entries"][str(uid)] = _entry_to_world_info(entry, uid, index)
    if isinstance(leftovers, dict):
        for key, value in leftovers.items():
            result.setdefault(key, value)
    return result


def _uid_of(entry_id: Any) -> int | None:
    """A book entry id usable as a world-info uid (an integer, or digits as text)."""
    if type(entry_id) is int and entry_id >= 0:
        return entry_id
    if isinstance(entry_id, str) and entry_id.isdigit() and entry_id.isascii():
        return int(entry_id)
    return None


def _book_from_world_info(obj: dict[str, Any], fix: Fixer, name: str | None) -> dict[str, Any]:
    entries = obj["entries"]
    if isinstance(entries, dict):
        entries = [entries[key] for key in _js_key_order(entries)]
    elif not isinstance(entries, list):
        fix.fail("entries", f"must be an object or a list, not {kind(entries)}")
    converted = []
    for i, item in enumerate(entries):
        if not isinstance(item, dict):
            fix.fail(f"entries[{i}]", f"must be an object, not {kind(item)}")
        converted.append(entry_from_world_info(copy.deepcopy(item), fix, f"entries[{i}]"))
    book: dict[str, Any] = {}
    if name is not None:
        book["name"] = name
    book["entries"] = converted
    leftovers = {k: copy.deepcopy(v) for k, v in obj.items() if k != "entries"}
    book["extensions"] = {WI_EXTRA: leftovers} if leftovers else {}
    return book


# --- the public lorebook API -----------------------------------------------------------------


def lorebook_from_json(obj: Any, *, name: str | None = None, source: str = "") -> dict[str, Any]:
    """Any lorebook JSON (V3 standalone, V2/V3 `character_book`, SillyTavern world info, or a
    whole card) as a V3 `character_book` dict. Raises CardError if it is none of these."""
    return guarded(source, lambda: _lorebook_from_json(obj, name, source))


def _lorebook_from_json(obj: Any, name: str | None, source: str) -> dict[str, Any]:
    fix = Fixer(source)
    if not isinstance(obj, dict):
        raise CardError(source, f"a lorebook must be a JSON object, not {kind(obj)}")
    if obj.get("spec") == BOOK_SPEC or (
        "entries" not in obj
        and obj.get("spec") is None
        and isinstance(obj.get("data"), dict)
        and "entries" in obj["data"]
    ):
        obj = obj.get("data")
        if not isinstance(obj, dict):
            raise CardError(source, f"the lorebook's 'data' must be an object, not {kind(obj)}")
    elif isinstance(obj.get("data"), dict) and "entries" not in obj:
        book = obj["data"].get("character_book")
        if not isinstance(book, dict):
            raise CardError(source, "this character card has no lorebook (character_book)")
        obj = book
    if "entries" not in obj:
        raise CardError(source, "not a lorebook: there is no 'entries' field")
    entries = obj["entries"]
    is_world_info = isinstance(entries, dict) and all(
        looks_like_world_info_entry(e) or not isinstance(e, dict) or "keys" not in e
        for e in entries.values()
    )
    if is_world_info:
        book = _book_from_world_info(obj, fix, name)
    else:
        book = copy.deepcopy(obj)
        if name is not None and not book.get("name"):
            book["name"] = name
    return normalize_book(book, fix, "lorebook")


def lorebook_to_json(book: dict[str, Any]) -> dict[str, Any]:
    """A V3 standalone lorebook file: `{"spec": "lorebook_v3", "data": book}`."""
    return {"spec": BOOK_SPEC, "data": copy.deepcopy(book)}


# --- decorators ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decorator:
    """One `@@name value` line; `fallback` is True for `@@@name` lines."""

    name: str
    value: str | None
    fallback: bool = False


_DECORATOR = re.compile(r"(@@@?)([A-Za-z_][A-Za-z0-9_]*)(?:[ \t]+(.*?))?[ \t]*")


def split_decorators(content: str) -> tuple[list[Decorator], str]:
    """The decorators at the start of an entry's content, and the content without them.

    The card keeps the content as written; the prompt gets the second value.
    """
    lines = content.splitlines(keepends=True)
    decorators: list[Decorator] = []
    index = 0
    while index < len(lines):
        line = lines[index].rstrip("\r\n")
        if not line.strip() and not decorators:
            index += 1
            continue
        match = _DECORATOR.fullmatch(line) if line.startswith("@@") else None
        if match is None:
            break
        value = match.group(3) if match.group(3) else None
        decorators.append(Decorator(match.group(2), value, match.group(1) == "@@@"))
        index += 1
    if not decorators:
        return [], content
    return decorators, "".join(lines[index:]).lstrip("\r\n")
