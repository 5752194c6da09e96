"""Expanding macros: SillyTavern's `evaluateMacros` and `substituteParams`
(`public/scripts/macros.js`, `public/script.js`), bounded.

Names are matched case-insensitively, as SillyTavern's regular expressions do:
- names: `{{char}}`, `{{user}}`, `<BOT>`/`<CHAR>`/`<USER>`, `{{group}}`/`{{charIfNotGroup}}`/
  `<GROUP>`/`<CHARIFNOTGROUP>`, `{{original}}` (once);
- the card (`CardFields`): `{{description}}`, `{{personality}}`, `{{scenario}}`,
  `{{persona}}`, `{{mesExamples}}`, `{{charPrompt}}`, `{{charJailbreak}}`, `{{charVersion}}`;
- the session: `{{model}}`, `{{input}}`, `{{maxPrompt}}`;
- the chat (`chat_state.py`), the instruct preset (`instruct.py`), variables (`variables.py`),
  time (`clock.py`: `{{time}}`, `{{datetimeformat ...}}`, `{{time_UTC+2}}`,
  `{{timeDiff::a::b}}`, `{{idle_duration}}` ...);
- `{{random:a,b}}` / `{{random::a::b}}`, `{{pick:a,b}}`, `{{roll:2d6+1}}`, `{{reverse:x}}`,
  `{{newline}}`, `{{trim}}` (eats the line breaks around it), `{{noop}}`, comments
  `{{// ...}}` (and `{{comment: ...}}`, `{{hidden_key: ...}}`), and `{{banned "words"}}`
  (removed; its words are noted in `MacroNotes.banned`).

A macro whose kind has no value in the context (no card, no chat, no variables: a greeting
made with a new chat) is left for a later expansion; a macro nobody knows is left as written
and noted in `MacroNotes.unknown`, which the prompt inspector lists.

Randomness and time come from the context, so a caller that passes a seeded `random.Random`
and a fixed clock gets the same text every time.

Cards are untrusted, so expansion is bounded. What a macro inserts (a name, a date, a
variable) is never scanned for macros again: a name or card field that itself holds macros is
expanded once, up front, instead of doubling the text on every pass (`{{original}}`, used once
at most, is the exception: its macros still expand). The whole output has a budget
(`output_budget`); a text that would outgrow it is kept exactly as written, and a warning
names where it came from.
"""

from __future__ import annotations

import logging
import random
import re
import zlib
from dataclasses import replace
from datetime import datetime

from app.core.prompt.macros import clock
from app.core.prompt.macros.chat_state import chat_macro
from app.core.prompt.macros.context import CardFields, MacroContext
from app.core.prompt.macros.variables import replace_variables

