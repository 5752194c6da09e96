"""From a chat's stored state to a prompt job the generation worker can run.

The job is built on the GUI thread from a snapshot (card, persona, settings) and run on
the worker thread, which first reads the chat's path (`prepare`: a long chat's history is
too big to read on the GUI thread) and then counts the pieces with the engine's
tokenizer. Counts are cached per text, so a long chat is tokenized once and each turn
only counts what is new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from app.core.appdata.settings import Settings
from app.core.engine import ModelInfo, SamplingParams
from app.core.engine.presets import apply_overrides
from app.core.hub.catalog_preset import catalog_preset
from app.core.prompt import (
    BuiltPrompt,
    ChatTemplate,
    MacroContext,
    PromptInput,
    PromptSettings,
    build_prompt,
    expand_macros,
    preset,
    template_from_gguf,
)
from app.core.prompt import Message as PromptMessage
from app.core.prompt.cleanup import Cleaned, CleanupSettings, clean_reply
from app.core.prompt.history_tail import Earlier
from app.core.prompt.instruct import (
    InstructTemplate,
    available_instruct,
    instruct_template,
    shipped_instruct,
)
from app.core.prompt.macros import Variables
from app.core.prompt.worldinfo import Strategy, WorldInfoSettings
from app.core.prompt.worldinfo.in_prompt import LoreInput
from app.core.store import Message, Store
from app.core.store.reader import PathTail


class PromptDoesNotFit(ValueError):
    """Even the shortened card and newest message do not fit; the message says what to raise."""


class TokenCounter:
    """Caches counts from the engine's tokenizer; the cache lives as long as the model.

    `bind` gives the builder a counter with a `many` method, so the pieces it needs are
    counted in one round trip to the engine instead of one per message.
    """

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def bind(self, count_many: Callable[[list[str]], list[int]]) -> _BoundCounter:
        return _BoundCounter(self._cache, count_many)


class _BoundCounter:
    def __init__(self, cache: dict[str, int], count_many: Callable[[list[str]], list[int]]) -> None:
        self._cache, self._count_many = cache, count_many

    def __call__(self, text: str) -> int:
        if text not in self._cache:
            self._cache[text] = int(self._count_many([text])[0])
        return self._cache[text]

    def many(self, texts: list[str]) -> list[int]:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            self._cache.update(zip(todo, map(int, self._count_many(todo)), strict=True))
        return [self._cache[t] for t in texts]


@dataclass
class PromptJob:
    inp: PromptInput
    info: ModelInfo
    settings: Settings
    counter: TokenCounter
    used_template: ChatTemplate | None = None  # set when the job runs
    built: BuiltPrompt | None = None
    # Runs first, on the worker thread: reads what is too big to read on the GUI thread (a
    # long chat's whole path) into `inp`.
    prepare: Callable[[PromptInput], PromptInput] | None = None

    def __call__(self, count_many: Callable[[list[str]], list[int]]) -> BuiltPrompt:
        """Build, then count the whole prompt once: pieces counted apart can add up to fewer
        tokens than the joined text (merges across their borders), and the engine refuses a
        prompt over the context, so the budget shrinks by what was missing and it is rebuilt."""
        if self.prepare is not None:
            self.inp, self.prepare = self.prepare(self.inp), None
        template, notes = self.template()
        self.used_template = template
        count = self.counter.bind(count_many)
        n_ctx = self.info.n_ctx - 1  # the BOS token the engine adds when it tokenizes
        for _ in range(3):
            built = build_prompt(
                self.inp,
                template,
                count,
                n_ctx=n_ctx,
                max_new_tokens=self.settings.max_tokens,
                settings=prompt_settings(self.settings),
            )
            missing = int(count_many([built.text])[0]) - built.tokens
            if missing <= 0:
                break
            n_ctx -= missing
        built.warnings[:0] = notes
        self.built = built
        if not built.fits:  # said in words, never llama.cpp's "more than the context"
            raise PromptDoesNotFit(
                next(
                    (w for w in reversed(built.warnings) if "Context size" in w), built.warnings[-1]
                )
            )
        return built

    def clean(self, raw: str) -> Cleaned:
        """The finished reply after SillyTavern's clean-up, with the raw text kept."""
        used = self.used_template
        built = self.built
        s = self.settings
        return clean_reply(
            raw,
            char=str(self.inp.card.get("nickname") or self.inp.card.get("name") or ""),
            user=self.inp.user_name,
            stops=built.stop if built else (),
            instruct=used.preset if isinstance(used, InstructTemplate) else None,
            settings=CleanupSettings(
                trim_names=s.trim_reply_names,
                trim_incomplete_sentences=s.trim_incomplete_sentences,
                single_line=s.single_line,
            ),
        )

    def template(self) -> tuple[ChatTemplate, list[str]]:
        """The chosen format: a built-in preset, one of SillyTavern's instruct presets, or
        "auto": the model's own template. A model without one is said so, and gets the
        preset its catalog names (else the closest guess) rather than a silent ChatML."""
        s, user = self.settings, self.inp.user_name
        name = s.template
        if name != "auto":
            if name in available_instruct(s.instruct_presets):
                return instruct_template(
                    name,
                    s.context_template or None,
                    user_name=user,
                    extra_instruct=s.instruct_presets,
                    extra_context=s.context_presets,
                ), []
            try:
                return preset(name), []
            except KeyError:  # a saved preset since removed: the model's own, and say so
                template, notes = self._model_template(user)
                return template, [
                    f"The chat template {name!r} no longer exists; the "
                    f"{template.name} format is used.",
                    *notes,
                ]
        return self._model_template(user)

    def _model_template(self, user: str) -> tuple[ChatTemplate, list[str]]:
        if (self.info.chat_template or "").strip():
            return template_from_gguf(self.info.chat_template, self.info.bos, self.info.eos), []
        named = catalog_preset(self.info.path)
        if named in shipped_instruct():
            return instruct_template(named, user_name=user), [
                f"This model has no chat template of its own; its catalog names the {named} "
                "format, which is used. Another can be chosen under Chat template in "
                "Settings → Prompt."
            ]
        template = template_from_gguf(None, self.info.bos, self.info.eos)
        return template, [
            f"This model has no chat template of its own; the {template.name} "
            "format is a guess. Choose the model's format under Chat template in "
            "Settings → Prompt."
        ]


