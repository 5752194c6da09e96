"""A sorted list of entries compiled once for scanning: which entries each key can wake.

A pass of the scan must find, among thousands of entries, the few whose keys are in the text.
Looking at every entry costs Python time per entry; instead every key of the book is compiled
once (per book revision and matching rules) into a few tables, and each part of the scanned
text (the chat window, each piece of lore added by recursion) is run against the tables once:

- single-word keys: one set intersection between the part's words and the keys' words;
- other plain keys (several words, other scripts, no whole words): one substring test each on
  the part's lower-cased text, however many entries share the key;
- `/regex/` keys: the text every match must contain (`RegexKey.required`), one substring test.

The union over the parts is a superset of the entries that can match (a plain key cannot span
two parts: the joiner holds `\\x01`, which no such key holds), and only those get the exact,
per-entry look in `scan.py`. For plain keys the tables are exact, not a superset: an entry
with plain keys only that they wake is matched (`Plan.exact`). Each part's answer is the union
of its pieces' (messages, fired entries' texts), kept by text from turn to turn. Entries whose
keys hold a macro, a regex without a required text, a key with `\\x01`, or that are constant
or decorated, are looked at in every pass.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from app.core.prompt.worldinfo.entry import WIEntry
from app.core.prompt.worldinfo.keys import (
    BY_BOUNDS,
    BY_REGEX,
    BY_SUBSTRING,
    BY_WORD,
    Haystack,
    RegexKey,
    matcher,
)
from app.core.prompt.worldinfo.settings import WorldInfoSettings


@dataclass
class KeyIndex:
    """The keys of the entries that share one scan depth, by how a part is tested for them."""

    words: dict[bool, dict[str, list[WIEntry]]] = field(default_factory=dict)  # by case
    substrings: dict[bool, dict[str, list[WIEntry]]] = field(default_factory=dict)
    bounded: dict[tuple[bool, str], tuple[re.Pattern[str], list[WIEntry]]] = field(
        default_factory=dict
    )
    literals: dict[bool, dict[str, list[WIEntry]]] = field(default_factory=dict)  # by folded
    line_breaks: bool = False  # whether a substring key holds a line break
    _seen: dict[str, frozenset[WIEntry]] = field(default_factory=dict, repr=False)
    _seen_chars: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, entry: WIEntry, mode: int, needle: str, case: bool, compiled: object) -> None:
        if mode == BY_WORD:
            self.words.setdefault(case, {}).setdefault(needle, []).append(entry)
        elif mode == BY_SUBSTRING:
            self.line_breaks = self.line_breaks or "\n" in needle
            self.substrings.setdefault(case, {}).setdefault(needle, []).append(entry)
        elif mode == BY_BOUNDS:
            pattern = cast("re.Pattern[str]", compiled)
            self.bounded.setdefault((case, needle), (pattern, []))[1].append(entry)
        else:  # a /regex/ key with a required text
            key = cast(RegexKey, compiled)
            required, folded = key.required, key.folded
            self.literals.setdefault(folded, {}).setdefault(required, []).append(entry)

    def woken(self, part: Haystack) -> frozenset[WIEntry]:
        """The entries one of whose keys may be in `part`, worked out once per part.

        A part is the union of its pieces' answers (the chat's messages, the texts of the
        entries a recursion pass adds), and each piece's answer is kept by its text from turn
        to turn: a new turn pays for its new message only. A part joined by bare line breaks
        is looked at whole when a key holds a line break, as it may span two pieces."""
        memo = part.memo.get(id(self))
        if memo is not None:
            return cast("frozenset[WIEntry]", memo)
        # a key with a line break may span two pieces joined by a bare line break
        pieces = part.lines
        if pieces is None or ("\x01" not in part.joiner and self.line_breaks):
            pieces = [part.text]
        found: frozenset[WIEntry] = frozenset().union(*map(self._text, pieces))
        part.memo[id(self)] = found
        return found

    def _text(self, text: str) -> frozenset[WIEntry]:
        found = self._seen.get(text)
        if found is None:
            found = self._scan(Haystack(text))
            if len(text) > _SEEN_LONGEST:
                return found  # a rare huge text is not worth what it holds
            with self._lock:  # oldest out first, within a number of texts and of characters
                while self._seen and (
                    len(self._seen) >= _SEEN_SIZE or self._seen_chars + len(text) > _SEEN_CHARS
                ):
                    self._seen_chars -= len(next(iter(self._seen)))
                    del self._seen[next(iter(self._seen))]
                if text not in self._seen:
                    self._seen[text] = found
                    self._seen_chars += len(text)
        return found

    def _scan(self, part: Haystack) -> frozenset[WIEntry]:
        out: set[WIEntry] = set()
        for case, table in self.words.items():
            for word in part.words(case) & table.keys():
                out.update(table[word])
        for case, table in self.substrings.items():
            text = part.text if case else part.lower()
            for needle, entries in table.items():
                if needle in text:
                    out.update(entries)
        for (case, needle), (pattern, entries) in self.bounded.items():
            text = part.text if case else part.lower()
            if needle in text and pattern.search(text) is not None:
                out.update(entries)
        for folded, table in self.literals.items():
            text = part.folded() if folded else part.text
            for literal, entries in table.items():
                if literal in text:
                    out.update(entries)
        return frozenset(out)


_SEEN_SIZE = 4096  # texts (messages, recursion parts) whose answers are kept, per index
_SEEN_CHARS = 4_000_000  # and their characters at most
_SEEN_LONGEST = 65_536


@dataclass
class Plan:
    """What the scan needs of a sorted entry list that does not change from turn to turn."""

    entries: list[WIEntry]  # held, so the ids in the cache key stay theirs
    index: dict[WIEntry, int]  # book order
    always: list[WIEntry]  # looked at in every pass
    always_set: frozenset[WIEntry]
    # entries only their keys decide: no flag that blocks or forces them, no decorator
    keyed_only: frozenset[WIEntry]
    # keyed_only entries whose keys are all plain: woken means a key is in the text
    exact: frozenset[WIEntry]
    by_depth: dict[int | None, KeyIndex]  # entries' own scan depth (None: the global one)
    levels: list[int]  # delay-until-recursion levels, ascending
    by_hash: dict[str, WIEntry]  # timed entries, for their stored effects
    delayed: list[WIEntry]  # entries with a delay


def build_plan(entries: list[WIEntry], settings: WorldInfoSettings) -> Plan:
    """The plan for `entries` under `settings`' case and whole-word rules, cached."""
    key = (tuple(map(id, entries)), settings.case_sensitive, settings.whole_words)
    with _LOCK:
        cached = _PLANS.get(key)
    if cached is not None:
        return cached
    plan = _compile(entries, settings)
    with _LOCK:  # the GUI and the generation worker both build prompts
        if len(_PLANS) >= _PLANS_SIZE:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = plan
    return plan


