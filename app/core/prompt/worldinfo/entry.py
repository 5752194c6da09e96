"""One world-info entry as the scanner sees it, read from a V3 book entry.

The book entry is Parlor's stored shape (V3 `character_book` entries, with SillyTavern's own
fields under `extensions`); `WIEntry` is the typed view the scanner works on, with SillyTavern's
defaults filled in the way `convertCharacterBook` in `public/scripts/world-info.js` fills them
when a card's book is imported into SillyTavern.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import re
import threading
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property
from typing import Any

KNOWN_DECORATORS = frozenset(
    {"activate", "dont_activate", "scan_depth", "additional_keys", "exclude_keys"}
)
DEFAULT_DEPTH = 4  # SillyTavern's DEFAULT_DEPTH for @depth entries
DEFAULT_WEIGHT = 100  # SillyTavern's DEFAULT_WEIGHT for inclusion groups
MAX_SCAN_DEPTH = 1000
_GROUP_SPLIT = re.compile(r",\s*")


class Position(IntEnum):
    """SillyTavern's `world_info_position` numbers, as cards and world-info files store them."""

    BEFORE = 0  # before the character definition
    AFTER = 1  # after the character definition
    AN_TOP = 2  # top of the author's note
    AN_BOTTOM = 3  # bottom of the author's note
    AT_DEPTH = 4  # inserted N messages from the end, with a role
    EM_TOP = 5  # before the example messages
    EM_BOTTOM = 6  # after the example messages

    @property
    def label(self) -> str:
        return _POSITION_LABELS[self]


_POSITION_LABELS = {
    Position.BEFORE: "before_char",
    Position.AFTER: "after_char",
    Position.AN_TOP: "an_top",
    Position.AN_BOTTOM: "an_bottom",
    Position.AT_DEPTH: "at_depth",
    Position.EM_TOP: "em_top",
    Position.EM_BOTTOM: "em_bottom",
}


class Role(IntEnum):
    """SillyTavern's `extension_prompt_roles`."""

    SYSTEM = 0
    USER = 1
    ASSISTANT = 2

    @property
    def message_role(self) -> str:
        return ("system", "user", "assistant")[self]


class Logic(IntEnum):
    """SillyTavern's `world_info_logic` for secondary keys."""

    AND_ANY = 0
    NOT_ALL = 1
    NOT_ANY = 2
    AND_ALL = 3


_LOGIC_NAMES = {
    "and_any": Logic.AND_ANY,
    "not_all": Logic.NOT_ALL,
    "not_any": Logic.NOT_ANY,
    "and_all": Logic.AND_ALL,
}


@dataclass(frozen=True)
class CharacterFilter:
    """SillyTavern's per-entry `characterFilter`: `{names, tags, isExclude}`.

    SillyTavern (`checkWorldInfo`) keeps an entry to the characters named (or, with
    `isExclude`, away from them), then to the characters with one of the tags (or away). It
    names a character by its card's file name without the extension, which is the name the
    card was imported as; Parlor names it by the card's name. Its tags are its own tag ids;
    Parlor's are the card's tags, compared without regard to case. A tag id written by
    SillyTavern matches no tag here, as it matches none on another SillyTavern install.
    In a group chat the character is the member who speaks, as in SillyTavern's group loop.
    """

    names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    is_exclude: bool = False

    @classmethod
    def from_extensions(cls, ext: dict[str, Any]) -> CharacterFilter | None:
        """The filter as a book entry keeps it: `extensions.parlor_world_info.characterFilter`
        (read from SillyTavern world info by app.core.cards), or `extensions.character_filter`
        (what SillyTavern writes into a card's own book); None when it filters nothing."""
        raw = filter_of(ext)
        if raw is None:
            return None
        found = cls(_names(raw.get("names")), _names(raw.get("tags")), raw.get("isExclude") is True)
        return found if found.names or found.tags else None

    def blocks(self, character: str, tags: tuple[str, ...]) -> str:
        """Why the entry is filtered out for `character` with `tags`, or "" when it is not."""
        if self.names:
            named = character in self.names
            if named == self.is_exclude:
                listed = ", ".join(self.names)
                return f"filtered out for this character ({character or 'none'}): " + (
                    f"not for {listed}" if self.is_exclude else f"only for {listed}"
                )
        if self.tags and character:  # SillyTavern: no character, no tag check
            own = {t.casefold() for t in tags}
            tagged = any(t.casefold() in own for t in self.tags)
            if tagged == self.is_exclude:
                listed = ", ".join(self.tags)
                return f"filtered out for this character ({character}): " + (
                    f"not for tags {listed}" if self.is_exclude else f"only for tags {listed}"
                )
        return ""


WI_EXTRA = "parlor_world_info"  # app.core.cards.lorebook.WI_EXTRA (cards may not be imported)
ST_FILTER = "character_filter"


