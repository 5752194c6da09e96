"""Linear-time measures the template sandbox takes before it lets an operation allocate.

Each one reads its input once: a check that backtracks (as a regex over a format string
did) is itself the freeze it was meant to prevent. Widths are the sum over every field, so
`'%9999s' * many` and `'{:{}}'.format(x, N)` are both measured before Python builds them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from itertools import count
from string import Formatter
from typing import Any

# Above this many digits a number is "huge" without converting it (int() stops at 4300).
_MAX_DIGITS = 12
HUGE: int = 10**_MAX_DIGITS
_DIGITS = "0123456789"
# Containers nested deeper than this are treated as too big to measure.
_MAX_NESTING = 64


def percent_width(fmt: str) -> int:
    """The sum of the widths and precisions in a `%`-format; HUGE for `*` (taken from data)."""
    total, i, n = 0, fmt.find("%"), len(fmt)
    while i >= 0:
        j = _skip_key(fmt, i + 1)
        while j < n and fmt[j] in "-+ #0":
            j += 1
        for part in range(2):
            j, width = _number(fmt, j)
            total += width
            if part == 0 and j < n and fmt[j] == ".":
                j += 1
            else:
                break
        i = fmt.find("%", j + 1)  # fmt[j] is the conversion (or the second % of "%%")
    return total


def _skip_key(fmt: str, j: int) -> int:
    if j >= len(fmt) or fmt[j] != "(":
        return j
    depth, j = 1, j + 1
    while j < len(fmt) and depth:  # Python allows nested parentheses in a mapping key
        depth += {"(": 1, ")": -1}.get(fmt[j], 0)
        j += 1
    return j


def _number(fmt: str, j: int) -> tuple[int, int]:
    if j < len(fmt) and fmt[j] == "*":
        return j + 1, HUGE
    start = j
    while j < len(fmt) and fmt[j] in _DIGITS:
        j += 1
    return j, _value(fmt[start:j])


def _value(digits: str) -> int:
    if not digits:
        return 0
    return HUGE if len(digits) > _MAX_DIGITS else int(digits)


def format_width(fmt: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> int:
    """The sum of the widest number in each field's spec of a `str.format` string, with
    nested fields (`{0:{1}}`) filled from the arguments; HUGE when one cannot be resolved.

    A malformed string measures 0: `str.format` refuses it without allocating."""
    auto = count()
    total = 0
    try:
        for _, name, spec, _ in Formatter().parse(fmt):
            if name is None:
                continue
            if name == "":
                next(auto)
            if spec and "{" in spec:
                spec = _resolve(spec, args, kwargs, auto)
            total += _widest(spec or "")
    except (ValueError, KeyError, IndexError, TypeError):
        return 0
    return total


def _resolve(spec: str, args: Sequence[Any], kwargs: Mapping[str, Any], auto: count[int]) -> str:
    out = []
    for literal, name, _, _ in Formatter().parse(spec):
        out.append(literal)
        if name is None:
            continue
        key: int | str = next(auto) if name == "" else int(name) if name.isdigit() else name
        value = args[key] if isinstance(key, int) else kwargs[key]
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return "9" * (_MAX_DIGITS + 1)  # attribute walks and objects: not measured
        out.append(str(value) if isinstance(value, str) or abs(value) < HUGE else "9" * 13)
    return "".join(out)


def _widest(spec: str) -> int:
    widest, run = 0, []
    for ch in spec + " ":
        if ch in _DIGITS:
            run.append(ch)
        elif run:
            widest = max(widest, _value("".join(run)))
            run = []
    return widest


def deep_size(value: Any) -> int:
    """About how many characters `value` would print as: strings by length, containers by
    their items, shared items counted each time they appear (measured once each)."""
    return _deep(value, {}, 0)


def _deep(value: Any, seen: dict[int, int], depth: int) -> int:
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, (list, tuple, dict)):
        return 0
    if depth > _MAX_NESTING:
        return HUGE
    known = seen.get(id(value))
    if known is not None:
        return known
    items = (*value.keys(), *value.values()) if isinstance(value, dict) else value
    size = len(value) + sum(_deep(v, seen, depth + 1) for v in items)
    seen[id(value)] = size
    return size


def wordwrap_cost(text_length: int, width: int) -> int:
    """Work `textwrap` does, roughly: a long word is cut one line at a time, each cut
    copying the rest of the word, so it grows with length squared over width."""
    return text_length * (text_length // max(width, 1) + 1)


def deep_bytes(value: Any) -> int:
    """About how much memory `value` holds: `sys.getsizeof` of each string and container
    (a string's width per character included), shared items counted once."""
    return _bytes(value, set(), 0)


def _bytes(value: Any, seen: set[int], depth: int) -> int:
    if isinstance(value, (str, bytes, int, float)):
        return sys.getsizeof(value)
    if not isinstance(value, (list, tuple, dict)):
        return 0  # namespaces, undefineds, functions: their contents were counted when built
    if depth > _MAX_NESTING:
        return HUGE
    if id(value) in seen:
        return 0
    seen.add(id(value))
    items = (*value.keys(), *value.values()) if isinstance(value, dict) else value
    return sys.getsizeof(value) + sum(_bytes(v, seen, depth + 1) for v in items)
