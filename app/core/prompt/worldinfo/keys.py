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
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex

try:  # Python 3.11+
    import re._parser as _sre_parser
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre_parser

REGEX_TIMEOUT_S = 0.05
_DELIMITED = re.compile(r"^/([\s\S]+?)/([gimsuy]*)$")
_UNESCAPED_SLASH = re.compile(r"(^|[^\\])/")
_WORD = "A-Za-z0-9_"
_ASCII_WORDS = re.compile(rf"[{_WORD}]+")
_OUTSIDE_CLASS = {
    "w": f"[{_WORD}]",
    "W": f"[^{_WORD}]",
    "d": "[0-9]",
    "D": "[^0-9]",
    "b": r"(?a:\b)",
    "B": r"(?a:\B)",
}
_INSIDE_CLASS = {"w": _WORD, "d": "0-9"}


@dataclass(frozen=True)
class RegexKey:
    pattern: regex.Pattern
    sticky: bool  # the `y` flag: match only at the start of the text
    # text every match must contain (case-folded when `folded`): a cheap test first
    required: str = ""
    folded: bool = False

    def search(self, text: str, folded_text: str | None = None) -> bool:
        """True on a match; raises TimeoutError past the time limit."""
        if self.required:
            haystack = (
                (folded_text if folded_text is not None else text.casefold())
                if self.folded
                else text
            )
            if self.required not in haystack:
                return False
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
    python = js_to_python(source)
    try:
        compiled = regex.compile(python, py_flags)
    except (regex.error, ValueError, OverflowError, RecursionError):
        return None  # SillyTavern then matches the key as plain text
    required = required_literal(python)
    folded = "i" in flags
    return RegexKey(compiled, "y" in flags, required.casefold() if folded else required, folded)


def required_literal(pattern: str) -> str:
    """The longest run of plain characters that every match of `pattern` contains, or "".

    Read from the top level of the parsed pattern (Python's own parser): characters in a
    row, outside groups, alternatives and repeats. Most keys (`/\\bdragons?\\b/i`) have one,
    and a substring test rules them out far faster than running the expression.
    """
    try:
        parsed = _sre_parser.parse(pattern)
    except Exception:  # noqa: BLE001 - syntax only the regex package knows: no shortcut
        return ""
    best, run = "", []
    for op, arg in parsed:
        if op is _sre_parser.LITERAL:
            run.append(chr(arg))
            continue
        best = max(best, "".join(run), key=len)
        run = []
    best = max(best, "".join(run), key=len)
    return best if len(best) >= 3 else ""


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
def word_plan(
    keys: tuple[str, ...], case_sensitive: bool, whole_words: bool
) -> tuple[frozenset[str], bool]:
    """The keys that are matched as one ASCII word (lower-cased unless case-sensitive), and
    whether any key needs a full look (a regex, several words, other scripts, a macro)."""
    words, others = set(), False
    for key in keys:
        mode, needle, _ = matcher(key.strip(), case_sensitive, whole_words)
        if mode == BY_WORD and "{{" not in key and "<" not in key:
            words.add(needle)
        else:
            others = True
    return frozenset(words), others


def literal_plan(
    keys: tuple[str, ...], case_sensitive: bool, whole_words: bool
) -> tuple[tuple[tuple[str, bool], ...], bool]:
    """For the keys that are not single words: the text each /regex/ key's matches must hold
    (case-folded or not), and whether some key has no such shortcut (several words, other
    scripts, a macro, a regex without a literal) and always needs the full look."""
    literals, plain = [], False
    for key in keys:
        key = key.strip()
        mode, _, compiled = matcher(key, case_sensitive, whole_words)
        if mode == BY_WORD and "{{" not in key and "<" not in key:
            continue
        if mode == BY_REGEX and compiled.required and "\n" not in compiled.required:
            literals.append((compiled.required, compiled.folded))
        else:
            plain = True
    return tuple(literals), plain


def _whole_word_pattern(key: str) -> re.Pattern[str]:
    return re.compile(rf"(?:^|[^{_WORD}]){re.escape(key)}(?:\Z|[^{_WORD}])")


BY_REGEX, BY_WORD, BY_SUBSTRING, BY_BOUNDS = range(4)


