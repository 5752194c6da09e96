"""The Card: any V1, V2 or V3 character card, held as V3, written back as V3 or V2.

Reading keeps everything: unknown top-level keys (`Card.extra`), unknown `data` keys, every
`extensions` object as it was, every lorebook field. Spec fields are brought to spec types
(see `coerce`), each repair noted in `Card.warnings`. Exporting a card read from a valid file
gives that file back, except for the spec label (and the fields V3 requires, on upgrade).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from app.core.cards.coerce import Fixer, is_number, kind, parse_number
from app.core.cards.errors import CardError, guarded
from app.core.cards.lorebook import BOOK_SPEC, normalize_book

SPEC_V1 = "chara_card_v1"
SPEC_V2 = "chara_card_v2"
SPEC_V3 = "chara_card_v3"
V3_VERSION = "3.0"

TEXT_FIELDS = (
    "name",
    "description",
    "personality",
    "scenario",
    "first_mes",
    "mes_example",
    "creator_notes",
    "system_prompt",
    "post_history_instructions",
    "creator",
    "character_version",
)
# List fields, and whether a lone string is split at commas (tags) or kept whole (greetings).
LIST_FIELDS = {"alternate_greetings": False, "tags": True, "group_only_greetings": False}
V3_OPTIONAL = (
    "nickname",
    "creator_notes_multilingual",
    "source",
    "assets",
    "creation_date",
    "modification_date",
)
CARD_FIELDS = (*TEXT_FIELDS, *LIST_FIELDS, "character_book", "extensions", *V3_OPTIONAL)
# Fields V3 adds with a default; a V2 export drops them again when they still hold it.
V3_ONLY_DEFAULTS: dict[str, Any] = {"group_only_greetings": [], "use_regex": False}

# Keys at the top of V1 and hybrid files that copy a `data` field (SillyTavern writes these).
ROOT_MIRRORS: dict[str, tuple[str, ...]] = {name: (name,) for name in CARD_FIELDS}
ROOT_MIRRORS.update(
    {
        "creatorcomment": ("creator_notes",),
        # Pygmalion-era flat files
        "char_name": ("name",),
        "char_persona": ("description",),
        "world_scenario": ("scenario",),
        "char_greeting": ("first_mes",),
        "example_dialogue": ("mes_example",),
        "talkativeness": ("extensions", "talkativeness"),
        "fav": ("extensions", "fav"),
    }
)
_MISSING = object()
_MS_THRESHOLD = 1e11  # a "seconds" value this large is year 5138: it must be milliseconds


def _text_property(key: str, doc: str) -> property:
    def get(self: Card) -> str:
        value = self.data.get(key, "")
        return value if isinstance(value, str) else ""

    def put(self: Card, value: str) -> None:
        self.data[key] = value

    return property(get, put, doc=doc)


def _list_property(key: str, doc: str) -> property:
    def get(self: Card) -> list[str]:
        value = self.data.get(key)
        return list(value) if isinstance(value, list) else []

    def put(self: Card, value: list[str]) -> None:
        self.data[key] = list(value)

    return property(get, put, doc=doc)


@dataclass(eq=False)
class Card:
    """A character card. `data` is the V3 `data` object; the properties read and write it.

    - `extra`: the file's top-level keys other than spec/spec_version/data, as written. For V1
      and hybrid files these include flat copies of fields (`name`, `first_mes`, ...); exports
      write them back as they were, or as `data` now says if the field was edited.
    - `warnings`: what was repaired or guessed while reading (types that drifted, fallbacks).
    - `avatar`: the image: a PNG card's PNG (without its card chunks), a CharX main icon
      (PNG, JPEG, WebP or GIF), None for JSON cards.
    - `spec`, `spec_version`: what the file declared (`chara_card_v1` for flat files).
    - `source`: the file name it was read from.
    - `embedded`, `avatar_path`: a CharX's other files by archive path, and where its icon was.
    """

    data: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    avatar: bytes | None = field(default=None, repr=False)
    spec: str = SPEC_V3
    spec_version: str | None = V3_VERSION
    source: str = ""
    embedded: dict[str, bytes] = field(default_factory=dict, repr=False)
    avatar_path: str | None = None
    _mirror_base: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _upgrade_added: list[tuple[Any, ...]] = field(default_factory=list, init=False, repr=False)
    _root_order: list[str] = field(default_factory=list, init=False, repr=False)

    name = _text_property("name", "The character's name.")
    description = _text_property("description", "Who the character is (permanent prompt).")
    personality = _text_property("personality", "A short personality summary.")
    scenario = _text_property("scenario", "The circumstances of the chat.")
    first_mes = _text_property("first_mes", "The greeting that opens a new chat.")
    mes_example = _text_property("mes_example", "Example dialogue, `<START>`-separated.")
    system_prompt = _text_property("system_prompt", "Replaces the app's system prompt.")
    post_history_instructions = _text_property(
        "post_history_instructions", "Sent after the chat history."
    )
    creator_notes = _text_property("creator_notes", "Notes for the user, never for the model.")
    creator = _text_property("creator", "Who made the card.")
    character_version = _text_property("character_version", "The card's own version.")
    alternate_greetings = _list_property("alternate_greetings", "Swipeable first messages.")
    group_only_greetings = _list_property("group_only_greetings", "Greetings for group chats.")
    tags = _list_property("tags", "Tags for the library.")

    @property
    def nickname(self) -> str | None:
        value = self.data.get("nickname")
        return value if isinstance(value, str) else None

    @nickname.setter
    def nickname(self, value: str | None) -> None:
        if value is None:
            self.data.pop("nickname", None)
        else:
            self.data["nickname"] = value

    @property
    def prompt_name(self) -> str:
        """What `{{char}}` becomes in a prompt: the nickname if set, else the name."""
        return self.nickname or self.name

    @property
    def character_book(self) -> dict[str, Any] | None:
        book = self.data.get("character_book")
        return book if isinstance(book, dict) else None

    @character_book.setter
    def character_book(self, book: dict[str, Any] | None) -> None:
        if book is None:
            self.data.pop("character_book", None)
        else:
            self.data["character_book"] = book

    @property
    def extensions(self) -> dict[str, Any]:
        found: dict[str, Any] = self.data.setdefault("extensions", {})
        return found

    @property
    def talkativeness(self) -> float:
        """SillyTavern's group-chat talkativeness (0..1), however the file wrote it."""
        value = self.extensions.get("talkativeness", 0.5)
        if isinstance(value, str):
            value = parse_number(value)
        return float(value) if is_number(value) else 0.5

    def copy(self) -> Card:
        return copy.deepcopy(self)


