"""Which entries fire: SillyTavern's `checkWorldInfo` loop (1.12), with a reason for each entry.

Entries come sorted (`sort_entries`), the chat as lines newest first. One pass looks at every
entry not yet decided; the ones that match are ordered (sticky first, then book order), thinned
by inclusion groups, rolled for probability with the chat's seed, and admitted while the budget
holds: the scan stops at the first entry that does not fit, as SillyTavern's does. Recursion
scans again with the fired lore added; min activations widens the window one message at a time.

The budget is SillyTavern's: the tokens of the text earlier passes gave recursion plus those
of this pass's text, counted as one text. Which entries a pass looks at is worked out from the
book's compiled keys (`plan.py`); the entries it looks at get SillyTavern's exact tests.
Random draws come from the chat's seed instead of `Math.random`, so a regenerated message
draws the same.
"""

from __future__ import annotations

import math
import operator
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.core.prompt.worldinfo.buffer import ScanBuffer, ScanState
from app.core.prompt.worldinfo.entry import Logic, WIEntry, read_book
from app.core.prompt.worldinfo.groups import filter_groups
from app.core.prompt.worldinfo.keys import (
    Haystack,
    Joined,
    literal_plan,
    parse_regex_key,
    word_plan,
)
from app.core.prompt.worldinfo.plan import build_plan
from app.core.prompt.worldinfo.settings import Book, Source, Strategy, WorldInfoSettings
from app.core.prompt.worldinfo.timed import State, TimedEffects

_KEY_FOUND = "key found"  # a placeholder until `_explain` says where


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
    character: str = ""  # the character's name, for entries filtered by character
    character_tags: tuple[str, ...] = ()  # and its card's tags


@dataclass
class ScanResult:
    activated: list[WIEntry]  # in the order they fired
    content: dict[WIEntry, str]  # macros filled in
    tokens: dict[WIEntry, int]
    explain: Callable[[], dict[WIEntry, str]]  # every entry's reason, worked out on demand
    cut: list[WIEntry]  # left out by the budget
    budget: int
    overflowed: bool
    timed_state: State
    timed_out_keys: list[str]


def sort_entries(books: list[Book], strategy: Strategy) -> list[WIEntry]:
    """All books' entries in SillyTavern's order (`getSortedEntries`): chat lore first, then
    global and character lore by the strategy; each by `order`, highest first (a stable sort).

    The order is kept for the same books unchanged (`read_book` hands out the same tuples),
    so a turn with a big book does not sort it again."""
    seen: set[str] = set()
    read: list[tuple[Source, tuple[WIEntry, ...]]] = []
    for source in (Source.GLOBAL, Source.CHAT, Source.CHARACTER):  # a book counts once
        for book in books:
            if book.source == source and book.name not in seen:
                seen.add(book.name)
                read.append((source, read_book(book.data, book.name)))
    key = (strategy, tuple((source, id(entries)) for source, entries in read))
    with _SORTED_LOCK:
        cached = _SORTED.get(key)
    if cached is not None and all(map(operator.is_, cached[0], (e for _, e in read))):
        return list(cached[1])
    merged = _merge(read, strategy)
    with _SORTED_LOCK:
        if len(_SORTED) >= 8:
            _SORTED.pop(next(iter(_SORTED)))
        _SORTED[key] = (tuple(e for _, e in read), merged)  # holds the tuples: ids stay theirs
    return list(merged)


_SortKey = tuple[Strategy, tuple[tuple[Source, int], ...]]
_SORTED: dict[_SortKey, tuple[tuple[tuple[WIEntry, ...], ...], tuple[WIEntry, ...]]] = {}
_SORTED_LOCK = threading.Lock()


def _merge(
    read: list[tuple[Source, tuple[WIEntry, ...]]], strategy: Strategy
) -> tuple[WIEntry, ...]:
    by_source: dict[Source, list[WIEntry]] = {s: [] for s in Source}
    for source, entries in read:
        by_source[source] += entries

    def by_order(entries: list[WIEntry]) -> list[WIEntry]:
        return sorted(entries, key=lambda e: -e.order)

    glob, char = by_source[Source.GLOBAL], by_source[Source.CHARACTER]
    if strategy == Strategy.CHARACTER_FIRST:
        merged = by_order(char) + by_order(glob)
    elif strategy == Strategy.GLOBAL_FIRST:
        merged = by_order(glob) + by_order(char)
    else:
        merged = by_order(glob + char)
    return tuple(by_order(by_source[Source.CHAT]) + merged)


