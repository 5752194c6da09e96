"""Build the prompt for the next reply: card, persona, examples, lore and history, in budget.

The parts before "history" in `PromptSettings.order` form one system message at the start (the
stable prefix); the parts after it (by default activated lore, then post-history instructions)
form one system message after the history, or before the open reply when continuing. Lore
changes from turn to turn, so it sits where a change costs llama.cpp the least re-evaluation.

Tokens are counted piece by piece (each part, each message as the template renders it), never
the whole prompt, because the app's counter caches per string. Fitting follows SillyTavern's
order (see `fit.py`): the permanent part, then the history newest first one message at a
time, then the example dialogue if room is left; a prompt never exceeds the budget.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache, partial
from random import Random
from typing import Any

from app.core.prompt.cleanup import normalize_text
from app.core.prompt.example_turns import chat_start, example_turns
from app.core.prompt.fit import Counter, Layout, fit, suggest_context
from app.core.prompt.history_tail import Earlier, history_reach
from app.core.prompt.instruct import InstructTemplate
from app.core.prompt.macros import MacroContext, MacroInput, Variables, expand_macros, stable_rng
from app.core.prompt.presets import ChatTemplate, Message, Preset
from app.core.prompt.prompt_macros import Once, history_writes, prompt_context, read_only
from app.core.prompt.templates import JinjaChatTemplate
from app.core.prompt.worldinfo import TraceItem, WorldInfoSettings
from app.core.prompt.worldinfo.in_prompt import LoreInput, PromptLore, lore_for_prompt
from app.core.prompt.worldinfo.notes import NotePosition

# "lore_before"/"lore_after" are world info before and after the character definition, as in
# SillyTavern's story string; lore at other positions goes to the examples, the author's note
# or into the chat at its depth. "lore" is the old name of the block after the history: it is
# accepted in saved orders and stays empty.
DEFAULT_ORDER = (
    "system",
    "lore_before",
    "description",
    "personality",
    "scenario",
    "lore_after",
    "persona",
    "examples",
    "history",
    "post_history",
)
PART_NAMES = frozenset(DEFAULT_ORDER) | {"lore", "authors_note", "authors_note_before"}
DEFAULT_SYSTEM_PROMPT = (
    "Write {{char}}'s next reply in a fictional chat between {{char}} and {{user}}."
)
# How a card field is introduced (SillyTavern's default story string); {{text}} is the field.
DEFAULT_FORMATS = {
    "personality": "{{char}}'s personality: {{text}}",
    "scenario": "Scenario: {{text}}",
}
_START = re.compile(r"<START>", re.I)


def estimate_tokens(text: str) -> int:
    """A tokenizer-free guess (about 3.5 characters a token), for when no model is loaded."""
    return math.ceil(len(text) / 3.5)


@dataclass
class PromptSettings:
    order: list[str] = field(default_factory=lambda: list(DEFAULT_ORDER))
    system_prompt_default: str = DEFAULT_SYSTEM_PROMPT
    post_history_default: str = ""
    lore_scan_depth: int = 2  # SillyTavern's default
    lore_budget_tokens: int = 512  # a cap on lore; its share of the context is in world_info
    world_info: WorldInfoSettings | None = None  # None: the defaults, with the two above
    pin_examples: bool = False  # always send the example dialogue, dropping history instead
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
    lore: LoreInput = field(default_factory=LoreInput)  # the chat's world info, notes, seed
    macros: MacroInput = field(default_factory=MacroInput)  # variables, chat state, model
    earlier: Earlier = field(default_factory=Earlier)  # what the path holds before `history`


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
    reply_tokens: int = 0  # what was kept for the reply: pass it on as max_tokens
    fits: bool = True  # False only when even the shortened card and message are too big
    # Characters at the start of `text` that only an edit changes (system prompt, card):
    # the engine may shift its KV cache past dropped history only when these match.
    permanent_chars: int = 0
    # every entry: fired or why not (a sequence made on first use)
    lore_trace: Sequence[TraceItem] = field(default_factory=list)
    lore_state: dict[str, Any] = field(default_factory=dict)  # timed effects, for this branch
    # Macros left as written because nobody knows them, for the inspector to list.
    unknown_macros: list[str] = field(default_factory=list)
    # The words of {{banned "..."}} macros: taken out of the text; the engine has no list of
    # banned strings to give them to, so they are only shown.
    banned_words: list[str] = field(default_factory=list)
    # The chat's and global variables after this prompt's {{setvar}}s: saved once it is sent.
    variables: Variables | None = None


def build_prompt(
    inp: PromptInput,
    template: ChatTemplate,
    count_tokens: Callable[[str], int],
    n_ctx: int,
    max_new_tokens: int,
    settings: PromptSettings | None = None,
    *,
    rng: Random | None = None,
    clock: Callable[[], datetime] | None = None,
) -> BuiltPrompt:
    settings = settings or PromptSettings()
    if inp.lore.scenario:  # the chat's own scenario (SillyTavern: `chat_metadata.scenario ||`)
        inp = replace(inp, card={**inp.card, "scenario": inp.lore.scenario})
    count = Counter(count_tokens, getattr(count_tokens, "many", None))
    char = str(inp.card.get("nickname") or inp.card.get("name") or "Character")
    warnings: list[str] = []
    reply = _reply_reserve(n_ctx, max_new_tokens, warnings)
    instruct = template if isinstance(template, InstructTemplate) else None
    ctx = prompt_context(
        inp,
        char=char,
        preset=instruct.preset if instruct else None,
        context=instruct.context if instruct else None,
        system_default=settings.system_prompt_default,
        max_prompt=n_ctx - reply,
        rng=rng,
        clock=clock,
        warn=warnings.append,
    )
    # The card first, then the chat, as `Generate` reads them; its story string writes the
    # headings of an instruct format.
    formats = replace(settings, part_formats={}) if instruct else settings
    own_texts = _part_texts(inp, formats, ctx, "")
    reach = history_reach(n_ctx)
    history = _expand_history(inp.history, ctx, reach, inp.earlier)
    continue_last = _can_continue(history) if inp.continue_last else False
    if inp.continue_last and not continue_last:
        warnings.append("There is no reply to continue; a new one is written instead.")

    lore = lore_for_prompt(
        inp.card,
        inp.lore,
        history,
        settings=_world_info(settings),
        max_context=n_ctx - reply,
        count_tokens=count,
        expand=Once(ctx, "lore"),
        continue_last=continue_last,
        user=inp.user_name,
        char=char,
        earlier=inp.earlier,
    )
    warnings += lore.result.warnings
    history = lore.history
    history = _name_other_speakers(history, char, template, reach)
    texts = {**own_texts, **lore.texts}
    raw_examples = inp.card.get("mes_example")
    turns = None
    head, tail = _split_order(settings.order, warnings)
    head = _with_lore_parts(head, tail, lore.note_position)
    if isinstance(template, InstructTemplate):
        template = replace(template, user_name=inp.user_name)
        examples = _instruct_examples(template, lore, raw_examples, ctx, inp.user_name, char)
    elif isinstance(template, (JinjaChatTemplate, Preset)):  # real turns, as SillyTavern's
        # chat completion does for a model that has only roles
        raw = raw_examples if isinstance(raw_examples, str) else ""
        examples, turns = example_turns(
            [*lore.examples_before, raw, *lore.examples_after],
            Once(ctx, "mes_example"),
            settings.example_separator,
            inp.user_name,
            char,
        )
    else:
        raw = raw_examples if isinstance(raw_examples, str) else ""
        examples = _lore_examples(lore, raw, settings.example_separator, ctx)
    if "examples" not in head:
        examples, turns = [], None
    layout = Layout(template, head, tail, texts, examples, history, continue_last, char)
    layout.earlier = inp.earlier.messages
    if turns is not None:
        layout.example_turns, layout.example_end = turns, chat_start()
    if isinstance(template, InstructTemplate):
        layout.story_renderer = partial(
            template.story, user=inp.user_name, char=char, expand=Once(ctx, "the story string")
        )

    budget = n_ctx - reply
    fitted = fit(
        layout,
        count,
        budget,
        pin_examples=settings.pin_examples,
        context_hint=lambda need: _raise_hint(need, reply, n_ctx),
    )
    warnings += fitted.warnings
    rendered, total = fitted.rendered, fitted.total
    texts["examples"] = layout.part_text("examples", fitted.n_examples)
    parts = _parts(head, tail, texts, fitted.kinds, rendered.segments, fitted.costs, count, total)
    own_stops = (
        template.stop_strings(inp.user_name, char)
        if isinstance(template, InstructTemplate)
        else template.stops
    )
    stops = [
        f"\n{inp.user_name}:",
        *own_stops,
        *(expand_macros(s, ctx) for s in settings.extra_stops),
    ]
    notes = ctx.notes
    return BuiltPrompt(
        unknown_macros=list(notes.unknown) if notes else [],
        banned_words=list(notes.banned) if notes else [],
        variables=ctx.variables,
        text=rendered.text,
        stop=list(dict.fromkeys(s for s in stops if s)),
        parts=parts,
        dropped_messages=inp.earlier.messages + fitted.start,
        lore=lore.result.fired,
        lore_trace=lore.result.trace,
        lore_state=lore.result.timed_state,
        tokens=total,
        warnings=warnings + rendered.warnings,
        reply_tokens=reply,
        fits=total <= budget,
        permanent_chars=len(rendered.segments[0])
        if fitted.kinds and fitted.kinds[0] == "story"
        else 0,
    )


def _world_info(settings: PromptSettings) -> WorldInfoSettings:
    if settings.world_info is not None:
        return settings.world_info
    return WorldInfoSettings(
        depth=settings.lore_scan_depth, budget_cap=max(0, settings.lore_budget_tokens)
    )


def _with_lore_parts(head: list[str], tail: list[str], note: NotePosition) -> list[str]:
    """The head with the lore parts where SillyTavern's story string has them, unless the
    order names them itself, and the author's note at the start or end when it is there."""
    head = [n for n in head if n not in ("authors_note", "authors_note_before")]
    if "lore_before" not in head + tail:
        at = head.index("description") if "description" in head else int("system" in head)
        head.insert(at, "lore_before")
    if "lore_after" not in head + tail:
        after = [
            i + 1
            for i, n in enumerate(head)
            if n in ("lore_before", "description", "personality", "scenario")
        ]
        head.insert(max(after, default=len(head)), "lore_after")
    if note == NotePosition.BEFORE_PROMPT:
        head.insert(0, "authors_note_before")
    elif note == NotePosition.IN_PROMPT:
        head.append("authors_note")
    return head


