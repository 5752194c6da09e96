"""Build the prompt for the next reply: card, persona, examples, lore and history, in budget.

The parts before "history" in `PromptSettings.order` form one system message at the start (the
stable prefix); the parts after it (by default activated lore, then post-history instructions)
form one system message after the history, or before the open reply when continuing. Lore
changes from turn to turn, so it sits where a change costs llama.cpp the least re-evaluation.

Tokens are counted piece by piece (each part, each message as the template renders it), never
the whole prompt, because the app's counter caches per string. Older messages are dropped in
chunks whose cut points are fixed positions in the chat (multiples of `drop_chunk`), so the
prompt's beginning stays identical for several turns and the KV cache can be reused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import accumulate
from random import Random
from typing import Any

from app.core.prompt.lore import activate_lore
from app.core.prompt.macros import MacroContext, expand_macros, stable_rng
from app.core.prompt.presets import ChatTemplate, Message, Rendered

DEFAULT_ORDER = ("system", "description", "personality", "scenario", "persona", "examples",
                 "history", "lore", "post_history")
PART_NAMES = frozenset(DEFAULT_ORDER)
DEFAULT_SYSTEM_PROMPT = ("Write {{char}}'s next reply in a fictional chat between {{char}} "
                         "and {{user}}.")
# How a card field is introduced (SillyTavern's default story string); {{text}} is the field.
DEFAULT_FORMATS = {"personality": "{{char}}'s personality: {{text}}",
                   "scenario": "Scenario: {{text}}"}
_START = re.compile(r"<START>", re.I)


def estimate_tokens(text: str) -> int:
    """A tokenizer-free guess (about 3.5 characters a token), for when no model is loaded."""
    return math.ceil(len(text) / 3.5)


@dataclass
class PromptSettings:
    order: list[str] = field(default_factory=lambda: list(DEFAULT_ORDER))
    system_prompt_default: str = DEFAULT_SYSTEM_PROMPT
    post_history_default: str = ""
    lore_scan_depth: int = 4
    lore_budget_tokens: int = 512
    drop_chunk: int = 8
    extra_stops: list[str] = field(default_factory=list)
    example_separator: str = "<START>"
    part_formats: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_FORMATS))


@dataclass
class PromptInput:
    card: dict[str, Any]  # the V3 card's `data`
    user_name: str = "User"
    persona: str = ""
    history: list[Message] = field(default_factory=list)  # oldest first, the active path
    continue_last: bool = False  # leave the last assistant message open


@dataclass
class Part:
    name: str
    tokens: int
    text: str


@dataclass
class BuiltPrompt:
    text: str
    stop: list[str]
    parts: list[Part]
    dropped_messages: int
    lore: list[str]
    tokens: int
    warnings: list[str] = field(default_factory=list)


def build_prompt(inp: PromptInput, template: ChatTemplate, count_tokens: Callable[[str], int],
                 n_ctx: int, max_new_tokens: int, settings: PromptSettings | None = None, *,
                 rng: Random | None = None,
                 clock: Callable[[], datetime] | None = None) -> BuiltPrompt:
    settings = settings or PromptSettings()
    count = _memo(count_tokens)
    char = str(inp.card.get("nickname") or inp.card.get("name") or "Character")
    warnings: list[str] = []
    ctx = MacroContext(char=char, user=inp.user_name, rng=rng, clock=clock, warn=warnings.append)
    history = _expand_history(inp.history, ctx)
    continue_last = _can_continue(history) if inp.continue_last else False
    if inp.continue_last and not continue_last:
        warnings.append("There is no reply to continue; a new one is written instead.")

    lore = activate_lore(inp.card.get("character_book"), [m.text for m in history],
                         scan_depth=settings.lore_scan_depth,
                         budget_tokens=settings.lore_budget_tokens, count_tokens=count,
                         expand=lambda text: expand_macros(text, ctx))
    warnings += lore.warnings
    texts = _part_texts(inp, settings, ctx, lore.text)
    head, tail = _split_order(settings.order, warnings)
    layout = _Layout(template, _join(texts[n] for n in head), _join(texts[n] for n in tail),
                     history, continue_last, char)

    budget = n_ctx - max_new_tokens
    start, rendered, kinds, costs = _fit(layout, count, budget, settings.drop_chunk)
    total = sum(costs)
    if total > budget:
        warnings.append(f"The prompt needs {total} tokens but {max(budget, 0)} fit (context "
                        f"{n_ctx} less {max_new_tokens} for the reply), even with every older "
                        "message left out.")
    parts = _parts(head, tail, texts, kinds, rendered.segments, costs, count, total)
    stops = [f"\n{inp.user_name}:", *template.stops,
             *(expand_macros(s, ctx) for s in settings.extra_stops)]
    return BuiltPrompt(text=rendered.text, stop=list(dict.fromkeys(s for s in stops if s)),
                       parts=parts, dropped_messages=start, lore=lore.fired, tokens=total,
                       warnings=warnings + rendered.warnings)


def _can_continue(history: list[Message]) -> bool:
    return bool(history) and history[-1].role == "assistant" and bool(history[-1].text)


@dataclass
class _Layout:
    template: ChatTemplate
    story: str
    tail: str
    history: list[Message]
    continue_last: bool
    char: str

    def render(self, start: int) -> tuple[Rendered, list[Any]]:
        """The prompt without history[:start]; kinds say what each segment is."""
        body: list[tuple[Any, Message]] = list(enumerate(self.history))[start:]
        if self.tail:  # after the history, or before the reply that is continued
            body.insert(len(body) - self.continue_last, ("tail", Message("system", self.tail)))
        if self.story:
            body.insert(0, ("story", Message("system", self.story)))
        rendered = self.template.render([m for _, m in body], add_generation_prompt=True,
                                        continue_last=self.continue_last,
                                        assistant_name=self.char)
        return rendered, [kind for kind, _ in body] + ["trailer"]

    @property
    def protected(self) -> int:
        """Messages before this index may be dropped: never the last user message or later."""
        users = [i for i, m in enumerate(self.history) if m.role == "user"]
        return users[-1] if users else max(0, len(self.history) - 1)


def _fit(layout: _Layout, count: Callable[[str], int], budget: int, chunk: int):
    """Drop the fewest chunks of old messages that make the prompt fit `budget`."""
    rendered, kinds = layout.render(0)
    costs = [count(s) for s in rendered.segments]
    per_message = [0] * len(layout.history)
    for kind, cost in zip(kinds, costs, strict=True):
        if isinstance(kind, int):
            per_message[kind] = cost
    dropped = [0, *accumulate(per_message)]
    cuts = [*range(0, layout.protected, max(1, chunk)), layout.protected]
    start = next((k for k in cuts if sum(costs) - dropped[k] <= budget), cuts[-1])
    for k in cuts[cuts.index(start):]:
        if k:
            rendered, kinds = layout.render(k)
            costs = [count(s) for s in rendered.segments]
        start = k
        if sum(costs) <= budget:
            break
    return start, rendered, kinds, costs


def _parts(head, tail, texts, kinds, segments, costs, count, total) -> list[Part]:
    def own(names):
        return [Part(n, count(texts[n]), texts[n]) for n in names if texts[n]]

    history = [(seg, cost) for kind, seg, cost in zip(kinds, segments, costs, strict=True)
               if isinstance(kind, int)]
    parts = own(head)
    if history:
        parts.append(Part("history", sum(c for _, c in history), "".join(s for s, _ in history)))
    parts += own(tail)
    wrapping = total - sum(p.tokens for p in parts)
    if wrapping > 0:  # what the template adds around the parts
        parts.append(Part("template", wrapping, ""))
    return parts


def _expand_history(history: list[Message], ctx: MacroContext) -> list[Message]:
    out = []
    for m in history:
        text = m.text
        if "{{" in text or "<" in text:  # dice in an old message roll the same every turn
            text = expand_macros(text, replace(ctx, rng=stable_rng(text)), "a chat message")
        name = m.name or {"user": ctx.user, "assistant": ctx.char}.get(m.role)
        out.append(Message(m.role, text.strip(), name))
    return out


def _part_texts(inp: PromptInput, settings: PromptSettings, ctx: MacroContext,
                lore: str) -> dict[str, str]:
    card = inp.card

    def field_(key: str) -> str:
        value = card.get(key)
        return value.strip() if isinstance(value, str) else ""

    def formatted(name: str, text: str) -> str:
        wrapper = settings.part_formats.get(name, "{{text}}")
        return expand_macros(wrapper.replace("{{text}}", text), ctx, name).strip() if text else ""

    def overridable(key: str, default: str) -> str:
        default = expand_macros(default, ctx, f"the default {key}").strip()
        own = field_(key)
        return expand_macros(own, replace(ctx, original=default), key).strip() if own else default

    return {
        "system": overridable("system_prompt", settings.system_prompt_default),
        "description": formatted("description", field_("description")),
        "personality": formatted("personality", field_("personality")),
        "scenario": formatted("scenario", field_("scenario")),
        "persona": formatted("persona", inp.persona.strip()),
        "examples": _examples(field_("mes_example"), settings.example_separator, ctx),
        "lore": lore,
        "post_history": overridable("post_history_instructions", settings.post_history_default),
    }


def _examples(raw: str, separator: str, ctx: MacroContext) -> str:
    blocks = [expand_macros(b.strip(), ctx, "mes_example") for b in _START.split(raw) if b.strip()]
    return "\n".join(f"{separator}\n{b}" if separator else b for b in blocks)


def _split_order(order: list[str], warnings: list[str]) -> tuple[list[str], list[str]]:
    unknown = [n for n in order if n not in PART_NAMES]
    if unknown:
        warnings.append(f"Unknown prompt parts ignored: {', '.join(map(str, unknown))}")
    names = list(dict.fromkeys(n for n in order if n in PART_NAMES))
    if "history" not in names:
        names.append("history")
    i = names.index("history")
    return names[:i], names[i + 1:]


def _join(texts) -> str:
    return "\n\n".join(t for t in texts if t)


def _memo(count_tokens: Callable[[str], int]) -> Callable[[str], int]:
    cache: dict[str, int] = {}

    def count(text: str) -> int:
        if not text:
            return 0
        if text not in cache:
            cache[text] = int(count_tokens(text))
        return cache[text]

    return count
