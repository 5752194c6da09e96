"""The text an entry is matched against, as SillyTavern's `WorldInfoBuffer` builds it.

Chat lines are newest first; an entry sees the newest `scan_depth` of them (its own, else the
global depth plus the min-activations skew), then the lore added by recursion (not during a
min-activations step). Lines are joined with `\\n\\x01` and start with `\\x01`, as in
SillyTavern, so a key cannot match across two messages by accident.
"""

from __future__ import annotations

from enum import IntEnum

from app.core.prompt.worldinfo.entry import MAX_SCAN_DEPTH, WIEntry
from app.core.prompt.worldinfo.keys import Haystack

MATCHER = "\x01"
JOINER = "\n" + MATCHER


class ScanState(IntEnum):
    NONE = 0
    INITIAL = 1
    RECURSION = 2
    MIN_ACTIVATIONS = 3


class ScanBuffer:
    def __init__(self, lines: list[str], depth: int) -> None:
        self.lines = [line.strip() for line in lines[:MAX_SCAN_DEPTH]]
        self.base_depth = depth
        self.skew = 0
        self.recurse: list[str] = []
        self.timed_out: set[str] = set()
        self._cache: dict[tuple[int, int], Haystack] = {}

    @property
    def depth(self) -> int:
        return self.base_depth + self.skew

    def entry_depth(self, entry: WIEntry) -> int:
        depth = entry.scan_depth if entry.scan_depth is not None else self.depth
        return min(max(depth, 0), MAX_SCAN_DEPTH)

    def get(self, entry: WIEntry, state: ScanState) -> Haystack:
        depth = self.entry_depth(entry)
        recursed = 0 if state == ScanState.MIN_ACTIVATIONS else len(self.recurse)
        cached = self._cache.get((depth, recursed))
        if cached is None:
            if depth <= 0:
                text = ""
            else:
                text = MATCHER + JOINER.join(self.lines[:depth])
                if recursed:
                    text += JOINER + JOINER.join(self.recurse[:recursed])
            cached = self._cache[(depth, recursed)] = Haystack(text, self.timed_out)
        return cached

    def add_recurse(self, text: str) -> None:
        self.recurse.append(text)

    def where(self, key: str, entry: WIEntry, case_sensitive: bool, whole_words: bool) -> str:
        """Which message (1 = the newest) holds `key`, for the trace."""
        for i, line in enumerate(self.lines[:self.entry_depth(entry)]):
            if Haystack(MATCHER + line, self.timed_out).has(
                    key, case_sensitive=case_sensitive, whole_words=whole_words):
                return f"message {i + 1} from the end"
        return "lore added by recursion"