def budget_tokens(settings: WorldInfoSettings, max_context: int) -> int:
    budget = math.floor(settings.budget_percent * max_context / 100 + 0.5) or 1  # Math.round
    return settings.budget_cap if 0 < settings.budget_cap < budget else budget


def check_world_info(inp: ScanInput) -> ScanResult:
    return _Scan(inp).run()


class _Scan:
    def __init__(self, inp: ScanInput) -> None:
        self.inp, self.s = inp, inp.settings
        self.entries = inp.entries
        self.plan = build_plan(self.entries, self.s)
        self.index = self.plan.index
        length = inp.chat_length if inp.chat_length is not None else len(inp.lines)
        self.length = length
        self.timed = TimedEffects(
            inp.timed_state, length, self.entries, self.plan.by_hash, self.plan.delayed
        )
        self.buffer = ScanBuffer(inp.lines, self.s.depth)
        self.budget = budget_tokens(self.s, inp.max_context)
        self.activated: dict[WIEntry, str] = {}
        self.tokens: dict[WIEntry, int] = {}
        self.failed: set[WIEntry] = set()
        self.why: dict[WIEntry, str] = {}
        self.lost: dict[WIEntry, str] = {}  # first reason an entry lost in its group
        self.matched: dict[WIEntry, str] = {}  # the key found; where is worked out at the end
        self.found_in: dict[WIEntry, Joined] = {}  # for `plan.exact` entries: the text
        self.rolls: dict[WIEntry, str] = {}
        self.cut: list[WIEntry] = []
        self._missing: dict[WIEntry, tuple[int, int]] = {}  # (depth, parts) of a failed look
        self._explained = False
        self.overflowed = False
        self.used = 0
        self.scanned = ""  # the lore recursion has scanned, newest first (it counts)

    def run(self) -> ScanResult:
        self.timed.check()
        levels = list(self.plan.levels)
        self.level = levels.pop(0) if levels else 0
        state, steps = ScanState.INITIAL, 0
        while state and self.entries:
            if self.s.max_recursion_steps and self.s.max_recursion_steps <= steps:
                break
            steps += 1
            state = self._next_state(state, self._pass(state), levels)
        self.timed.set_effects(list(self.activated))
        return ScanResult(
            list(self.activated),
            dict(self.activated),
            self.tokens,
            self._reasons,
            self.cut,
            self.budget,
            self.overflowed,
            self.timed.state,
            sorted(self.buffer.timed_out),
        )

    def _reasons(self) -> dict[WIEntry, str]:
        """Every entry's reason in words. Only the inspector and `--json` ask, so a turn
        does not pay for 2,000 sentences it never shows."""
        if not self._explained:
            for entry in self.entries:
                if entry not in self.activated and entry not in self.why:  # never looked at
                    self.why[entry] = self._blocked(entry, ScanState.INITIAL, False) or (
                        "no keys"
                        if not entry.keys
                        else f"no key found in the last {self.buffer.entry_depth(entry)} messages"
                    )
                self._explain(entry)
            self._explained = True
        return self.why

    def _pass(self, state: ScanState) -> list[WIEntry]:
        """One look at every open entry; returns those that fired and may recurse."""
        now = [e for e in self._candidates(state) if self._matches(e, state)]
        now.sort(key=lambda e: (not self.timed.is_active("sticky", e), self.index[e]))
        filter_groups(
            now,
            self.activated,
            self.buffer,
            state,
            self.timed,
            self.s.use_group_scoring,
            self._roll,
            self._has,
            self.why,
            self.lost,
        )
        self._admit_pass(now)
        # SillyTavern's `successfulNewEntriesForRecursion`: entries cut by the budget count
        # too (its loop stopped before rolling them); recursion then runs only for a pending
        # delay-until-recursion level, as there
        return [e for e in now if e not in self.failed and not e.prevent_recursion]

    def _admit_pass(self, now: list[WIEntry]) -> None:
        """SillyTavern's budget loop: each entry that passes its roll adds its text and a line
        break to this pass's text; the scan stops at the first entry for which the tokens of
        the lore scanned by earlier passes (`allActivatedText`: the recursion text, newest
        first) plus this pass's text reach the budget.

        The pass's text grows entry by entry, so its token count only grows: the first entry
        that does not fit is found by halving instead of counting every longer text."""
        passing = [e for e in now if self._probability(e)]
        contents = [self.inp.expand(e.content) for e in passing]
        pieces = [c + "\n" for c in contents]
        prior = self.inp.count_tokens(self.scanned) if self.scanned else 0

        def over(k: int) -> bool:  # the first k + 1 entries do not fit
            return prior + self.inp.count_tokens("".join(pieces[: k + 1])) >= self.budget

        cut = None
        if pieces and over(len(pieces) - 1):
            low, high = 0, len(pieces) - 1
            while low < high:
                mid = (low + high) // 2
                if over(mid):
                    high = mid
                else:
                    low = mid + 1
            cut = low
        kept = len(pieces) if cut is None else cut
        for e, content in zip(passing[:kept], contents[:kept], strict=True):
            self.activated[e] = content
            self.tokens[e] = self.inp.count_tokens(content)
        self.used = prior + (self.inp.count_tokens("".join(pieces[:kept])) if kept else 0)
        if cut is None:
            return
        self.overflowed = True
        for rest in now[now.index(passing[cut]) :]:
            if rest in self.failed:  # SillyTavern never rolled it
                self.failed.discard(rest)
                self.rolls.pop(rest, None)
            self.why[rest] = f"cut by the budget: {self.used} of {self.budget} tokens were used"
            self.cut.append(rest)

    def _candidates(self, state: ScanState) -> list[WIEntry]:
        """The open entries that could fire in this pass, in book order: those one of whose
        keys may be in the text (`plan.KeyIndex.woken`, tested once per part of the text),
        the sticky ones, and the few that are looked at in every pass (`Plan.always`)."""
        recursed = state != ScanState.MIN_ACTIVATIONS
        picked = {e for e in self.plan.always if not (recursed and self._still_missing(e))}
        picked.update(self.timed.active["sticky"])
        for own_depth, keys in self.plan.by_depth.items():
            depth = self.buffer.scan_depth(own_depth)
            for part in self.buffer.at_depth(depth, state).parts:
                picked.update(keys.woken(part))
        return sorted(
            (e for e in picked if e not in self.failed and e not in self.activated),
            key=self.index.__getitem__,
        )

    def _still_missing(self, e: WIEntry) -> bool:
        """True when `e` found no key before and the lore added since holds none either: its
        plain keys cannot span a join, so only the new parts need a look."""
        seen = self._missing.get(e)
        if seen is None or seen[0] != self.buffer.entry_depth(e) or seen[0] <= 0:
            return False
        new = self.buffer.recurse[seen[1] - 1 :]
        if any(self._has(e, k, part) for part in new for k in e.keys):
            return False
        self._missing[e] = (seen[0], len(self.buffer.recurse) + 1)
        return True

    def _next_state(self, state: ScanState, recurse: list[WIEntry], levels: list[int]) -> ScanState:
        nxt = ScanState.NONE
        if self.s.recursive and not self.overflowed and recurse:
            nxt = ScanState.RECURSION
        if (
            self.s.recursive
            and not self.overflowed
            and state == ScanState.MIN_ACTIVATIONS
            and self.buffer.recurse
        ):
            nxt = ScanState.RECURSION
        if (
            not nxt
            and not self.overflowed
            and self.s.min_activations > 0
            and len(self.activated) < self.s.min_activations
        ):
            depth_max = self.s.min_activations_depth_max
            over = (depth_max > 0 and self.buffer.depth > depth_max) or (
                self.buffer.depth > len(self.inp.lines)
            )
            if not over:
                nxt = ScanState.MIN_ACTIVATIONS
                self.buffer.skew += 1
        if nxt == ScanState.NONE and levels:
            nxt = ScanState.RECURSION
            self.level = levels.pop(0)
        if nxt:
            texts = [self.activated.get(e, e.content) for e in recurse]
            self.buffer.add_recurse(texts)
            text = "\n".join(texts)
            self.scanned = text + "\n" + self.scanned  # SillyTavern's `allActivatedText`
        return nxt

    def _matches(self, e: WIEntry, state: ScanState) -> bool:
        """Whether `e` is a candidate in this pass; writes the reason either way."""
        if e in self.plan.keyed_only:  # most entries: nothing but keys decides
            return self._keys_match(e, state)
        sticky = self.timed.is_active("sticky", e)
        if (
            e.disabled
            or e.delay
            or e.cooldown
            or e.delay_until_recursion
            or e.exclude_recursion
            or e.character_filter
        ):  # others cannot be blocked: no checks
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
        if e.character_filter is not None:
            filtered = e.character_filter.blocks(self.inp.character, self.inp.character_tags)
            if filtered:
                return filtered
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
        if state == ScanState.RECURSION and self.s.recursive and e.exclude_recursion and not sticky:
            return "excluded from recursion"
        return ""

    def _keys_match(self, e: WIEntry, state: ScanState) -> bool:
        hay = self.buffer.get(e, state)
        if e in self.plan.exact:  # woken by a key the tables found: which one, when asked
            primary: str | None = ""
            self.found_in[e] = hay
        elif e in self.plan.always_set:  # the cheap test first, then each key with its macros
            may = self._may_match(e, hay)
            primary = next((k for k in e.keys if self._has(e, k, hay)), None) if may else None
        else:  # woken by the plan's tables: no macro in its keys, each read stripped
            primary = self._first_key(e, hay)
        if primary is None:
            depth = self.buffer.entry_depth(e)
            self.why[e] = f"no key found in the last {depth} messages"
            if not any(parse_regex_key(self._key(k)) for k in e.keys):
                self._missing[e] = (depth, len(hay.parts))
            return False
        if e.selective and e.secondary and not self._secondary(e, hay):
            primary = primary or self._first_key(e, hay)
            self.why[e] = (
                f"key '{primary}' found, but the secondary keys fail "
                f"{e.logic.name.replace('_', ' ')}"
            )
            return False
        if e.additional and not any(self._has(e, k, hay) for k in e.additional):
            self.why[e] = f"key '{primary}' found, but no @@additional_keys"
            return False
        excluded = next((k for k in e.exclude if self._has(e, k, hay)), None)
        if excluded is not None:
            self.why[e] = f"key '{primary}' found, but @@exclude_keys '{excluded}' too"
            return False
        self.why[e] = _KEY_FOUND
        if primary:
            self.matched[e] = primary
        return True

    def _first_key(self, e: WIEntry, hay: Joined) -> str | None:
        """The first of `e`'s keys (no macro in them) that is in `hay`."""
        case, whole = self._rules(e)
        return next((k for k in e.keys if hay.has(k, case_sensitive=case, whole_words=whole)), None)

    def _explain(self, e: WIEntry) -> None:
        """The reason in words; where a key was found is looked up only now (it costs a scan
        of each message, and most matches never need it)."""
        if self.why.get(e) is _KEY_FOUND:
            case, whole = self._rules(e)
            key = self.matched.get(e) or self._first_key(e, self.found_in[e]) or "?"
            self.why[e] = f"key '{key}' in {self.buffer.where(self._key(key), e, case, whole)}"
        if e in self.rolls and not self.why[e].startswith(("cut by", "group")):
            self.why[e] += f"; {self.rolls[e]}"

    def _may_match(self, e: WIEntry, hay: Joined) -> bool:
        case, whole = self._rules(e)
        plan = e.plans.get((case, whole))
        if plan is None:
            plan = e.plans[(case, whole)] = word_plan(e.keys, case, whole)
        words, others = plan
        if hay.may_have(words, case):
            return True
        if not others:
            return False
        shortcut = e.plans.get(("literals", case, whole))
        if shortcut is None:
            shortcut = e.plans[("literals", case, whole)] = literal_plan(e.keys, case, whole)
        literals, plain = shortcut
        return plain or any(hay.holds(text, folded) for text, folded in literals)

    def _secondary(self, e: WIEntry, hay: Joined) -> bool:
        hits = [self._has(e, k, hay) for k in e.secondary]
        return {
            Logic.AND_ANY: any(hits),
            Logic.NOT_ALL: not all(hits),
            Logic.NOT_ANY: not any(hits),
            Logic.AND_ALL: all(hits),
        }[e.logic]

    def _rules(self, e: WIEntry) -> tuple[bool, bool]:
        case = e.case_sensitive if e.case_sensitive is not None else self.s.case_sensitive
        whole = e.whole_words if e.whole_words is not None else self.s.whole_words
        return case, whole

    def _key(self, key: str) -> str:
        if "{{" not in key and "<" not in key:  # no macro: skip the call, 2,000 entries a turn
            return key.strip()
        return self.inp.expand(key).strip()

    def _has(self, e: WIEntry, key: str, hay: Haystack | Joined) -> bool:
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
        self.rolls[e] = f"rolled {value:.1f} {verdict} {e.probability:g}%"
        if value <= e.probability:
            return True
        self.failed.add(e)
        return False