IMPERSONATE_INSTRUCTION = (
    "[Write {{user}}'s next message in the chat, in {{user}}'s voice "
    "and from their point of view. Write only what {{user}} says and "
    "does, never {{char}}'s part.]"
)


def prompt_input(
    card: dict[str, Any],
    settings: Settings,
    history: list[Message],
    instruction: str | None = None,
    persona: tuple[str, str] | None = None,
    lore: LoreInput | None = None,
    earlier: Earlier | None = None,
) -> PromptInput:
    """What the prompt builder needs; `instruction` is a last system line (impersonation).

    `persona` is the chat's (name, description), from `chat_persona_of`; without one the
    settings' user name and persona text are used, as before personas existed. `earlier`
    counts what the path holds before `history` when only its tail was read (`earlier_of`)."""
    # Stored system lines are SillyTavern's hidden (is_system) messages: never sent.
    char = str(card.get("nickname") or card.get("name") or "")
    messages = [prompt_message(m, char) for m in history if _sent(m)]
    if instruction:
        messages.append(PromptMessage(role="system", text=instruction))
    name, description = persona or (settings.user_name, settings.persona)
    return PromptInput(
        card=card,
        user_name=name or settings.user_name,
        persona=description,
        history=messages,
        lore=lore or LoreInput(),
        earlier=earlier or Earlier(),
    )


def _sent(m: Message) -> bool:
    return bool(m.text) and m.role != "system"


@dataclass(frozen=True)
class PromptIds:
    """The ids of the messages a prompt was built from, in order, and how many the path sends
    before them (only a long chat's tail is read): the builder's `dropped_messages` counts
    from the path's start."""

    ids: list[int] = field(default_factory=list)
    before: int = 0

    def first_kept(self, dropped: int) -> int | None:
        """The id of the oldest message still in the prompt, None when none was dropped
        (past the last id when all were)."""
        at = dropped - self.before
        if dropped <= 0 or not self.ids:
            return None
        return self.ids[max(at, 0)] if at < len(self.ids) else self.ids[-1] + 1


def sent_ids(history: list[Message]) -> list[int]:
    """The ids of the stored messages `prompt_input` sends, in order."""
    return [m.id for m in history if _sent(m)]


def earlier_of(tail: PathTail) -> Earlier:
    """The builder's counts of the path before a tail read (`Reader.history_tail`)."""
    return Earlier(tail.sent_before, tail.user_before)


