"""Lore: which entries of the card's character book fire, and the text they add.

An entry fires when one of its keys appears in the last N messages (N from the settings, or
the entry's own scan depth; the user's setting wins over the book's), or always when it is
constant. `selective` entries also test their
secondary keys with SillyTavern's logic (AND ANY, NOT ALL, NOT ANY, AND ALL). Disabled entries
never fire. Fired entries are admitted by priority within a token budget and then written in
insertion order, lower first. V3 `@@decorators` at the start of an entry's content are read
(`@@activate`, `@@dont_activate`, `@@scan_depth`, `@@additional_keys`, `@@exclude_keys`, with
`@@@` fallbacks) and never reach the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

AND_ANY, NOT_ALL, NOT_ANY, AND_ALL = range(4)
_LOGIC_NAMES = {"and_any": AND_ANY, "not_all": NOT_ALL, "not_any": NOT_ANY, "and_all": AND_ALL}
KNOWN_DECORATORS = frozenset({"activate", "dont_activate", "scan_depth", "additional_keys",
                              "exclude_keys"})
MAX_RECURSION = 5


@dataclass
class LoreEntry:
    index: int
    label: str
    keys: list[str]
    content: str
    enabled: bool = True
    constant: bool = False
    force: bool = False  # @@activate
    selective: bool = False
    secondary: list[str] = field(default_factory=list)
    logic: int = AND_ANY
    additional: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    case_sensitive: bool = False
    whole_words: bool = False
    order: float = 0
    priority: float = 0
    scan_depth: int | None = None
    regex: bool = False
    recursion_ok: bool = True  # other entries' content may fire it
    triggers_others: bool = True  # its content may fire other entries

    @classmethod
    def from_dict(cls, raw: dict[str, Any], index: int) -> LoreEntry:
        ext = raw.get("extensions") if isinstance(raw.get("extensions"), dict) else {}
        decorators, content = parse_decorators(str(raw.get("content") or ""))
        keys = _strings(raw.get("keys"))
        order = _number(raw.get("insertion_order"), 0)
        case = raw.get("case_sensitive")
        depth = decorators.get("scan_depth", ext.get("scan_depth"))
        return cls(
            index=index,
            label=str(raw.get("name") or raw.get("comment") or (keys[0] if keys else "")
                      or f"entry {index + 1}"),
            keys=keys,
            content=content,
            enabled=raw.get("enabled", True) is not False
            and ("dont_activate" not in decorators or "activate" in decorators),
            constant=bool(raw.get("constant")),
            force="activate" in decorators,
            selective=bool(raw.get("selective")),
            secondary=_strings(raw.get("secondary_keys")),
            logic=_logic(raw.get("selective_logic", ext.get("selectiveLogic"))),
            additional=_strings(decorators.get("additional_keys")),
            exclude=_strings(decorators.get("exclude_keys")),
            case_sensitive=bool(case if case is not None else ext.get("case_sensitive")),
            whole_words=bool(ext.get("match_whole_words")),
            order=order,
            priority=_number(raw.get("priority"), order),
            scan_depth=int(_number(depth, -1)) if depth is not None else None,
            regex=bool(raw.get("use_regex")),
            recursion_ok=not ext.get("exclude_recursion"),
            triggers_others=not ext.get("prevent_recursion"),
        )


@dataclass
class LoreResult:
    text: str = ""
    fired: list[str] = field(default_factory=list)  # labels, in prompt order
    tokens: int = 0
    warnings: list[str] = field(default_factory=list)


def parse_decorators(content: str) -> tuple[dict[str, str], str]:
    """Split leading `@@name value` lines off `content`; `@@@` lines are fallbacks."""
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


def activate_lore(book: dict[str, Any] | None, history: Sequence[str], *, scan_depth: int,
                  budget_tokens: int, count_tokens: Callable[[str], int],
                  expand: Callable[[str], str] = lambda s: s) -> LoreResult:
    """The entries of `book` that fire on `history` (message texts, oldest first)."""
    if not isinstance(book, dict) or not isinstance(book.get("entries"), list):
        return LoreResult()
    entries = [LoreEntry.from_dict(raw, i) for i, raw in enumerate(book["entries"])
               if isinstance(raw, dict)]
    result = LoreResult(warnings=[f"Lore entry {e.label!r} uses regular-expression keys, "
                                  "which Parlor does not evaluate; it never fires."
                                  for e in entries if e.regex and e.enabled])
    scans: dict[int, _Haystack] = {}

    def scan(entry: LoreEntry) -> _Haystack:
        depth = entry.scan_depth if entry.scan_depth is not None else scan_depth
        if depth not in scans:
            scans[depth] = _Haystack("\n".join(history[-depth:]) if depth > 0 else "", expand)
        return scans[depth]

    active = [e for e in entries if _fires(e, scan(e), initial=True)]
    if book.get("recursive_scanning"):
        _recurse(entries, active, expand)
    _admit(active, _book_budget(book, budget_tokens), count_tokens, expand, result)
    return result


def _fires(e: LoreEntry, hay: _Haystack, *, initial: bool) -> bool:
    if not e.enabled or e.regex:
        return False
    if e.force or (e.constant and initial):
        return True
    if not any(hay.has(k, e) for k in e.keys):
        return False
    if e.selective and e.secondary:
        hits = [hay.has(k, e) for k in e.secondary]
        ok = {AND_ANY: any(hits), NOT_ALL: not all(hits), NOT_ANY: not any(hits),
              AND_ALL: all(hits)}[e.logic]
        if not ok:
            return False
    if e.additional and not any(hay.has(k, e) for k in e.additional):
        return False
    return not any(hay.has(k, e) for k in e.exclude)


def _recurse(entries: list[LoreEntry], active: list[LoreEntry], expand) -> None:
    for _ in range(MAX_RECURSION):
        hay = _Haystack("\n".join(e.content for e in active if e.triggers_others), expand)
        new = [e for e in entries
               if e not in active and e.recursion_ok and _fires(e, hay, initial=False)]
        if not new:
            return
        active.extend(new)


def _admit(active: list[LoreEntry], budget: int, count_tokens, expand,
           result: LoreResult) -> None:
    chosen: list[tuple[LoreEntry, str]] = []
    left_out = []
    for e in sorted(active, key=lambda e: (not (e.constant or e.force), -e.priority, -e.order,
                                            e.index)):
        content = expand(e.content).strip()
        if not content:
            continue
        cost = count_tokens(content)
        if result.tokens + cost > budget:
            left_out.append(e.label)
            continue
        chosen.append((e, content))
        result.tokens += cost
    chosen.sort(key=lambda pair: (pair[0].order, pair[0].index))
    result.text = "\n".join(content for _, content in chosen)
    result.fired = [e.label for e, _ in chosen]
    if left_out:
        result.warnings.append(f"Lore left out for its token budget ({budget}): "
                               + ", ".join(left_out))


class _Haystack:
    def __init__(self, text: str, expand: Callable[[str], str]) -> None:
        self.text, self.lower, self.expand = text, text.lower(), expand

    def has(self, key: str, entry: LoreEntry) -> bool:
        key = self.expand(key).strip()
        if not key:
            return False
        text = self.text if entry.case_sensitive else self.lower
        key = key if entry.case_sensitive else key.lower()
        if entry.whole_words and not any(c.isspace() for c in key):
            return re.search(rf"(?:^|\W){re.escape(key)}(?:$|\W)", text) is not None
        return key in text


def _book_budget(book: dict[str, Any], budget: int) -> int:
    own = _number(book.get("token_budget"), 0)
    return min(budget, int(own)) if own > 0 else budget


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    return [str(v).strip() for v in value if isinstance(v, (str, int, float)) and str(v).strip()]


def _number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _logic(value: Any) -> int:
    if isinstance(value, str):
        return _LOGIC_NAMES.get(value.lower(), AND_ANY)
    return int(value) if isinstance(value, int) and value in range(4) else AND_ANY