_PLANS: dict[tuple[tuple[int, ...], bool, bool], Plan] = {}
_PLANS_SIZE = 8
_LOCK = threading.Lock()


def _compile(entries: list[WIEntry], settings: WorldInfoSettings) -> Plan:
    always: list[WIEntry] = []
    exact: list[WIEntry] = []
    by_depth: dict[int | None, KeyIndex] = {}
    for e in entries:
        if e.disabled:
            continue  # never fires; its reason is written at the end
        case = e.case_sensitive if e.case_sensitive is not None else settings.case_sensitive
        whole = e.whole_words if e.whole_words is not None else settings.whole_words
        specs = list(_specs(e.keys, case, whole))
        if e.constant or e.decorators or any(spec is None for spec in specs):
            always.append(e)
            continue
        index = by_depth.setdefault(e.scan_depth, KeyIndex())
        for spec in specs:
            if spec is not None:
                index.add(e, *spec[:2], case, spec[2])
        if specs and all(spec is not None and spec[0] != BY_REGEX for spec in specs):
            exact.append(e)  # a /regex/ key's required text is no proof of a match
    return Plan(
        entries=entries,
        index={e: i for i, e in enumerate(entries)},
        always=always,
        always_set=frozenset(always),
        keyed_only=frozenset(e for e in entries if e.keys and not _flagged(e)),
        exact=frozenset(e for e in exact if not _flagged(e)),
        by_depth=by_depth,
        levels=sorted({e.delay_until_recursion for e in entries if e.delay_until_recursion}),
        by_hash={e.hash: e for e in entries if e.hash},
        delayed=[e for e in entries if e.delay],
    )


def _flagged(e: WIEntry) -> bool:
    """Whether something besides its keys decides if `e` fires (see `_Scan._matches`)."""
    return bool(
        e.disabled
        or e.delay
        or e.cooldown
        or e.sticky
        or e.delay_until_recursion
        or e.exclude_recursion
        or e.character_filter
        or e.decorators
        or e.constant
    )


def _specs(
    keys: tuple[str, ...], case: bool, whole: bool
) -> Iterator[tuple[int, str, object] | None]:
    """How each key is found in a part; None for a key the tables cannot rule out."""
    for raw in keys:
        key = raw.strip()
        if not key:
            continue  # an empty key never matches
        if "{{" in raw or "<" in raw or "\x01" in key:
            yield None  # a macro is filled in per turn; \x01 may span the join
            continue
        mode, needle, compiled = matcher(key, case, whole)
        if mode == BY_REGEX:
            required = cast(RegexKey, compiled).required
            # a text with a line break or \x01 may span two messages: no shortcut
            spans = "\n" in required or "\x01" in required
            yield (mode, needle, compiled) if required and not spans else None
        else:
            yield mode, needle, compiled