def prompt_message(m: Message, char: str) -> PromptMessage:
    """A stored message as the prompt sees it. Lines imported from SillyTavern keep their
    speaker: a narrator line (`extra.type: "narrator"`) is a system turn without a name,
    another group member's line is under that member's name, never the card character's."""
    stored = m.extra or {}
    raw_extra = stored.get("extra")
    st_extra: dict[str, Any] = raw_extra if isinstance(raw_extra, dict) else {}
    if m.role == "assistant" and st_extra.get("type") == "narrator":
        return PromptMessage(role="system", text=m.text)
    name = stored.get("name")
    if isinstance(name, str) and name and m.role == "assistant" and name != char:
        return PromptMessage(role="assistant", text=m.text, name=name)
    return PromptMessage(role=m.role, text=m.text)


def chat_persona_of(store: Store, chat_id: int) -> tuple[str, str] | None:
    """The chat's persona (its own choice, else the default) as (name, description), or
    None when the user has made no persona yet."""
    row = store.personas.of_chat(chat_id)
    return (row.name, row.description or "") if row is not None else None


def prompt_settings(settings: Settings) -> PromptSettings:
    """The user's prompt choices, over the builder's defaults."""
    base = PromptSettings()
    return PromptSettings(
        order=list(settings.prompt_order) or base.order,
        system_prompt_default=settings.system_prompt or base.system_prompt_default,
        lore_scan_depth=settings.lore_scan_depth,
        lore_budget_tokens=settings.lore_budget_tokens,
        world_info=world_info_settings(settings),
        pin_examples=settings.pin_examples,
        extra_stops=[s for s in settings.stop_strings if s],
    )


def world_info_settings(settings: Settings) -> WorldInfoSettings:
    """The user's world-info choices, SillyTavern's `world_info_*` settings: depth, budget
    share and cap, recursion, whole words, case, names, min activations, and the merge order
    of global and character books."""
    strategy = {"evenly": Strategy.EVENLY, "global_first": Strategy.GLOBAL_FIRST}.get(
        settings.lore_strategy, Strategy.CHARACTER_FIRST
    )
    return WorldInfoSettings(
        depth=settings.lore_scan_depth,
        budget_percent=settings.lore_budget_percent,
        budget_cap=max(0, settings.lore_budget_tokens),
        recursive=settings.lore_recursive,
        whole_words=settings.lore_whole_words,
        case_sensitive=settings.lore_case_sensitive,
        include_names=settings.lore_include_names,
        min_activations=max(0, settings.lore_min_activations),
        min_activations_depth_max=max(0, settings.lore_min_activations_depth_max),
        max_recursion_steps=max(0, settings.lore_max_recursion_steps),
        use_group_scoring=settings.lore_group_scoring,
        strategy=strategy,
    )


def greetings(
    card: dict[str, Any], user_name: str, variables: Variables | None = None
) -> list[str]:
    """The card's first message and alternate greetings, macros filled in, as chat roots.

    With `variables`, the first greeting's `{{setvar}}`s write them (SillyTavern runs the
    shown greeting's macros when it shows it); the others only read. Without, variable
    macros are left for the prompt."""
    ctx = MacroContext(char=str(card.get("nickname") or card.get("name") or ""), user=user_name)
    texts = [("first_mes", card.get("first_mes") or "")]
    texts += [
        (f"alternate_greetings[{i}]", t)
        for i, t in enumerate(card.get("alternate_greetings") or [])
    ]
    out: list[str] = []
    for where, text in texts:
        if not text:
            continue
        own = variables if variables is None or not out else variables.reader()
        # Bounded: over budget, a greeting is stored as written (with a logged warning).
        out.append(expand_macros(text, replace(ctx, variables=own), f"the card's {where}"))
    return out or [""]


SAMPLER_KEYS = (
    "max_tokens",
    "temperature",
    "top_p",
    "min_p",
    "top_k",
    "typical_p",
    "repeat_penalty",
    "repeat_last_n",
    "presence_penalty",
    "frequency_penalty",
    "mirostat_mode",
    "mirostat_tau",
    "mirostat_eta",
    "seed",
    "dry_multiplier",
    "dry_base",
    "dry_allowed_length",
    "dry_penalty_last_n",
    "dry_sequence_breakers",  # text in the settings, SillyTavern's JSON list
    "xtc_threshold",
    "xtc_probability",
)


def sampling_from(
    settings: Settings, stop: list[str], chat_overrides: dict[str, Any] | None = None
) -> SamplingParams:
    """The settings' samplers, then the chat's own overrides (checked) on top."""
    base = SamplingParams(**{k: getattr(settings, k) for k in SAMPLER_KEYS}, stop=tuple(stop))
    return apply_overrides(base, chat_overrides) if chat_overrides else base