@lru_cache(maxsize=65536)
def matcher(key: str, case_sensitive: bool, whole_words: bool) -> tuple[int, str, Any]:
    """How `key` is looked for, worked out once per key and rules: the mode, the text looked
    for, and its compiled form (a `RegexKey` for BY_REGEX, a pattern for BY_BOUNDS, else None).
    """
    compiled = parse_regex_key(key)
    if compiled is not None:
        return BY_REGEX, key, compiled
    needle = key if case_sensitive else key.lower()
    if not whole_words or any(c.isspace() for c in needle):
        return BY_SUBSTRING, needle, None
    if _ASCII_WORDS.fullmatch(needle):
        return BY_WORD, needle, None
    return BY_BOUNDS, needle, _whole_word_pattern(needle)


class Haystack:
    """One scan text, with the lower-cased copy and word sets that make 2,000 keys cheap."""

    def __init__(
        self,
        text: str,
        timed_out: set[str] | None = None,
        lines: list[str] | None = None,
        joiner: str = "\n\x01",
    ) -> None:
        self.text = text
        # the pieces `text` joins with `joiner` (no word character in it): the chat's
        # messages, or the fired entries' texts of a recursion pass
        self.lines, self.joiner = lines, joiner
        self._lower: str | None = None
        self._folded: str | None = None
        self._words: dict[bool, frozenset[str]] = {}
        self._seen: dict[tuple[str, bool, bool], bool] = {}
        self._contains: dict[tuple[str, bool], bool] = {}
        self.memo: dict[int, frozenset[object]] = {}  # `plan.KeyIndex.woken` answers
        # regex keys that hit the time limit: shared by a scan's haystacks, tried once
        self.timed_out = timed_out if timed_out is not None else set()

    def folded(self) -> str:
        if self._folded is None:
            self._folded = self.text.casefold()
        return self._folded

    def lower(self) -> str:
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower

    def words(self, case_sensitive: bool) -> frozenset[str]:
        if case_sensitive not in self._words:
            if self.lines is not None:  # the chat: its messages' words, kept across turns
                found = frozenset().union(*(_line_words(li, case_sensitive) for li in self.lines))
            else:
                found = _words_of(self.text if case_sensitive else self.lower())
            self._words[case_sensitive] = found
        return self._words[case_sensitive]

    def has(self, key: str, *, case_sensitive: bool, whole_words: bool) -> bool:
        memo = (key, case_sensitive, whole_words)
        found = self._seen.get(memo)
        if found is None:
            found = self._seen[memo] = self._has(key, case_sensitive, whole_words)
        return found

    def _has(self, key: str, case_sensitive: bool, whole_words: bool) -> bool:
        mode, needle, compiled = matcher(key, case_sensitive, whole_words)
        if mode == BY_REGEX:
            return self._regex(key, compiled)
        if mode == BY_WORD:  # bounded by non-word characters: exactly a word of the text
            return needle in self.words(case_sensitive)
        text = self.text if case_sensitive else self.lower()
        if mode == BY_SUBSTRING:
            return needle in text
        return needle in text and compiled.search(text) is not None

    def contains(self, literal: str, folded: bool) -> bool:
        memo = (literal, folded)
        found = self._contains.get(memo)
        if found is None:
            found = self._contains[memo] = literal in (self.folded() if folded else self.text)
        return found

    def is_plain(self, key: str, case_sensitive: bool, whole_words: bool) -> bool:
        """Whether `key` is matched without a regular expression of the user's."""
        return matcher(key, case_sensitive, whole_words)[0] != BY_REGEX

    def _regex(self, key: str, compiled: RegexKey) -> bool:
        if key in self.timed_out or key in _HOSTILE:
            self.timed_out.add(key)  # still reported, never run again
            return False
        try:
            return compiled.search(self.text, self.folded() if compiled.folded else None)
        except TimeoutError:
            self.timed_out.add(key)
            _HOSTILE.add(key)
            return False


def _words_of(text: str) -> frozenset[str]:
    return frozenset(_ASCII_WORDS.findall(text))