def _lore_examples(lore: PromptLore, raw: str, separator: str, ctx: MacroContext) -> list[str]:
    """The card's example blocks with lore's before and after them (SillyTavern adds each
    lore entry as its own example text)."""

    def blocks(texts: list[str]) -> list[str]:
        return [b for text in texts for b in _examples(text, separator, ctx)]

    return (
        blocks(lore.examples_before) + _examples(raw, separator, ctx) + blocks(lore.examples_after)
    )


def _name_other_speakers(
    history: list[Message], char: str, template: ChatTemplate, reach: int
) -> list[Message]:
    """Another group member's line says who speaks. Instruct presets and the plain format
    write names themselves; chat templates (ChatML, a GGUF's Jinja) only have roles, so the
    name goes before the text, as SillyTavern writes `Name: text` for a group."""
    if isinstance(template, InstructTemplate) or "{name}" in str(
        getattr(template, "assistant", "")
    ):
        return history
    cut = max(0, len(history) - reach)  # older messages cannot reach the prompt
    return history[:cut] + [
        Message(m.role, f"{m.name}: {m.text}", m.name)
        if m.role == "assistant" and m.name and m.name != char
        else m
        for m in history[cut:]
    ]


def _instruct_examples(
    template: InstructTemplate, lore: PromptLore, raw: Any, ctx: MacroContext, user: str, char: str
) -> list[str]:
    """Example dialogue as real turns of the instruct format (SillyTavern's way)."""
    texts = [*lore.examples_before, raw if isinstance(raw, str) else "", *lore.examples_after]
    return [
        block
        for text in texts
        if text.strip()
        for block in template.example_blocks(expand_macros(text, ctx, "mes_example"), user, char)
    ]


