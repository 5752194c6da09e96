"""Which entries fire: SillyTavern's `checkWorldInfo` loop (1.12), with a reason for each entry.

Entries come sorted (`sort_entries`), the chat as lines newest first. One pass looks at every
entry not yet decided; the ones that match are ordered (sticky first, then book order), thinned
by inclusion groups, rolled for probability with the chat's seed, and admitted while the budget
holds: the scan stops at the first entry that does not fit, as SillyTavern's does. Recursion
scans again with the fired lore added; min activations widens the window one message at a time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.core.prompt.worldinfo.buffer import ScanBuffer, ScanState
from app.core.prompt.worldinfo.entry import Logic, WIEntry, book_entries
from app.core.prompt.worldinfo.groups import filter_groups
from app.core.prompt.worldinfo.keys import Haystack
from app.core.prompt.worldinfo.settings import Book, Source, Strategy, WorldInfoSettings
from app.core.prompt.worldinfo.timed import TimedEffects


@dataclass
class ScanInput:
    entries: list[WIEntry]  # sorted by `sort_entries`
    lines: list[str]  # the chat, newest first ("Name: message")
    max_context: int  # tokens left after the reply; the budget is a share of it
    count_tokens: Callable[[str], int]
    settings: WorldInfoSettings = field(default_factory=WorldInfoSettings)
    expand: Callable[[str], str] = lambda s: s
    seed: str = ""  # the chat's seed: draws repeat for the same chat and length
    timed_state: Any = None
    chat_length: int | None = None  # messages in the chat (default: len(lines))


@dataclass
class ScanResult:
    activated: list[WIEntry]  # in the order they fired
    content: dict[WIEntry, str]  # macros filled in
    tokens: dict[WIEntry, int]
    reasons: dict[WIEntry, str]
    budget: int
    overflowed: bool
    timed_state: dict
    timed_out_keys: list[str]


def sort_entries(books: list[Book], strategy: Strategy) -> list[WIEntry]:
    """All books' entries in SillyTavern's order (`getSortedEntries`): chat lore first, then
    global and character lore by the strategy; each by `order`, highest first (a stable sort)."""
    seen: set[str] = set()
    by_source: dict[Source, list[WIEntry]] = {s: [] for s in Source}
    for source in (Source.GLOBAL, Source.CHAT, Source.CHARACTER):  # a book counts once
        for book in books:
            if book.source == source and book.name not in seen:
                seen.add(book.name)
                by_source[source] += book_entries(book.data, book.name)

    def by_order(entries: list[WIEntry]) -> list[WIEntry]:
        return sorted(entries, key=lambda e: -e.order)

    glob, char = by_source[Source.GLOBAL], by_source[Source.CHARACTER]
    if strategy == Strategy.CHARACTER_FIRST:
        merged = by_order(char) + by_order(glob)
    elif strategy == Strategy.GLOBAL_FIRST:
        merged = by_order(glob) + by_order(char)
    else:
        merged = by_order(glob + char)
    return by_order(by_source[Source.CHAT]) + merged


def budget_tokens(settings: WorldInfoSettings, max_context: int) -> int:
    budget = math.floor(settings.budget_percent * max_context / 100 + 0.5) or 1  # Math.round
    return settings.budget_cap if 0 < settings.budget_cap < budget else budget


def check_world_info(inp: ScanInput) -> ScanResult:
    return _Scan(inp).run()


class _Scan:
    def __init__(self, inp: ScanInput) -> None:
        self.inp, self.s = inp, inp.settings
        self.entries = inp.entries
        self.index = {e: i for i, e in enumerate(self.entries)}
        length = inp.chat_length if inp.chat_length is not None else len(inp.lines)
        self.length = length
        self.timed = TimedEffects(inp.timed_state, length, self.entries)
        self.buffer = ScanBuffer(inp.lines, self.s.depth)
        self.budget = budget_tokens(self.s, inp.max_context)
        self.activated: dict[WIEntry, str] = {}
        self.tokens: dict[WIEntry, int] = {}
        self.failed: set[WIEntry] = set()
        self.why: dict[WIEntry, str] = {}
        self.lost: dict[WIEntry, str] = {}  # first reason an entry lost in its group
        self.overflowed = False
        self.used = 0

    def run(self) -> ScanResult:
        self.timed.check()
        levels = sorted({e.delay_until_recursion for e in self.entries
                         if e.delay_until_recursion})
        self.level = levels.pop(0) if levels else 0
        state, steps = ScanState.INITIAL, 0
        while state and self.entries:
            if self.s.max_recursion_steps and self.s.max_recursion_steps <= steps:
                break
            steps += 1
            state = self._next_state(state, self._pass(state), levels)
        for entry in self.entries:
            if entry not in self.activated and entry not in self.why:
                self.why[entry] = "not scanned: the budget was full" if self.overflowed else ""
        self.timed.set_effects(list(self.activated))
        return ScanResult(list(self.activated), dict(self.activated), self.tokens, self.why,
                          self.budget, self.overflowed, self.timed.state,
                          sorted(self.buffer.timed_out))

    def _pass(self, state: ScanState) -> list[WIEntry]:
        """One look at every open entry; returns those that fired and may recurse."""
        now = [e for e in self.entries if e not in self.failed and e not in self.activated
               and self._matches(e, state)]
        now.sort(key=lambda e: (not self.timed.is_active("sticky", e), self.index[e]))
        filter_groups(now, self.activated, self.buffer, state, self.timed,
                      self.s.use_group_scoring, self._roll, self._has, self.why, self.lost)
        fired = []
        for entry in now:
            if not self._probability(entry):
                continue
            fired.append(entry)
            if not self._admit(entry):
                for rest in now[now.index(entry):]:
                    self.why[rest] = (f"cut by the budget: {self.used} of {self.budget} "
                                      "tokens were used")
                break
        return [e for e in fired if not e.prevent_recursion]

    def _next_state(self, state: ScanState, recurse: list[WIEntry], levels: list[int]):
        nxt = ScanState.NONE
        if self.s.recursive and not self.overflowed and recurse:
            nxt = ScanState.RECURSION
        if (self.s.recursive and not self.overflowed and state == ScanState.MIN_ACTIVATIONS
                and self.buffer.recurse):
            nxt = ScanState.RECURSION
        if (not nxt and not self.overflowed and self.s.min_activations > 0
                and len(self.activated) < self.s.min_activations):
            depth_max = self.s.min_activations_depth_max
            over = (depth_max > 0 and self.buffer.depth > depth_max) or (
                self.buffer.depth > len(self.inp.lines))
            if not over:
                nxt = ScanState.MIN_ACTIVATIONS
                self.buffer.skew += 1
        if nxt == ScanState.NONE and levels:
            nxt = ScanState.RECURSION
            self.level = levels.pop(0)
        if nxt:
            self.buffer.add_recurse("\n".join(self.activated.get(e, e.content)
                                              for e in recurse))
        return nxt

    def _matches(self, e: WIEntry, state: ScanState) -> bool:
        """Whether `e` is a candidate in this pass; writes the reason either way."""
        sticky = self.timed.is_active("sticky", e)
        blocked = self._blocked(e, state, sticky)
        if blocked:
            self.why[e] = blocked
            return False
        if "activate" in e.decorators:
            self.why[e] = "@@activate"
            return True
        if "dont_activate" in e.decorators:
            self.why[e] = "@@dont_activate"
            return False
        if e.constant:
            self.why[e] = "constant"
            return True
        if sticky:
            end = (self.timed.effect("sticky", e) or {}).get("end", "?")
            self.why[e] = f"sticky until message {end}"
            return True
        if not e.keys:
            self.why[e] = "no keys"
            return False
        return self._keys_match(e, state)

    def _blocked(self, e: WIEntry, state: ScanState, sticky: bool) -> str:
        if e.disabled:
            return "disabled"
        if self.timed.is_active("delay", e):
            return f"delayed until the chat has {e.delay} messages"
        if self.timed.is_active("cooldown", e) and not sticky:
            end = (self.timed.effect("cooldown", e) or {}).get("end", "?")
            return f"on cooldown until message {end}"
        if e.delay_until_recursion and not sticky:
            if state != ScanState.RECURSION:
                return "waits for recursion"
            if e.delay_until_recursion > self.level:
                return f"waits for recursion level {e.delay_until_recursion}"
        if (state == ScanState.RECURSION and self.s.recursive and e.exclude_recursion
                and not sticky):
            return "excluded from recursion"
        return ""

    def _keys_match(self, e: WIEntry, state: ScanState) -> bool:
        hay = self.buffer.get(e, state)
        depth = self.buffer.entry_depth(e)
        primary = next((k for k in e.keys if self._has(e, k, hay)), None)
        if primary is None:
            self.why[e] = f"no key found in the last {depth} messages"
            return False
        if e.selective and e.secondary and not self._secondary(e, hay):
            self.why[e] = (f"key '{primary}' found, but the secondary keys fail "
                           f"{e.logic.name.replace('_', ' ')}")
            return False
        if e.additional and not any(self._has(e, k, hay) for k in e.additional):
            self.why[e] = f"key '{primary}' found, but no @@additional_keys"
            return False
        excluded = next((k for k in e.exclude if self._has(e, k, hay)), None)
        if excluded is not None:
            self.why[e] = f"key '{primary}' found, but @@exclude_keys '{excluded}' too"
            return False
        case, whole = self._rules(e)
        self.why[e] = f"key '{primary}' in {self.buffer.where(self._key(primary), e, case, whole)}"
        return True

    def _secondary(self, e: WIEntry, hay: Haystack) -> bool:
        hits = [self._has(e, k, hay) for k in e.secondary]
        return {Logic.AND_ANY: any(hits), Logic.NOT_ALL: not all(hits),
                Logic.NOT_ANY: not any(hits), Logic.AND_ALL: all(hits)}[e.logic]

    def _rules(self, e: WIEntry) -> tuple[bool, bool]:
        case = e.case_sensitive if e.case_sensitive is not None else self.s.case_sensitive
        whole = e.whole_words if e.whole_words is not None else self.s.whole_words
        return case, whole

    def _key(self, key: str) -> str:
        return self.inp.expand(key).strip()

    def _has(self, e: WIEntry, key: str, hay: Haystack) -> bool:
        key = self._key(key)
        if not key:
            return False
        case, whole = self._rules(e)
        return hay.has(key, case_sensitive=case, whole_words=whole)

    def _roll(self, name: str) -> float:
        return random.Random(f"{self.inp.seed}|{self.length}|{name}").random()

    def _probability(self, e: WIEntry) -> bool:
        if not e.use_probability or e.probability == 100:
            return True
        if self.timed.is_active("sticky", e):
            return True
        value = self._roll(f"entry:{e.key}") * 100
        verdict = "≤" if value <= e.probability else ">"
        self.why[e] = f"{self.why.get(e, '')}; rolled {value:.1f} {verdict} {e.probability:g}%"
        if value <= e.probability:
            return True
        self.failed.add(e)
        return False

    def _admit(self, e: WIEntry) -> bool:
        content = self.inp.expand(e.content)
        cost = self.inp.count_tokens(content + "\n")
        if self.used + cost >= self.budget:
            self.overflowed = True
            return False
        self.used += cost
        self.activated[e] = content
        self.tokens[e] = self.inp.count_tokens(content)
        return True
