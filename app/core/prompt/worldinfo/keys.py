"""Key matching, as SillyTavern's `WorldInfoBuffer.matchKeys` does it.

A key is a regular expression only when it is written `/pattern/flags` and compiles
(`parseRegexFromString`); it is then matched on the text as is, whatever the entry's case and
whole-word settings say. Any other key is plain text: lower-cased on both sides unless the entry
is case-sensitive, and with whole words, a one-word key must sit between non-word characters.

Whole words in other scripts. SillyTavern builds `(?:^|\\W)key(?:$|\\W)` with a JavaScript
`\\W`, which is ASCII-only: every character outside `[A-Za-z0-9_]` counts as a boundary. So a
Korean, Japanese, Cyrillic or accented key matches inside a longer word (`서울` in `서울에`, a
key followed by a particle), and a Latin key matches next to any non-ASCII letter. Parlor keeps
exactly that rule, so a card tested in SillyTavern fires the same here.

JavaScript patterns are run by the `regex` package with a time limit (`REGEX_TIMEOUT_S`): a
hostile key (catastrophic backtracking) counts as not found and is reported, never a hang.
`\\w \\W \\d \\D \\b \\B` are rewritten to their ASCII meaning, as in JavaScript; flags `i s m`
map to Python's, `u` and `g` change nothing here, `y` (sticky) anchors at the start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import regex

REGEX_TIMEOUT_S = 0.05
_DELIMITED = re.compile(r"^/([\s\S]+?)/([gimsuy]*)$")
_UNESCAPED_SLASH = re.compile(r"(^|[^\\])/")
_WORD = "A-Za-z0-9_"
_ASCII_WORDS = re.compile(rf"[{_WORD}]+")
_OUTSIDE_CLASS = {"w": f"[{_WORD}]", "W": f"[^{_WORD}]", "d": "[0-9]", "D": "[^0-9]",
                  "b": r"(?a:\b)", "B": r"(?a:\B)"}
_INSIDE_CLASS = {"w": _WORD, "d": "0-9"}


@dataclass(frozen=True)
class RegexKey:
    pattern: regex.Pattern
    sticky: bool  # the `y` flag: match only at the start of the text

    def search(self, text: str) -> bool:
        """True on a match; raises TimeoutError past the time limit."""
        if self.sticky:
            return self.pattern.match(text, timeout=REGEX_TIMEOUT_S) is not None
        return self.pattern.search(text, timeout=REGEX_TIMEOUT_S) is not None


@lru_cache(maxsize=4096)
def parse_regex_key(key: str) -> RegexKey | None:
    """The key as a regular expression when it is written `/pattern/flags`, else None."""
    match = _DELIMITED.match(key)
    if not match or _UNESCAPED_SLASH.search(match.group(1)):
        return None
    source, flags = match.groups()
    py_flags = regex.V0
    py_flags |= regex.IGNORECASE if "i" in flags else 0
    py_flags |= regex.DOTALL if "s" in flags else 0
    py_flags |= regex.MULTILINE if "m" in flags else 0
    try:
        return RegexKey(regex.compile(js_to_python(source), py_flags), "y" in flags)
    except (regex.error, ValueError, OverflowError, RecursionError):
        return None  # SillyTavern then matches the key as plain text


def js_to_python(source: str) -> str:
    """Rewrite the JavaScript escapes whose meaning differs in Python (ASCII word classes)."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(source):
        char = source[i]
        if char == "\\" and i + 1 < len(source):
            nxt = source[i + 1]
            table = _INSIDE_CLASS if in_class else _OUTSIDE_CLASS
            out.append(table.get(nxt, char + nxt))
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        i += 1
    return "".join(out)


@lru_cache(maxsize=16384)
def _whole_word_pattern(key: str) -> re.Pattern:
    return re.compile(rf"(?:^|[^{_WORD}]){re.escape(key)}(?:\Z|[^{_WORD}])")


def _is_ascii_word(key: str) -> bool:
    return _ASCII_WORDS.fullmatch(key) is not None


class Haystack:
    """One scan text, with the lower-cased copy and word sets that make 2,000 keys cheap."""

    def __init__(self, text: str, timed_out: set[str] | None = None) -> None:
        self.text = text
        self._lower: str | None = None
        self._words: dict[bool, frozenset[str]] = {}
        # regex keys that hit the time limit: shared by a scan's haystacks, tried once
        self.timed_out = timed_out if timed_out is not None else set()

    def lower(self) -> str:
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower

    def words(self, case_sensitive: bool) -> frozenset[str]:
        if case_sensitive not in self._words:
            text = self.text if case_sensitive else self.lower()
            self._words[case_sensitive] = frozenset(_ASCII_WORDS.findall(text))
        return self._words[case_sensitive]

    def has(self, key: str, *, case_sensitive: bool, whole_words: bool) -> bool:
        compiled = parse_regex_key(key)
        if compiled is not None:
            return self._regex(key, compiled)
        text = self.text if case_sensitive else self.lower()
        needle = key if case_sensitive else key.lower()
        if not whole_words or any(c.isspace() for c in needle):
            return needle in text
        if _is_ascii_word(needle):  # bounded by non-word characters: exactly a word of the text
            return needle in self.words(case_sensitive)
        return needle in text and _whole_word_pattern(needle).search(text) is not None

    def _regex(self, key: str, compiled: RegexKey) -> bool:
        if key in self.timed_out:
            return False
        try:
            return compiled.search(self.text)
        except TimeoutError:
            self.timed_out.add(key)
            return False