def _line_words(line: str, case_sensitive: bool) -> frozenset[str]:
    """The words of one message, kept by its text: a separator without word characters
    joins the chat's messages, so the chat's words are the union of theirs, and a new turn
    reads only the new message. (`str.lower` is per character but for a final sigma, and
    the separator ends a word for that rule as the end of the text does.)"""
    memo = (line, case_sensitive)
    found = _LINE_WORDS.get(memo)
    if found is None:
        found = _words_of(line if case_sensitive else line.lower())
        if len(line) > 65_536:
            return found  # a rare huge message is not kept
        with _LINE_LOCK:
            if len(_LINE_WORDS) >= _LINE_WORDS_SIZE:
                _LINE_WORDS.pop(next(iter(_LINE_WORDS)), None)
            _LINE_WORDS[memo] = found
    return found


_LINE_WORDS: dict[tuple[str, bool], frozenset[str]] = {}
_LINE_WORDS_SIZE = 8192
_LINE_LOCK = threading.Lock()


# Keys that ran past the time limit once: skipped from then on, so a book full of them costs
# one time limit each per run of the app, not per turn.
_HOSTILE: set[str] = set()


class Joined:
    """A scan text made of parts joined by a separator that holds no word character.

    A plain key cannot match across such a join (it holds no `\\x01`), so it is looked up
    part by part, and each part remembers its answers: the chat part is searched once per
    turn however many recursion passes follow. A `/regex/` key may span parts, so it is
    matched on the whole text, as SillyTavern does.
    """

    def __init__(self, parts: list[Haystack], joiner: str, timed_out: set[str]) -> None:
        self.parts, self.joiner, self.timed_out = parts, joiner, timed_out
        self._whole: Haystack | None = None
        self._seen: dict[tuple[str, bool, bool], bool] = {}

    @property
    def text(self) -> str:
        return self.whole().text

    def whole(self) -> Haystack:
        if self._whole is None:
            self._whole = Haystack(self.joiner.join(p.text for p in self.parts), self.timed_out)
        return self._whole

    def holds(self, literal: str, folded: bool) -> bool:
        """Whether some part holds `literal` (a regex key's required text)."""
        return any(p.contains(literal, folded) for p in self.parts)

    def could_have(self, key: str, case_sensitive: bool, whole_words: bool) -> bool:
        """False only when `key` surely is not in the text: a single-word key that is no
        word of it, or a /regex/ key whose required text is nowhere. Cheap, and enough to
        pass over most entries of a big book without the full look."""
        mode, needle, _ = matcher(key, case_sensitive, whole_words)
        if mode == BY_WORD and "{{" not in key and "<" not in key:
            return self.may_have(frozenset((needle,)), case_sensitive)
        return mode != BY_REGEX or self._may_contain(key)

    def _may_contain(self, key: str) -> bool:
        """For a /regex/ key: whether the text its every match must hold is in some part (a
        run of plain characters without a line break cannot straddle a join)."""
        compiled = parse_regex_key(key)
        if compiled is None or not compiled.required or "\n" in compiled.required:
            return True
        return any(p.contains(compiled.required, compiled.folded) for p in self.parts)

    def may_have(self, words: frozenset[str], case_sensitive: bool) -> bool:
        """Whether any of `words` (single ASCII words) is a word of this text: a set test
        that spares a book's thousands of keys the one-by-one look."""
        return any(not words.isdisjoint(p.words(case_sensitive)) for p in self.parts)

    def has(self, key: str, *, case_sensitive: bool, whole_words: bool) -> bool:
        memo = (key, case_sensitive, whole_words)
        found = self._seen.get(memo)
        if found is None:
            found = self._seen[memo] = self._has(key, case_sensitive, whole_words)
        return found

    def _has(self, key: str, case_sensitive: bool, whole_words: bool) -> bool:
        if len(self.parts) == 1:
            return self.parts[0].has(key, case_sensitive=case_sensitive, whole_words=whole_words)
        plain = bool(self.parts) and self.parts[0].is_plain(key, case_sensitive, whole_words)
        if not plain and not self._may_contain(key):
            return False
        if not plain or "\x01" in key:
            return self.whole().has(key, case_sensitive=case_sensitive, whole_words=whole_words)
        memo = (key, case_sensitive, whole_words)
        for part in self.parts:  # `Haystack.has`, inlined: this runs for every key looked at
            found = part._seen.get(memo)
            if found is None:
                found = part._seen[memo] = part._has(key, case_sensitive, whole_words)
            if found:
                return True
        return False