def _reply_reserve(n_ctx: int, max_new_tokens: int, warnings: list[str]) -> int:
    """The tokens kept for the reply: at most three quarters of the context, so a reply
    length set above the context still leaves room for the card and the newest message."""
    most = max(1, n_ctx * 3 // 4)
    if max_new_tokens <= most:
        return max(0, max_new_tokens)
    warnings.append(
        f"The reply length ({max_new_tokens} tokens) does not leave room for the "
        f"prompt in a {n_ctx}-token context; replies are cut at {most} tokens."
    )
    return most


def _raise_hint(need: int, reply: int, n_ctx: int) -> str:
    wanted = suggest_context(need, reply)
    if wanted <= n_ctx:
        return "lower the reply length in Settings → Generation"
    return f"raise Context size to {wanted} in Settings → Model"


def _can_continue(history: list[Message]) -> bool:
    return bool(history) and history[-1].role == "assistant" and bool(history[-1].text)


def _parts(
    head: list[str],
    tail: list[str],
    texts: dict[str, str],
    kinds: list[Any],
    segments: list[str],
    costs: list[int],
    count: Counter,
    total: int,
) -> list[Part]:
    def own(names: list[str]) -> list[Part]:
        return [Part(n, count(texts[n]), texts[n]) for n in names if texts[n]]

    history = [
        (seg, cost)
        for kind, seg, cost in zip(kinds, segments, costs, strict=True)
        if isinstance(kind, int)
    ]
    turns = [(s, c) for k, s, c in zip(kinds, segments, costs, strict=True) if k == "example"]
    parts = own(head)
    if turns:  # example dialogue as turns of its own, after the story
        parts.append(Part("examples", sum(c for _, c in turns), "".join(s for s, _ in turns)))
    if history:
        parts.append(Part("history", sum(c for _, c in history), "".join(s for s, _ in history)))
    parts += own(tail)
    wrapping = total - sum(p.tokens for p in parts)
    if wrapping > 0:  # what the template adds around the parts
        parts.append(Part("template", wrapping, ""))
    return parts


def _expand_history(
    history: list[Message], ctx: MacroContext, reach: int, earlier: Earlier
) -> list[Message]:
    """Macros filled in and text normalised, for the newest `reach` messages.

    Every message costs at least a token, so no more than n_ctx of the newest can fit, and
    lore scans at most MAX_SCAN_DEPTH; older ones stay as stored (lore only counts them),
    which keeps a 100,000-message chat as cheap as a short one."""
    cut = max(0, len(history) - reach)
    out = history[:cut]
    names = {"user": ctx.user, "assistant": ctx.char}
    writes = history_writes(history, earlier.messages)
    for i, m in enumerate(history[cut:], cut):
        text = m.text
        if "{{" in text or "<" in text:  # dice in an old message roll the same every turn
            own = ctx if writes(i) else read_only(ctx)
            text = expand_macros(text, replace(own, rng=stable_rng(text)), "a chat message")
            out.append(Message(m.role, normalize_text(text).strip(), m.name or names.get(m.role)))
        else:  # the same messages turn after turn: remembered, as they are sent
            out.append(_plain(m, names.get(m.role)))
    return out


@lru_cache(maxsize=65536)
def _plain(m: Message, default_name: str | None) -> Message:
    """A message without macros as SillyTavern sends it (normalised, trimmed, named)."""
    return Message(m.role, normalize_text(m.text).strip(), m.name or default_name)


def _part_texts(
    inp: PromptInput, settings: PromptSettings, ctx: MacroContext, lore: str
) -> dict[str, str]:
    card = inp.card

    def field_(key: str) -> str:
        value = card.get(key)
        return normalize_text(value).strip() if isinstance(value, str) else ""

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
        "persona": formatted("persona", normalize_text(inp.persona).strip()),
        "examples": "",  # example blocks are fitted one by one: see build_prompt
        "lore": lore,  # no longer filled: lore has its positions (see DEFAULT_ORDER)
        "lore_before": "",
        "lore_after": "",
        "authors_note": "",
        "authors_note_before": "",
        "post_history": overridable("post_history_instructions", settings.post_history_default),
    }


def _examples(raw: str, separator: str, ctx: MacroContext) -> list[str]:
    blocks = [expand_macros(b.strip(), ctx, "mes_example") for b in _START.split(raw) if b.strip()]
    return [f"{separator}\n{b}" if separator else b for b in blocks]


def _split_order(order: list[str], warnings: list[str]) -> tuple[list[str], list[str]]:
    unknown = [n for n in order if n not in PART_NAMES]
    if unknown:
        warnings.append(f"Unknown prompt parts ignored: {', '.join(map(str, unknown))}")
    names = list(dict.fromkeys(n for n in order if n in PART_NAMES))
    if "history" not in names:
        names.append("history")
    i = names.index("history")
    return names[:i], names[i + 1 :]


def _join(texts: Iterable[str]) -> str:
    return "\n\n".join(t for t in texts if t)