def filter_of(ext: dict[str, Any]) -> dict[str, Any] | None:
    """The raw `characterFilter` dict of a book entry's `extensions`, if any."""
    extra = ext.get(WI_EXTRA)
    raw = ext.get(ST_FILTER)
    if not isinstance(raw, dict) and isinstance(extra, dict):
        raw = extra.get("characterFilter")
    return raw if isinstance(raw, dict) else None


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is a dict (a JSON object), else an empty one."""
    return value if isinstance(value, dict) else {}


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value if isinstance(v, (str, int)) and not isinstance(v, bool))


@dataclass(eq=False)  # identity matters: the scanner keeps sets of entries
class WIEntry:
    uid: Any
    world: str
    label: str
    keys: tuple[str, ...]
    content: str
    secondary: tuple[str, ...] = ()
    decorators: dict[str, str] = field(default_factory=dict)
    disabled: bool = False
    constant: bool = False
    selective: bool = False
    logic: Logic = Logic.AND_ANY
    order: float = 100
    position: Position = Position.AFTER
    depth: int = DEFAULT_DEPTH
    role: Role = Role.SYSTEM
    probability: float = 100
    use_probability: bool = True
    group: str = ""
    group_override: bool = False
    group_weight: float = DEFAULT_WEIGHT
    use_group_scoring: bool | None = None
    scan_depth: int | None = None
    case_sensitive: bool | None = None
    whole_words: bool | None = None
    exclude_recursion: bool = False
    prevent_recursion: bool = False
    delay_until_recursion: int = 0  # 0: off; a level (True in SillyTavern is level 1)
    sticky: int = 0
    cooldown: int = 0
    delay: int = 0
    additional: tuple[str, ...] = ()  # @@additional_keys (V3 decorator)
    exclude: tuple[str, ...] = ()  # @@exclude_keys (V3 decorator)
    hash: str = ""
    character_filter: CharacterFilter | None = None  # SillyTavern's `characterFilter`
    # per (case, whole words): the keys that are single ASCII words, and whether others exist
    plans: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        """SillyTavern's key for timed effects: `world.uid`."""
        return f"{self.world}.{self.uid}"

    @cached_property
    def groups(self) -> list[str]:
        """The inclusion groups: SillyTavern splits `group` on a comma and the spaces after
        it (`split(/,\\s*/)`), so "a, b" is in "a" and "b" (and "a ,b" in "a " and "b")."""
        return [g for g in _GROUP_SPLIT.split(self.group) if g]


def entry_from_book(raw: dict[str, Any], index: int, world: str) -> WIEntry:
    """A V3 book entry as SillyTavern's `convertCharacterBook` reads it."""
    ext = as_dict(raw.get("extensions"))
    decorators, content = parse_decorators(_text(raw.get("content")))
    keys = tuple(_strings(raw.get("keys")))
    uid = raw.get("id", index)
    depth = decorators.get("scan_depth", ext.get("scan_depth"))
    return WIEntry(
        uid=uid if uid is not None else index,
        world=world,
        label=_text(raw.get("name") or raw.get("comment"))
        or (keys[0] if keys else "")
        or f"entry {index + 1}",
        keys=keys,
        content=content,
        secondary=tuple(_strings(raw.get("secondary_keys"))),
        decorators=decorators,
        disabled=raw.get("enabled", True) is False,
        constant=raw.get("constant") is True,
        selective=raw.get("selective") is True,
        logic=_logic(ext.get("selectiveLogic", raw.get("selective_logic"))),
        order=_number(raw.get("insertion_order"), 100),
        position=_position(ext.get("position"), raw.get("position")),
        depth=int(_number(ext.get("depth"), DEFAULT_DEPTH)),
        role=_role(ext.get("role")),
        probability=_number(ext.get("probability"), 100),
        use_probability=ext.get("useProbability", True) is not False,
        group=ext["group"] if isinstance(ext.get("group"), str) else "",  # as written
        group_override=ext.get("group_override") is True,
        group_weight=_number(ext.get("group_weight"), DEFAULT_WEIGHT),
        use_group_scoring=_optional_bool(ext.get("use_group_scoring")),
        scan_depth=_scan_depth(depth),
        case_sensitive=_optional_bool(ext.get("case_sensitive", raw.get("case_sensitive"))),
        whole_words=_optional_bool(ext.get("match_whole_words")),
        exclude_recursion=ext.get("exclude_recursion") is True,
        prevent_recursion=ext.get("prevent_recursion") is True,
        delay_until_recursion=_recursion_level(ext.get("delay_until_recursion")),
        sticky=_count(ext.get("sticky")),
        cooldown=_count(ext.get("cooldown")),
        delay=_count(ext.get("delay")),
        additional=tuple(_strings(decorators.get("additional_keys"))),
        exclude=tuple(_strings(decorators.get("exclude_keys"))),
        # only timed entries need one (it finds them again in the stored effects)
        hash=_hash(raw) if ext.get("sticky") or ext.get("cooldown") else "",
        character_filter=CharacterFilter.from_extensions(ext),
    )


