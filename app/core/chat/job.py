"""From a chat's stored state to a prompt job the generation worker can run.

The job is built on the GUI thread from a snapshot (card, persona, active path), and run
on the worker thread, where the engine's tokenizer counts the pieces. Counts are cached
per text, so a long chat is tokenized once and each turn only counts what is new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.core.appdata.settings import Settings
from app.core.engine import ModelInfo, SamplingParams
from app.core.engine.presets import apply_overrides
from app.core.prompt import (
    BuiltPrompt,
    MacroContext,
    PromptInput,
    PromptSettings,
    build_prompt,
    expand_macros,
    preset,
    template_from_gguf,
)
from app.core.prompt import Message as PromptMessage
from app.core.store import Message, Store


class TokenCounter:
    """Caches counts from the engine's tokenizer; the cache lives as long as the model."""

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def bind(self, count_many: Callable[[list[str]], list[int]]) -> Callable[[str], int]:
        def count(text: str) -> int:
            if text not in self._cache:
                self._cache[text] = count_many([text])[0]
            return self._cache[text]

        return count


@dataclass
class PromptJob:
    inp: PromptInput
    info: ModelInfo
    settings: Settings
    counter: TokenCounter

    def __call__(self, count_many: Callable[[list[str]], list[int]]) -> BuiltPrompt:
        s = self.settings
        if s.template == "auto":
            template = template_from_gguf(self.info.chat_template, self.info.bos, self.info.eos)
        else:
            template = preset(s.template)
        return build_prompt(self.inp, template, self.counter.bind(count_many),
                            n_ctx=self.info.n_ctx, max_new_tokens=s.max_tokens,
                            settings=prompt_settings(s))


IMPERSONATE_INSTRUCTION = ("[Write {{user}}'s next message in the chat, in {{user}}'s voice "
                           "and from their point of view. Write only what {{user}} says and "
                           "does, never {{char}}'s part.]")


def prompt_input(card: dict, settings: Settings, history: list[Message],
                 instruction: str | None = None,
                 persona: tuple[str, str] | None = None) -> PromptInput:
    """What the prompt builder needs; `instruction` is a last system line (impersonation).

    `persona` is the chat's (name, description), from `chat_persona_of`; without one the
    settings' user name and persona text are used, as before personas existed."""
    # Stored system lines are SillyTavern's hidden (is_system) messages: never sent.
    messages = [PromptMessage(role=m.role, text=m.text) for m in history
                if m.text and m.role != "system"]
    if instruction:
        messages.append(PromptMessage(role="system", text=instruction))
    name, description = persona or (settings.user_name, settings.persona)
    return PromptInput(card=card, user_name=name or settings.user_name, persona=description,
                       history=messages)


def chat_persona_of(store: Store, chat_id: int) -> tuple[str, str] | None:
    """The chat's persona (its own choice, else the default) as (name, description), or
    None when the user has made no persona yet."""
    row = store.chat_persona(chat_id)
    return (row["name"], row["description"] or "") if row is not None else None


def prompt_settings(settings: Settings) -> PromptSettings:
    """The user's prompt choices, over the builder's defaults."""
    base = PromptSettings()
    return PromptSettings(
        order=list(settings.prompt_order) or base.order,
        system_prompt_default=settings.system_prompt or base.system_prompt_default,
        lore_scan_depth=settings.lore_scan_depth, lore_budget_tokens=settings.lore_budget_tokens,
        extra_stops=[s for s in settings.stop_strings if s])


def greetings(card: dict, user_name: str) -> list[str]:
    """The card's first message and alternate greetings, macros filled in, as chat roots."""
    ctx = MacroContext(char=str(card.get("nickname") or card.get("name") or ""), user=user_name)
    texts = [("first_mes", card.get("first_mes") or "")]
    texts += [(f"alternate_greetings[{i}]", t)
              for i, t in enumerate(card.get("alternate_greetings") or [])]
    # Bounded: over budget, a greeting is stored as written (with a logged warning).
    return [expand_macros(t, ctx, f"the card's {where}") for where, t in texts if t] or [""]


SAMPLER_KEYS = ("max_tokens", "temperature", "top_p", "min_p", "top_k", "typical_p",
                "repeat_penalty", "repeat_last_n", "presence_penalty", "frequency_penalty",
                "mirostat_mode", "mirostat_tau", "mirostat_eta", "seed")


def sampling_from(settings: Settings, stop: list[str],
                  chat_overrides: dict | None = None) -> SamplingParams:
    """The settings' samplers, then the chat's own overrides (checked) on top."""
    base = SamplingParams(**{k: getattr(settings, k) for k in SAMPLER_KEYS},
                          stop=tuple(stop))
    return apply_overrides(base, chat_overrides) if chat_overrides else base
