"""The text an entry is matched against, as SillyTavern's `WorldInfoBuffer` builds it.

Chat lines are newest first; an entry sees the newest `scan_depth` of them (its own, else the
global depth plus the min-activations skew), then the lore added by recursion (not during a
min-activations step). Lines are joined with `\\n\\x01` and start with `\\x01`, as in
SillyTavern, so a key cannot match across two messages by accident.
"""

from __future__ import annotations

from enum import IntEnum

from app.core.prompt.worldinfo.entry import MAX_SCAN_DEPTH, WIEntry
from app.core.prompt.worldinfo.keys import Haystack, Joined

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
        self.recurse: list[Haystack] = []
        self.timed_out: set[str] = set()
        self._chat: dict[int, Haystack] = {}  # the chat part, by depth
        self._cache: dict[tuple[int, int], Joined] = {}
        self._line_hays: list[Haystack] | None = None

    @property
    def depth(self) -> int:
        return self.base_depth + self.skew

    def entry_depth(self, entry: WIEntry) -> int:
        return self.scan_depth(entry.scan_depth)

    def get(self, entry: WIEntry, state: ScanState) -> Joined:
        return self.at_depth(self.entry_depth(entry), state)

    def scan_depth(self, own: int | None) -> int:
        """The depth an entry with scan depth `own` (None: the global one) sees now."""
        return min(max(own if own is not None else self.depth, 0), MAX_SCAN_DEPTH)

    def at_depth(self, depth: int, state: ScanState) -> Joined:
        recursed = 0 if state == ScanState.MIN_ACTIVATIONS else len(self.recurse)
        cached = self._cache.get((depth, recursed))
        if cached is None:
            parts = [] if depth <= 0 else [self._chat_part(depth), *self.recurse[:recursed]]
            cached = self._cache[(depth, recursed)] = Joined(parts, JOINER, self.timed_out)
        return cached

    def _chat_part(self, depth: int) -> Haystack:
        depth = min(depth, len(self.lines))  # deeper windows hold the same text
        if depth not in self._chat:
            lines = self.lines[:depth]
            self._chat[depth] = Haystack(MATCHER + JOINER.join(lines), self.timed_out, lines)
        return self._chat[depth]

    def add_recurse(self, texts: list[str]) -> None:
        """The fired entries' texts, joined by line breaks, as SillyTavern adds them."""
        self.recurse.append(Haystack("\n".join(texts), self.timed_out, texts, "\n"))

    def where(self, key: str, entry: WIEntry, case_sensitive: bool, whole_words: bool) -> str:
        """Which message (1 = the newest) holds `key`, for the trace."""
        if self._line_hays is None:
            self._line_hays = [Haystack(MATCHER + line, self.timed_out) for line in self.lines]
        for i, hay in enumerate(self._line_hays[: self.entry_depth(entry)]):
            if hay.has(key, case_sensitive=case_sensitive, whole_words=whole_words):
                return f"message {i + 1} from the end"
        return "lore added by recursion"