# A comment holding other macros is removed later, once those are expanded.
_COMMENT = re.compile(r"\{\{//(?:(?!\{\{).)*?\}\}", re.S)
_MACRO = re.compile(r"\{\{([^{}]*)\}\}")
_TRIM = re.compile(r"(?:\r?\n)*\{\{trim\}\}(?:\r?\n)*", re.I)
_HAS_TRIM = re.compile(r"\{\{trim\}\}", re.I)  # _TRIM tries every position: look first
_ANGLE = re.compile(r"<(bot|char|user|group|charifnotgroup)>", re.I)
_RANDOM = re.compile(r"(random|pick)\s?::?(.*)", re.I | re.S)
_ROLL = re.compile(r"roll[\s:]+(.*)", re.I | re.S)
_DICE = re.compile(r"(\d*)d(\d+)\s*([+-]\s*\d+)?", re.I)
_DATETIME = re.compile(r"datetimeformat +(.*)", re.I | re.S)
_UTC = re.compile(r"time_utc([-+]\d{1,6})", re.I)
_TIME_DIFF = re.compile(r"timediff::(.*?)::(.*)", re.I | re.S)
_BANNED = re.compile(r'banned "(.*)"', re.I)
_VARIABLE = re.compile(r"(get|set|add|inc|dec)(global)?var::", re.I)
# Card fields by macro name; SillyTavern also knows {{char_version}}.
_CARD = {
    "description": "description",
    "personality": "personality",
    "scenario": "scenario",
    "persona": "persona",
    "mesexamples": "mes_examples",
    "charprompt": "system",
    "charjailbreak": "jailbreak",
    "charversion": "version",
    "char_version": "version",
}
_CHAT = frozenset(
    {
        "lastmessage",
        "lastmessageid",
        "lastusermessage",
        "lastcharmessage",
        "firstincludedmessageid",
        "currentswipeid",
        "lastswipeid",
    }
)
_INSTRUCT_KINDS = (
    "instruct",
    "systemprompt",
    "defaultsystemprompt",
    "exampleseparator",
    "chatstart",
)
# Cards are untrusted: a `{{roll:999999999d6}}` must not keep the app busy.
MAX_DICE, MAX_SIDES = 1000, 1_000_000
# Nested macros expand from the inside out, one level per pass.
_PASSES = 4
_MAX_UNKNOWN = 100  # unknown macros noted per text
MAX_WORKED = 500  # macros with arguments (dice, picks, dates) worked out per text
# Expanded text may be this many times the input plus a constant, and never past the cap: a
# few names per line is normal, a greeting of millions of characters is an attack.
GROWTH, SLACK, HARD_CAP = 8, 64 * 1024, 2_000_000
# Inserted values hide their braces behind these stand-ins until the end, so no pass reads a
# name or a date as a macro. Private-use characters; see `_Seal`.
_STAND_INS = ("\ue000", "\ue001", "\ue002", "\ue003", "\ue004", "\ue005")
log = logging.getLogger(__name__)


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
    expansion = _Expansion(ctx, seal, budget, names=plain)
    text = _COMMENT.sub("", text)
    for _ in range(_PASSES):
        expanded = _TRIM.sub("", text) if _HAS_TRIM.search(text) else text
        expansion.size = len(expanded)
        if ctx.variables is not None:
            expanded = replace_variables(expanded, ctx.variables, expansion.insert)
        expanded = _MACRO.sub(expansion.replace, expanded)
        if expanded == text:
            break
        text = expanded
    expansion.size = len(text)
    text = _ANGLE.sub(expansion.angle, text)
    for unknown in expansion.unknown:  # left as written after every pass
        if unknown in text and ctx.notes is not None:
            ctx.notes.add_unknown(unknown)
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
    def __init__(
        self,
        ctx: MacroContext,
        seal: _Seal,
        budget: int,
        names: tuple[str, str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.seal = seal
        # the names as inserted (expanded once and sealed), else the context's
        self.char, self.user = names or (ctx.char, ctx.user)
        self._rng = ctx.rng
        self.original_used = False
        self._now: datetime | None = None
        self._fields: dict[str, str] = {}
        self.unknown: dict[str, None] = {}
        self.worked = 0  # macros with arguments worked out
        self.budget = budget
        self.size = 0  # the current text's length, grown as replacements are made

    def _grow(self, match: re.Match[str], value: str) -> str:
        # Checked before the pass joins its pieces, so an over-budget text is never built.
        self.size += len(value) - len(match.group(0))
        if self.size > self.budget:
            raise MacroBudgetError(f"they would make it longer than {self.budget:,} characters")
        return value

    def insert(self, match: re.Match[str], value: str) -> str:
        """A value from outside the text (a variable, a message), sealed and measured."""
        return self._grow(match, self.seal.close(value))

    def angle(self, match: re.Match[str]) -> str:
        kind = match.group(1).lower()
        if kind in ("group", "charifnotgroup"):
            return self._grow(match, self._group())
        name = self.user if kind == "user" else self.char
        return self._grow(match, name)

    def rng(self) -> random.Random:
        if self._rng is None:  # made on first use: seeding from the OS costs a syscall
            self._rng = random.Random()
        return self._rng

    def now(self) -> datetime:
        if self._now is None:  # one reading per text, so {{date}} and {{time}} agree
            self._now = (self.ctx.clock or datetime.now)()
        return self._now

    def replace(self, match: re.Match[str]) -> str:
        return self._grow(match, self._value(match))

    def _value(self, match: re.Match[str]) -> str:
        body = match.group(1)
        key = body.strip().lower()
        for lookup in (self._simple, self._session, self._from_context):
            value = lookup(key)
            if value is not None:
                return value
        value = self._with_arguments(body.strip(), key, match.group(0))
        if value is not None:
            return value
        if not self._waits(key) and len(self.unknown) < _MAX_UNKNOWN:
            self.unknown.setdefault(match.group(0), None)
        return match.group(0)

    def _simple(self, key: str) -> str | None:
        if key == "char":
            return self.char
        if key == "user":
            return self.user
        if key == "original":
            used, self.original_used = self.original_used, True
            # Not sealed: its own macros still expand, and it is inserted once at most.
            return "" if used else self.ctx.original
        if key in ("newline", "noop", "trim"):
            return "\n" if key == "newline" else ""
        if key in ("group", "charifnotgroup"):
            return self._group()
        return clock.clock_macro(key, self.now())

    def _session(self, key: str) -> str | None:
        if key == "model" and self.ctx.model is not None:
            return self.seal.close(self.ctx.model)
        if key == "input":
            return self.seal.close(self.ctx.input)
        if key == "maxprompt" and self.ctx.max_prompt is not None:
            return str(self.ctx.max_prompt)
        if key == "idle_duration" and self.ctx.chat is not None:
            return clock.idle_duration(self.ctx.chat.idle_since, self.now())
        return None

    def _from_context(self, key: str) -> str | None:
        if key in _CARD and self.ctx.card is not None:
            return self._card_field(_CARD[key])
        if key in _CHAT and self.ctx.chat is not None:
            value = chat_macro(key, self.ctx.chat)
            return None if value is None else self.seal.close(value)
        if self.ctx.instruct is not None and key in self.ctx.instruct:
            return self.seal.close(self.ctx.instruct[key])
        return None

    def _with_arguments(self, body: str, key: str, written: str) -> str | None:
        if key.startswith(("//", "comment:", "hidden_key:")):
            return ""
        if key.startswith("reverse:"):
            return body[len("reverse:") :][::-1]
        for pattern, make in (
            (_RANDOM, lambda m: self._choose(m.group(1).lower(), m.group(2))),
            (_ROLL, lambda m: self._roll(m.group(1).strip())),
            (_DATETIME, lambda m: clock.format_moment(self.now(), m.group(1))),
            (_UTC, lambda m: clock.utc_offset_time(m.group(1), self.now())),
            (_TIME_DIFF, lambda m: clock.time_diff(m.group(1), m.group(2))),
            (_BANNED, self._banned),
        ):
            found = pattern.fullmatch(body)
            if found:
                self.worked += 1
                if self.worked > MAX_WORKED:  # each can cost a thousand dice or date parses
                    if self.worked == MAX_WORKED + 1:
                        (self.ctx.warn or log.warning)(
                            f"Only the first {MAX_WORKED} rolls, picks and dates of a text are "
                            "filled in; the others were left as written."
                        )
                    return written
                return str(make(found))
        return None

    def _waits(self, key: str) -> bool:
        """A known macro whose value this context lacks: left for a later expansion."""
        if _VARIABLE.match(key):
            return self.ctx.variables is None  # with variables: of a shape none has
        return (
            (key in _CARD and self.ctx.card is None)
            or (key in _CHAT | {"idle_duration"} and self.ctx.chat is None)
            or (key.startswith(_INSTRUCT_KINDS) and self.ctx.instruct is None)
            or (key == "model" and self.ctx.model is None)
            or (key == "maxprompt" and self.ctx.max_prompt is None)
        )

    def _group(self) -> str:
        return self.char if self.ctx.group is None else self.seal.close(self.ctx.group)

    def _card_field(self, name: str) -> str:
        """A card field with its own macros expanded once (as `baseChatReplace` does),
        without card macros, so a field naming itself stays as written."""
        if name not in self._fields:
            raw = getattr(self.ctx.card or CardFields(), name)
            inner = replace(
                self.ctx, card=None, char=self.seal.open(self.char), user=self.seal.open(self.user)
            )
            try:
                value = expand_bounded(raw, inner) if "{{" in raw or "<" in raw else raw
            except MacroBudgetError:
                value = raw
            self._fields[name] = self.seal.close(value)
        return self._fields[name]

    def _banned(self, found: re.Match[str]) -> str:
        if self.ctx.notes is not None:
            self.ctx.notes.add_banned(found.group(1))
        return ""

    def _choose(self, kind: str, listing: str) -> str:
        if "::" in listing:
            options = listing.split("::")
        else:
            escaped = listing.replace("\\,", "\0").split(",")
            options = [o.strip().replace("\0", ",") for o in escaped]
        if not options:
            return ""
        rng = stable_rng(listing) if kind == "pick" else self.rng()
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
        rng = self.rng()
        return str(sum(rng.randint(1, sides) for _ in range(count)) + bonus)
