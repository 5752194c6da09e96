"""Chat and global variables: `{{getvar::name}}`, `{{setvar::name::value}}`,
`{{addvar::name::value}}`, `{{incvar::name}}`, `{{decvar::name}}` and the same with
`globalvar`, as SillyTavern's `public/scripts/variables.js` has them.

Values follow its JavaScript: a variable that reads as a number is a number (`getvar` of
"05" is 5), `addvar` adds numbers, appends to a JSON array, or else joins text; `setvar` and
`addvar` leave nothing in the text, `incvar` and `decvar` leave the new value. Within a line
the macros run kind by kind in `replaceVariableMacros`' order (all `getvar`, then all
`setvar`, ...), lines top to bottom, so `{{setvar::x::1}}{{getvar::x}}` on one line reads
the old value and on two lines the new one.

Chat variables live in the chat's SillyTavern `chat_metadata.variables` and global ones in
the store (`app.core.store.variables`); a prompt works on a copy (`Variables`), which the
caller saves once the prompt is really sent, so a preview changes nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

Value = Any  # str, int, float or a JSON list: what SillyTavern keeps in a variable
_KINDS = ("get", "set", "add", "inc", "dec")
_NAME, _REST = r"([^{}]+)", r"([^:{}]+)::([^{}]+)"
_PATTERNS = [
    (
        scope,
        kind,
        re.compile(
            r"\{\{" + kind + scope + r"::" + (_REST if kind in ("set", "add") else _NAME) + r"\}\}",
            re.I,
        ),
    )
    for scope in ("var", "globalvar")
    for kind in _KINDS
]
_ANY = re.compile(r"\{\{(?:get|set|add|inc|dec)(?:global)?var::", re.I)
# Cards are untrusted: a text of thousands of {{addvar}}s on one variable must not build a
# megabyte value by copying it each time. Past these, a write leaves the variable as it is.
MAX_CHARS = 20_000  # one variable's value, as text
MAX_WRITES = 1_000  # writes in one prompt
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?", re.I)


@dataclass
class Variables:
    """The chat's and the global variables for one prompt; `writable` False reads only
    (a message already answered, whose writes SillyTavern ran once, when it was sent)."""

    chat: dict[str, Value] = field(default_factory=dict)
    glob: dict[str, Value] = field(default_factory=dict)
    writable: bool = True
    changed: set[str] = field(default_factory=set)  # "chat" and/or "global"
    writes: int = 0
    # Read from a chat's store (`app.core.chat.macro_state`): only such a set is saved back,
    # never one a prompt started empty, which would overwrite the chat's own.
    stored: bool = False

    def copy(self) -> Variables:
        return Variables(dict(self.chat), dict(self.glob), self.writable, stored=self.stored)

    def reader(self) -> Variables:
        """A view that reads these variables and writes nothing."""
        return Variables(self.chat, self.glob, writable=False, changed=self.changed)

    def _scope(self, scope: str) -> dict[str, Value]:
        return self.chat if scope == "var" else self.glob

    def get(self, scope: str, name: str) -> Value:
        """`getLocalVariable`: a number when the value reads as one, else the text."""
        value = self._scope(scope).get(name)
        if isinstance(value, str) and value.strip() == "":
            return value
        number = js_number(value)
        if number is None or isinstance(value, list):
            return value or ""
        return _tidy(number)

    def set(self, scope: str, name: str, value: Value) -> Value:
        if self.writable and self._room(value):
            self._scope(scope)[name] = value
            self.changed.add("chat" if scope == "var" else "global")
            self.writes += 1
        return value

    def _room(self, value: Value) -> bool:
        size = len(value) if isinstance(value, str) else 0
        return self.writes < MAX_WRITES and size <= MAX_CHARS

    def add(self, scope: str, name: str, value: Value) -> Value:
        """`addLocalVariable`: append to a JSON array, add numbers, or join text."""
        current = self.get(scope, name) or 0
        if self.writable and self.writes >= MAX_WRITES:
            return current  # nothing is written, so nothing is worked out
        if isinstance(current, str) and len(current) + len(js_str(value)) > MAX_CHARS:
            return current
        if isinstance(current, str):
            try:
                parsed = json.loads(current, parse_float=_json_float)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, list):
                parsed.append(value)
                self.set(scope, name, json.dumps(parsed, ensure_ascii=False, separators=(",", ":")))
                return parsed
        increment, base = js_number(value), js_number(current)
        if increment is None or base is None:
            text = js_str(current or "") + js_str(value)
            return self.set(scope, name, text)
        total = base + increment
        return "" if math.isnan(total) else self.set(scope, name, _tidy(total))


def _json_float(text: str) -> Value:
    return _tidy(float(text))


def _tidy(x: float) -> Value:
    """A JavaScript number as Python keeps it: whole numbers as int."""
    return int(x) if math.isfinite(x) and x == int(x) and abs(x) < 2**53 else x


def js_number(value: Value) -> float | None:
    """JavaScript's `Number(value)`, None where it is NaN."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    if value is None or isinstance(value, list):
        return 0.0 if value == [] else None  # Number([]) is 0; a list of more is NaN
    text = str(value).strip()
    if not text:
        return 0.0
    if _NUMBER.fullmatch(text):
        return float(text)
    if text.lstrip("+-") == "Infinity":
        return -math.inf if text.startswith("-") else math.inf
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if text.lower().startswith(prefix):
            try:
                return float(int(text[2:], base))
            except ValueError:
                return None
            except OverflowError:  # more digits than a float holds, as in JavaScript
                return math.inf
    return None


def js_str(value: Value) -> str:
    """JavaScript's `String(value)` for what a variable can hold."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join("" if v is None else js_str(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return _js_number_text(float(value)) if isinstance(value, float) else str(value)
    return str(value)


def _js_number_text(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == int(x) and abs(x) < 1e21:
        return str(int(x))
    sign, digits, exponent = Decimal(repr(x)).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exponent)  # where the decimal point goes
    if -6 < point <= 21:
        body = f"0.{'0' * -point}{text}" if point <= 0 else f"{text[:point]}.{text[point:]}"
        body = body.rstrip(".")
    else:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        body = f"{mantissa}e{'+' if point - 1 >= 0 else '-'}{abs(point - 1)}"
    return ("-" if sign else "") + body


def replace_variables(
    text: str, variables: Variables, insert: Callable[[re.Match[str], str], str]
) -> str:
    """SillyTavern's `replaceVariableMacros`: line by line, kind by kind. `insert(match,
    value)` gives the text that stands for a macro (the engine seals and measures it)."""
    if not _ANY.search(text):
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if "{{" not in line:
            continue
        for scope, kind, pattern in _PATTERNS:
            line = pattern.sub(partial(_replace, variables, scope, kind, insert), line)
        lines[i] = line
    return "\n".join(lines)


def _replace(
    variables: Variables,
    scope: str,
    kind: str,
    insert: Callable[[re.Match[str], str], str],
    m: re.Match[str],
) -> str:
    return insert(m, _run(variables, scope, kind, m))


def _run(variables: Variables, scope: str, kind: str, m: re.Match[str]) -> str:
    name = m.group(1).strip()
    if kind == "get":
        return js_str(variables.get(scope, name))
    if kind == "set":
        variables.set(scope, name, m.group(2))
        return ""
    if kind == "add":
        variables.add(scope, name, m.group(2))
        return ""
    return js_str(variables.add(scope, name, 1 if kind == "inc" else -1))
