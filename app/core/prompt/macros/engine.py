"""Macros ("curly braced syntax") in cards, personas, lore and messages.

SillyTavern's and the V3 card spec's names, matched case-insensitively: `{{char}}`, `{{user}}`,
`<BOT>`/`<CHAR>`/`<USER>`, `{{original}}`, `{{time}}`, `{{date}}`, `{{weekday}}`, `{{isodate}}`,
`{{isotime}}`, `{{random:a,b}}` / `{{random::a::b}}`, `{{pick:a,b}}`, `{{roll:d20}}` /
`{{roll:2d6+1}}`, `{{reverse:x}}`, `{{newline}}`, `{{noop}}`, and comments `{{// ...}}`
(also `{{comment: ...}}` and `{{hidden_key: ...}}`), which vanish. Unknown macros stay as typed.

Randomness and time come from the context, so a caller that passes a seeded `random.Random`
and a fixed clock gets the same text every time.

Cards are untrusted, so expansion is bounded. What a macro inserts (a name, a date) is never
scanned for macros again: a name that itself holds `{{char}}` is expanded once, up front,
instead of doubling the text on every pass (`{{original}}`, used once at most, is the
exception: its macros still expand). The whole output has a budget (`output_budget`); a text
that would outgrow it is kept exactly as written, and a warning names where it came from.
"""

from __future__ import annotations

import logging
import random
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

# A comment holding other macros is removed later, once those are expanded.
_COMMENT = re.compile(r"\{\{//(?:(?!\{\{).)*?\}\}", re.S)
_MACRO = re.compile(r"\{\{([^{}]*)\}\}")
_ANGLE = re.compile(r"<(bot|char|user)>", re.I)
_RANDOM = re.compile(r"(random|pick)\s?::?(.*)", re.I | re.S)
_ROLL = re.compile(r"roll[\s:]+(.*)", re.I | re.S)
_DICE = re.compile(r"(\d*)d(\d+)\s*([+-]\s*\d+)?", re.I)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
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
# Expanded text may be this many times the input plus a constant, and never past the cap: a
# few names per line is normal, a greeting of millions of characters is an attack.
GROWTH, SLACK, HARD_CAP = 8, 64 * 1024, 2_000_000
# Inserted values hide their braces behind these stand-ins until the end, so no pass reads a
# name or a date as a macro. Private-use characters; see `_Seal`.
_STAND_INS = ("\ue000", "\ue001", "\ue002", "\ue003", "\ue004", "\ue005")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MacroContext:
    char: str = ""
    user: str = "User"
    original: str = ""
    rng: random.Random | None = None
    clock: Callable[[], datetime] | None = None
    # Where over-budget warnings go (the prompt builder collects them); None logs them.
    warn: Callable[[str], None] | None = None


class MacroBudgetError(ValueError):
    """Expansion would outgrow `output_budget`; the caller keeps the text as written."""


def output_budget(input_chars: int) -> int:
    return min(GROWTH * input_chars + SLACK, HARD_CAP)


def expand_macros(text: str, ctx: MacroContext, where: str = "") -> str:
    """Return `text` with every macro replaced; `{{original}}` is used once, as SillyTavern does.

    `where` names the text's origin (a card field) in the warning given when the expansion
    would pass its budget; the text then comes back unexpanded.
    """
    if "{{" not in text and "<" not in text:
        return text
    try:
        return expand_bounded(text, ctx)
    except MacroBudgetError as exc:
        message = f"Macros in {where or 'a text'} were left as written: {exc}"
        (ctx.warn or log.warning)(message)
        return text


def expand_bounded(text: str, ctx: MacroContext) -> str:
    """`expand_macros` that raises `MacroBudgetError` instead of keeping the text."""
    budget = output_budget(len(text))
    seal = _Seal(text, ctx)
    plain = _plain_names(ctx, seal)
    expansion = _Expansion(replace(ctx, char=plain[0], user=plain[1]), seal, budget)
    text = _COMMENT.sub("", text)
    for _ in range(_PASSES):
        expansion.size = len(text)
        expanded = _MACRO.sub(expansion.replace, text)
        if expanded == text:
            break
        text = expanded
    expansion.size = len(text)
    text = _ANGLE.sub(expansion.angle, text)
    return seal.open(text)


