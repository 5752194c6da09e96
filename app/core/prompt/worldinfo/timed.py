"""Sticky, cooldown and delay, as SillyTavern's `WorldInfoTimedEffects` keeps them.

The state is SillyTavern's `chat_metadata.timedWorldInfo`: `{"sticky": {key: effect},
"cooldown": {key: effect}}` with effect `{"hash", "start", "end", "protected"}`, counted in chat
messages. An effect set at the current chat length is dropped when the chat has not advanced
(a swipe or regenerate rolls again), unless protected (a cooldown that follows a sticky).
The store keeps one state per message of the tree, so each branch has its own timeline.
"""

from __future__ import annotations

import copy
from typing import Any

from app.core.prompt.worldinfo.entry import WIEntry

KINDS = ("sticky", "cooldown")


Effect = dict[str, Any]  # {"hash", "start", "end", "protected"}
State = dict[str, Any]  # {"sticky": {key: Effect}, "cooldown": {key: Effect}}, and others'


def clean_state(state: Any) -> State:
    """A copy of `state` with SillyTavern's structure checks applied."""
    clean: State = copy.deepcopy(state) if isinstance(state, dict) else {}
    for kind in KINDS:
        effects = clean.get(kind)
        effects = effects if isinstance(effects, dict) else {}
        clean[kind] = {k: v for k, v in effects.items() if isinstance(v, dict) and v}
    return clean


class TimedEffects:
    def __init__(
        self,
        state: Any,
        chat_length: int,
        entries: list[WIEntry],
        by_hash: dict[str, WIEntry] | None = None,
        delayed: list[WIEntry] | None = None,
    ) -> None:
        """`by_hash` (the entries with a hash) and `delayed` (those with a delay) are worked
        out from `entries` unless given: a big book's scan plan keeps them."""
        self.state = clean_state(state)
        self.chat_length = chat_length
        self.entries = entries
        self._by_hash = by_hash if by_hash is not None else {e.hash: e for e in entries if e.hash}
        self._delayed = delayed if delayed is not None else [e for e in entries if e.delay]
        self.active: dict[str, set[WIEntry]] = {"sticky": set(), "cooldown": set(), "delay": set()}

    def check(self) -> None:
        """Which entries are sticky, cooling down or delayed now (`checkTimedEffects`)."""
        for kind in KINDS:
            self._check_kind(kind)
        for entry in self._delayed:
            if self.chat_length < entry.delay:
                self.active["delay"].add(entry)

    def _check_kind(self, kind: str) -> None:
        effects = self.state[kind]
        for key, effect in list(effects.items()):
            entry = self._by_hash.get(str(effect.get("hash")))
            start, end = _int(effect.get("start")), _int(effect.get("end"))
            if self.chat_length <= start and not effect.get("protected"):
                del effects[key]  # the chat did not advance: roll again
            elif entry is None:  # another book's entry, or edited since
                if self.chat_length >= end:
                    del effects[key]
            elif not getattr(entry, kind):
                del effects[key]
            elif self.chat_length >= end:
                del effects[key]
                if kind == "sticky" and entry.cooldown:
                    self.state["cooldown"][entry.key] = self._effect("cooldown", entry, True)
                    self.active["cooldown"].add(entry)
            else:
                self.active[kind].add(entry)

    def _effect(self, kind: str, entry: WIEntry, protected: bool) -> Effect:
        return {
            "hash": entry.hash,
            "start": self.chat_length,
            "end": self.chat_length + int(getattr(entry, kind)),
            "protected": protected,
        }

    def is_active(self, kind: str, entry: WIEntry) -> bool:
        return entry in self.active[kind]

    def effect(self, kind: str, entry: WIEntry) -> Effect | None:
        found = self.state.get(kind, {}).get(entry.key)
        return found if isinstance(found, dict) else None

    def set_effects(self, activated: list[WIEntry]) -> None:
        """Start sticky and cooldown for entries that fired now (`setTimedEffects`)."""
        for entry in activated:
            for kind in KINDS:
                if getattr(entry, kind) and entry.key not in self.state[kind]:
                    self.state[kind][entry.key] = self._effect(kind, entry, False)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite number
        return 0