def new_card(name: str = "") -> Card:
    """An empty V3 card, as the editor's "New character" makes it."""
    data: dict[str, Any] = {key: "" for key in TEXT_FIELDS}
    data.update(name=name, alternate_greetings=[], tags=[], group_only_greetings=[], extensions={})
    return Card(data=data)


# --- reading ---------------------------------------------------------------------------------


def card_from_json(obj: Any, source: str = "") -> Card:
    """A Card from a parsed card JSON object (V1, V2, V3 or hybrid). Raises CardError."""
    return guarded(source, lambda: _card_from_json(obj, source))


def _card_from_json(obj: Any, source: str) -> Card:
    if not isinstance(obj, dict):
        raise CardError(source, f"a character card must be a JSON object, not {kind(obj)}")
    _reject_lorebook(obj, source)
    fix = Fixer(source)
    spec, raw = _split_root(obj, fix)
    data = copy.deepcopy(raw)
    extra = {
        k: copy.deepcopy(v) for k, v in obj.items() if k not in ("spec", "spec_version", "data")
    }
    if spec != SPEC_V1:
        _fill_from_root(data, extra, fix)
    added: list[tuple[Any, ...]] = []
    normalize_data(data, fix, added)
    card = Card(
        data=data,
        extra=extra,
        warnings=fix.warnings,
        spec=spec,
        spec_version=_read_version(obj, spec, fix),
        source=source,
    )
    card._upgrade_added = added
    card._root_order = list(obj)
    for key in extra:
        if key in ROOT_MIRRORS:
            value = _get_path(data, ROOT_MIRRORS[key])
            card._mirror_base[key] = value if value is _MISSING else copy.deepcopy(value)
    return card


_CARD_MARKERS = (
    "first_mes",
    "personality",
    "scenario",
    "mes_example",
    "alternate_greetings",
    "char_persona",
    "char_greeting",
)


def _reject_lorebook(obj: dict[str, Any], source: str) -> None:
    """Lorebook files (V3 or world info) say so, rather than importing as an odd card."""
    data = obj.get("data")
    if obj.get("spec") == BOOK_SPEC:
        looks_like_book = True
    elif isinstance(data, dict):
        looks_like_book = (
            obj.get("spec") not in (SPEC_V2, SPEC_V3)
            and "entries" in data
            and not any(k in data for k in _CARD_MARKERS)
        )
    else:
        looks_like_book = "entries" in obj and not any(k in obj for k in _CARD_MARKERS)
    if looks_like_book:
        raise CardError(source, "this is a lorebook, not a character card; import it as a lorebook")