def _plain_names(ctx: MacroContext, seal: _Seal) -> tuple[str, str]:
    """The character's and user's names with their own macros expanded once, sealed.

    Inside a name, `{{char}}` and `{{user}}` stand for the names as written."""
    raw = (seal.close(ctx.char), seal.close(ctx.user))
    once = MacroContext(char=raw[0], user=raw[1], rng=ctx.rng, clock=ctx.clock)
    names = []
    for name in (ctx.char, ctx.user):
        if "{{" in name or "<" in name:
            inner = _Expansion(once, seal, output_budget(len(name)))
            inner.size = len(name)
            name = _ANGLE.sub(inner.angle, _MACRO.sub(inner.replace, name))
        names.append(seal.close(name))
    return names[0], names[1]


class _Seal:
    """Hides `{` and `}` (and `<`, `>`) of inserted values behind characters the input lacks."""

    def __init__(self, text: str, ctx: MacroContext) -> None:
        sources = (text, ctx.char, ctx.user, ctx.original)
        free = [c for c in _STAND_INS if not any(c in source for source in sources)]
        self.usable = len(free) >= 4
        if self.usable:
            self._close = str.maketrans({"{": free[0], "}": free[1], "<": free[2], ">": free[3]})
            self._open = str.maketrans({free[0]: "{", free[1]: "}", free[2]: "<", free[3]: ">"})

    def close(self, value: str) -> str:
        # With no free stand-in (a text holding them all on purpose), values stay as they are;
        # the budget still bounds the result.
        return value.translate(self._close) if self.usable else value

    def open(self, text: str) -> str:
        return text.translate(self._open) if self.usable else text


def stable_rng(text: str) -> random.Random:
    """A generator seeded by `text`: the same message rolls the same dice on every turn."""
    return random.Random(zlib.crc32(text.encode("utf-8")))


class _Expansion:
    def __init__(self, ctx: MacroContext, seal: _Seal, budget: int) -> None:
        self.ctx = ctx
        self.seal = seal
        self.rng = ctx.rng or random.Random()
        self.original_used = False
        self._now: datetime | None = None
        self.budget = budget
        self.size = 0  # the current text's length, grown as replacements are made

    def _grow(self, match: re.Match[str], value: str) -> str:
        # Checked before the pass joins its pieces, so an over-budget text is never built.
        self.size += len(value) - len(match.group(0))
        if self.size > self.budget:
            raise MacroBudgetError(f"they would make it longer than {self.budget:,} characters")
        return value

    def angle(self, match: re.Match[str]) -> str:
        name = self.ctx.user if match.group(1).lower() == "user" else self.ctx.char
        return self._grow(match, name)

    def now(self) -> datetime:
        if self._now is None:  # one reading per text, so {{date}} and {{time}} agree
            self._now = (self.ctx.clock or datetime.now)()
        return self._now

    def replace(self, match: re.Match[str]) -> str:
        return self._grow(match, self._value(match))

    def _value(self, match: re.Match[str]) -> str:
        body = match.group(1)
        key = body.strip().lower()
        simple = self._simple(key)
        if simple is not None:
            return simple
        if key.startswith(("//", "comment:", "hidden_key:")):
            return ""
        if key.startswith("reverse:"):
            return body.strip()[len("reverse:") :][::-1]
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
            # Not sealed: its own macros still expand, and it is inserted once at most.
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
        # Long digit strings are refused before int(), which would raise past 4300 digits.
        if not dice or any(len(g or "") > 12 for g in dice.groups()):
            return ""
        count, sides = int(dice.group(1) or 1), int(dice.group(2))
        if not (1 <= count <= MAX_DICE and 1 <= sides <= MAX_SIDES):
            return ""
        bonus = int(dice.group(3).replace(" ", "")) if dice.group(3) else 0
        return str(sum(self.rng.randint(1, sides) for _ in range(count)) + bonus)
