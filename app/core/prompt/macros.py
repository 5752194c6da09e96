"""Macros ("curly braced syntax") in cards, personas, lore and messages.

SillyTavern's and the V3 card spec's names, matched case-insensitively: `{{char}}`, `{{user}}`,
`<BOT>`/`<CHAR>`/`<USER>`, `{{original}}`, `{{time}}`, `{{date}}`, `{{weekday}}`, `{{isodate}}`,
`{{isotime}}`, `{{random:a,b}}` / `{{random::a::b}}`, `{{pick:a,b}}`, `{{roll:d20}}` /
`{{roll:2d6+1}}`, `{{reverse:x}}`, `{{newline}}`, `{{noop}}`, and comments `{{// ...}}`
(also `{{comment: ...}}` and `{{hidden_key: ...}}`), which vanish. Unknown macros stay as typed.

Randomness and time come from the context, so a caller that passes a seeded `random.Random`
and a fixed clock gets the same text every time.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

# A comment holding other macros is removed later, once those are expanded.
_COMMENT = re.compile(r"\{\{//(?:(?!\{\{).)*?\}\}", re.S)
_MACRO = re.compile(r"\{\{([^{}]*)\}\}")
_ANGLE = re.compile(r"<(bot|char|user)>", re.I)
_RANDOM = re.compile(r"(random|pick)\s?::?(.*)", re.I | re.S)
_ROLL = re.compile(r"roll[\s:]+(.*)", re.I | re.S)
_DICE = re.compile(r"(\d*)d(\d+)\s*([+-]\s*\d+)?", re.I)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# English formats like SillyTavern's defaults (moment's LT and LL), independent of the OS locale.
_CLOCK: dict[str, Callable[[datetime], str]] = {
    "time": lambda t: f"{(t.hour % 12) or 12}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}",
    "date": lambda t: f"{_MONTHS[t.month - 1]} {t.day}, {t.year}",
    "weekday": lambda t: _WEEKDAYS[t.weekday()],
    "isodate": lambda t: f"{t.year:04d}-{t.month:02d}-{t.day:02d}",
    "isotime": lambda t: f"{t.hour:02d}:{t.minute:02d}",
}
# Cards are untrusted: a `{{roll:999999999d6}}` must not keep the app busy.
MAX_DICE, MAX_SIDES = 1000, 1_000_000
# Nested macros expand from the inside out, one level per pass.
_PASSES = 4


@dataclass(frozen=True)
class MacroContext:
    char: str = ""
    user: str = "User"
    original: str = ""
    rng: random.Random | None = None
    clock: Callable[[], datetime] | None = None


def expand_macros(text: str, ctx: MacroContext) -> str:
    """Return `text` with every macro replaced; `{{original}}` is used once, as SillyTavern does."""
    if "{{" not in text and "<" not in text:
        return text
    text = _COMMENT.sub("", text)
    expansion = _Expansion(ctx)
    for _ in range(_PASSES):
        expanded = _MACRO.sub(expansion.replace, text)
        if expanded == text:
            break
        text = expanded
    return _ANGLE.sub(lambda m: ctx.user if m.group(1).lower() == "user" else ctx.char, text)


def stable_rng(text: str) -> random.Random:
    """A generator seeded by `text`: the same message rolls the same dice on every turn."""
    return random.Random(zlib.crc32(text.encode("utf-8")))


class _Expansion:
    def __init__(self, ctx: MacroContext) -> None:
        self.ctx = ctx
        self.rng = ctx.rng or random.Random()
        self.original_used = False
        self._now: datetime | None = None

    def now(self) -> datetime:
        if self._now is None:  # one reading per text, so {{date}} and {{time}} agree
            self._now = (self.ctx.clock or datetime.now)()
        return self._now

    def replace(self, match: re.Match[str]) -> str:
        body = match.group(1)
        key = body.strip().lower()
        simple = self._simple(key)
        if simple is not None:
            return simple
        if key.startswith(("//", "comment:", "hidden_key:")):
            return ""
        if key.startswith("reverse:"):
            return body.strip()[len("reverse:"):][::-1]
        choice = _RANDOM.fullmatch(body.strip())
        if choice:
            return self._choose(choice.group(1).lower(), choice.group(2))
        roll = _ROLL.fullmatch(body.strip())
        if roll:
            return self._roll(roll.group(1).strip())
        return match.group(0)

    def _simple(self, key: str) -> str | None:
        if key == "char":
            return self.ctx.char
        if key == "user":
            return self.ctx.user
        if key == "original":
            used, self.original_used = self.original_used, True
            return "" if used else self.ctx.original
        if key in ("newline", "noop"):
            return "\n" if key == "newline" else ""
        clock = _CLOCK.get(key)
        return clock(self.now()) if clock else None

    def _choose(self, kind: str, listing: str) -> str:
        if "::" in listing:
            options = listing.split("::")
        else:
            escaped = listing.replace("\\,", "\0").split(",")
            options = [o.strip().replace("\0", ",") for o in escaped]
        if not options:
            return ""
        rng = stable_rng(listing) if kind == "pick" else self.rng
        return rng.choice(options)

    def _roll(self, formula: str) -> str:
        if formula.isdigit():
            formula = "d" + formula
        dice = _DICE.fullmatch(formula)
        if not dice:
            return ""
        count, sides = int(dice.group(1) or 1), int(dice.group(2))
        if not (1 <= count <= MAX_DICE and 1 <= sides <= MAX_SIDES):
            return ""
        bonus = int(dice.group(3).replace(" ", "")) if dice.group(3) else 0
        return str(sum(self.rng.randint(1, sides) for _ in range(count)) + bonus)