def _split_root(obj: dict[str, Any], fix: Fixer) -> tuple[str, dict[str, Any]]:
    """The spec the file follows and its raw data object."""
    spec = obj.get("spec")
    if "data" in obj:
        if not isinstance(obj["data"], dict):
            fix.fail("data", f"must be an object, not {kind(obj['data'])}")
        if spec in (SPEC_V2, SPEC_V3):
            return spec, obj["data"]
        if spec is None:
            fix.warn("the card has no 'spec'; read as chara_card_v2")
            return SPEC_V2, obj["data"]
        fix.warn(f"unknown spec {spec!r}; read as chara_card_v3, keeping every field")
        return SPEC_V3, obj["data"]
    return SPEC_V1, _lift_v1(obj, fix)


def _lift_v1(obj: dict[str, Any], fix: Fixer) -> dict[str, Any]:
    """A V1 (flat) card's fields gathered into a data object, flat V2 keys included."""
    data: dict[str, Any] = {}
    for key, path in ROOT_MIRRORS.items():
        if key in obj and len(path) == 1 and path[0] not in data:
            data[path[0]] = obj[key]
    nested = {k: obj[k] for k, path in ROOT_MIRRORS.items() if len(path) == 2 and k in obj}
    if not data and not nested:
        fix.fail(
            "name",
            "is missing: this JSON has no character card fields "
            "(name, description, first_mes, ...)",
        )
    if nested:
        extensions = data.get("extensions")
        extensions = dict(extensions) if isinstance(extensions, dict) else {}
        for key, value in nested.items():
            extensions.setdefault(ROOT_MIRRORS[key][1], value)
        if "extensions" not in data or isinstance(data["extensions"], dict):
            data["extensions"] = extensions
    return data


def _fill_from_root(data: dict[str, Any], extra: dict[str, Any], fix: Fixer) -> None:
    """Hybrid files: `data` wins, but a field missing from it is taken from the top level."""
    for key, value in extra.items():
        path = ROOT_MIRRORS.get(key)
        if path and len(path) == 1 and path[0] not in data:
            data[path[0]] = copy.deepcopy(value)
            fix.warn(f"'{path[0]}' was missing from 'data'; taken from the top level")


def _read_version(obj: dict[str, Any], spec: str, fix: Fixer) -> str | None:
    if spec == SPEC_V1:
        return None
    raw = obj.get("spec_version")
    expected = V3_VERSION if spec == SPEC_V3 else "2.0"
    if raw is None:
        fix.warn(f"spec_version is missing; read as {expected}")
        return None
    if not (isinstance(raw, str) or is_number(raw)):
        fix.warn(f"spec_version is {kind(raw)}, not text; read as {expected}")
        return None
    text = str(raw)
    number = parse_number(text)
    if number is None:
        fix.warn(f"spec_version {text!r} is not a version number; read as {expected}")
    elif number > float(expected) and spec == SPEC_V3:
        fix.warn(
            f"the card is spec_version {text}, newer than {expected}: fields Parlor "
            "does not know are kept but not used"
        )
    return text


def normalize_data(
    data: dict[str, Any], fix: Fixer, added: list[tuple[Any, ...]] | None = None
) -> dict[str, Any]:
    """Bring a `data` object to V3 types, in place; missing required fields get defaults."""
    for key in TEXT_FIELDS:
        data[key] = fix.text(data.get(key, ""), key)
    if not data["name"].strip():
        fix.warn("the card has no name")
    for key, split in LIST_FIELDS.items():
        if key not in data:
            data[key] = []
            if key in V3_ONLY_DEFAULTS and added is not None:
                added.append((key,))
        data[key] = fix.text_list(data[key], key, split_commas=split)
    if data.get("extensions") is None:
        data["extensions"] = {}
    fix.mapping(data["extensions"], "extensions")
    if data.get("character_book") is not None:
        data["character_book"] = normalize_book(
            data["character_book"], fix, "character_book", added, ("character_book",)
        )
    _normalize_v3_fields(data, fix)
    return data


def _normalize_v3_fields(data: dict[str, Any], fix: Fixer) -> None:
    if data.get("nickname") is not None:
        data["nickname"] = fix.text(data["nickname"], "nickname")
    if data.get("source") is not None:
        data["source"] = fix.text_list(data["source"], "source", split_commas=False)
    notes = data.get("creator_notes_multilingual")
    if notes is not None:
        for lang, text in fix.mapping(notes, "creator_notes_multilingual").items():
            notes[lang] = fix.text(text, f"creator_notes_multilingual.{lang}")
    if data.get("assets") is not None:
        assets = data["assets"]
        if not isinstance(assets, list):
            fix.fail("assets", f"must be a list of objects, not {kind(assets)}")
        for i, asset in enumerate(assets):
            fix.mapping(asset, f"assets[{i}]")
    for key in ("creation_date", "modification_date"):
        if data.get(key) is not None:
            data[key] = _timestamp(data[key], key, fix)