def book_entries(book: Any, world: str) -> list[WIEntry]:
    """The entries of one book in SillyTavern's own order before sorting: by uid the way
    JavaScript iterates an object keyed by uid (integer-like uids ascending, then the rest)."""
    return list(read_book(book, world))


def read_book(book: Any, world: str) -> tuple[WIEntry, ...]:
    """`book_entries`, as the same tuple for as long as the book is unchanged.

    Reading 2,000 entries costs more than scanning them, so the result is kept for the same
    book (the same dict holding the same entry dicts), and the scan keeps its own tables for
    the same tuples. Books are values: the editor and the store hand out new dicts, and an
    entry edited in place would not be seen."""
    if not isinstance(book, dict) or not isinstance(book.get("entries"), list):
        return ()
    raws = book["entries"]
    with _CACHE_LOCK:
        cached = _CACHE.get((id(book), world))
    if (
        cached is not None
        and cached[0] is book
        and len(cached[1]) == len(raws)
        and all(map(operator.is_, cached[1], raws))
    ):
        return cached[2]
    entries = [
        entry_from_book(raw, i, world) for i, raw in enumerate(raws) if isinstance(raw, dict)
    ]
    ranked = tuple(
        e for _, e in sorted(enumerate(entries), key=lambda pair: _js_rank(pair[1].uid, pair[0]))
    )
    with _CACHE_LOCK:  # the GUI and the generation worker both build prompts
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[(id(book), world)] = (book, list(raws), ranked)  # holds `book`: its id stays
    return ranked


_CACHE: dict[tuple[int, str], tuple[dict[str, Any], list[Any], tuple[WIEntry, ...]]] = {}
_CACHE_SIZE = 16
_CACHE_LOCK = threading.Lock()


def _js_rank(uid: Any, index: int) -> tuple[int, int, int]:
    text = str(uid)
    if text.isascii() and text.isdigit() and (text == "0" or not text.startswith("0")):
        return (0, int(text), index)
    return (1, 0, index)


def parse_decorators(content: str) -> tuple[dict[str, str], str]:
    """Split leading `@@name value` lines off `content`; `@@@` lines are fallbacks, read only
    when the decorator before them was not understood (SillyTavern's `parseDecorators`)."""
    if not content.lstrip("\r\n").startswith("@@"):
        return {}, content.strip()
    lines = content.lstrip("\r\n").split("\n")
    found: dict[str, str] = {}
    satisfied = True  # whether the current decorator chain already took effect
    i = 0
    while i < len(lines) and lines[i].startswith("@@"):
        line = lines[i].strip()
        i += 1
        fallback = line.startswith("@@@")
        name, _, value = line.lstrip("@").partition(" ")
        known = name in KNOWN_DECORATORS
        if fallback and satisfied:
            continue
        satisfied = known
        if known and name not in found:
            found[name] = value.strip()
    return found, "\n".join(lines[i:]).strip()


def _position(ext_position: Any, position: Any) -> Position:
    """`extensions.position` wins; else the V3 `position` text (SillyTavern's rule)."""
    if isinstance(ext_position, (int, float, str)) and not isinstance(ext_position, bool):
        try:
            return Position(int(ext_position))
        except (ValueError, OverflowError):
            pass
    return Position.BEFORE if position == "before_char" else Position.AFTER


def _role(value: Any) -> Role:
    if isinstance(value, str):
        names = {"system": Role.SYSTEM, "user": Role.USER, "assistant": Role.ASSISTANT}
        return names.get(value.lower(), Role.SYSTEM)
    try:
        return Role(int(value))
    except (TypeError, ValueError, OverflowError):
        return Role.SYSTEM


def _logic(value: Any) -> Logic:
    if isinstance(value, str):
        return _LOGIC_NAMES.get(value.lower(), Logic.AND_ANY)
    try:
        return Logic(int(value))
    except (TypeError, ValueError, OverflowError):
        return Logic.AND_ANY


def _scan_depth(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    number = _number(value, -1)
    return int(number) if number >= 0 else None


def _recursion_level(value: Any) -> int:
    if value is True:
        return 1
    if value is False or value is None:
        return 0
    return max(0, int(_number(value, 0)))


def _count(value: Any) -> int:
    return max(0, int(_number(value, 0))) if not isinstance(value, bool) else 0


def _optional_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _hash(raw: dict[str, Any]) -> str:
    text = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    return [
        str(v).strip()
        for v in value
        if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v).strip()
    ]


_LIMIT = 2**31 - 1  # depths, orders and counts beyond this mean nothing more


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    if not math.isfinite(number):  # "@@scan_depth inf" or nan: int() of it would raise
        return default
    return max(-_LIMIT, min(_LIMIT, number))