def _timestamp(value: Any, where: str, fix: Fixer) -> Any:
    """Unix seconds, from seconds, milliseconds, digits or a date string."""
    if isinstance(value, str):
        number = parse_number(value)
        if number is None:
            stamp = parse_date(value)
            if stamp is None:
                fix.warn(f"'{where}' {value!r} is not a date Parlor can read; kept as written")
                return value
            fix.warn(f"'{where}' was the date {value!r}; read as Unix seconds")
            return stamp
        fix.warn(f"'{where}' was the text {value!r}; read as a number")
        value = number
    if not is_number(value):
        fix.fail(where, f"must be a Unix time in seconds, not {kind(value)}")
    if abs(value) < _MS_THRESHOLD:
        return value
    if abs(value) >= _MS_THRESHOLD * 1000:  # too late even in milliseconds: read it as is,
        fix.warn(f"'{where}' is not a time Parlor can read; kept as written")  # every time
        return value
    if isinstance(value, int) and value % 1000 == 0:
        seconds: int | float = value // 1000
    else:
        try:
            seconds = value / 1000
        except OverflowError:
            fix.warn(f"'{where}' is not a time Parlor can read; kept as written")
            return value
    fix.warn(f"'{where}' was in milliseconds; read as seconds")
    return int(seconds) if isinstance(seconds, float) and seconds.is_integer() else seconds


_ST_DATE = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*@(\d{1,2})h\s*(\d{1,2})m\s*(\d{1,2})s"
    r"(?:\s*(\d{1,3})ms)?\s*"
)
_DATE_FORMATS = (
    "%B %d, %Y %I:%M%p",
    "%B %d, %Y %I:%M %p",
    "%b %d, %Y %I:%M%p",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%d.%m.%Y",
)


def parse_date(text: str) -> int | None:
    """Unix seconds (UTC when the text has no zone) from the date strings cards carry."""
    text = text.strip()
    match = _ST_DATE.fullmatch(text)
    try:
        if match:
            y, mo, d, h, mi, s = (int(g) for g in match.groups()[:6])
            moment: datetime | None = datetime(y, mo, d, h, mi, s)
        else:
            moment = _parse_formats(text)
    except (ValueError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return int(moment.timestamp())
    except (ValueError, OverflowError, OSError):
        return None


def _parse_formats(text: str) -> datetime | None:
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text.upper() if "%p" in fmt else text, fmt)
        except ValueError:
            continue
    return None


# --- writing ---------------------------------------------------------------------------------


def to_v3_json(card: Card) -> dict[str, Any]:
    """The card as a V3 JSON object (`spec`, `spec_version`, `data`, and any extra keys)."""
    version = V3_VERSION
    if card.spec == SPEC_V3 and card.spec_version:
        number = parse_number(card.spec_version)
        if number is not None and number > float(V3_VERSION):
            version = card.spec_version
    return _root(card, SPEC_V3, version, copy.deepcopy(card.data))


def to_v2_json(card: Card) -> dict[str, Any]:
    """The card as a V2 JSON object; fields V3 added with their default are left out."""
    data = copy.deepcopy(card.data)
    for path in card._upgrade_added:
        _drop_default(data, path)
    return _root(card, SPEC_V2, "2.0", data)


def _drop_default(data: dict[str, Any], path: tuple[Any, ...]) -> None:
    parent: Any = data
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return
    key = path[-1]
    if isinstance(parent, dict) and key in parent and parent[key] == V3_ONLY_DEFAULTS.get(key):
        del parent[key]


def _root(card: Card, spec: str, version: str, data: dict[str, Any]) -> dict[str, Any]:
    special = {"spec": spec, "spec_version": version, "data": data}
    order = [k for k in card._root_order if k in special or k in card.extra]
    order += [k for k in card.extra if k not in order]
    order += [k for k in special if k not in order]
    out: dict[str, Any] = {}
    for key in order:
        if key in special:
            out[key] = special[key]
            continue
        value = _root_value(card, key)
        if value is not _MISSING:
            out[key] = value
    return out


def _root_value(card: Card, key: str) -> Any:
    """An extra top-level key; a mirror of a data field follows the field if it was edited."""
    if key in card._mirror_base:
        current = _get_path(card.data, ROOT_MIRRORS[key])
        if current is not card._mirror_base[key] and current != card._mirror_base[key]:
            return current if current is _MISSING else copy.deepcopy(current)
    return copy.deepcopy(card.extra[key])


def _get_path(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for step in path:
        if not isinstance(value, dict) or step not in value:
            return _MISSING
        value = value[step]
    return value
