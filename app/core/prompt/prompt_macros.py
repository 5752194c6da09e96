"""The macro context of one prompt: names, the card's fields, the chat's state and
variables, the instruct preset's sequences (see `app.core.prompt.macros`).

Variables are worked on in a copy (`BuiltPrompt.variables`), which the chat saves once the
prompt is sent. A text is expanded once per build, however often the fitting renders it, so
an `{{incvar}}` counts one per prompt. In the history, writes run only in the newest turn
(the last user message and after) and, on the first reply, in the greeting: SillyTavern runs
a message's macros once, when it is sent (and the greeting's on the first generation), so an
older message's `{{addvar}}` must not add again on every turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from random import Random
from typing import TYPE_CHECKING, Any

from app.core.prompt.instruct import InstructPreset
from app.core.prompt.macros import (
    CardFields,
    ChatState,
    MacroContext,
    MacroNotes,
    Variables,
    chat_state,
    expand_macros,
    instruct_values,
)
from app.core.prompt.presets import Message
from app.core.prompt.story_string import ContextTemplate

if TYPE_CHECKING:  # the builder imports this module
    from app.core.prompt.builder import PromptInput

# The headings SillyTavern's chat completion gives example dialogue (`new_example_chat_prompt`)
# and the chat after it (`new_chat_prompt`), for formats without a context template.
EXAMPLE_CHAT = "[Example Chat]"
NEW_CHAT = "[Start a new Chat]"
_STATE_TAIL = 64  # the newest messages the chat-state macros look at


def prompt_context(
    inp: PromptInput,
    *,
    char: str,
    preset: InstructPreset | None,
    context: ContextTemplate | None,
    system_default: str,
    max_prompt: int,
    rng: Random | None,
    clock: Callable[[], datetime] | None,
    warn: Callable[[str], None],
) -> MacroContext:
    """`preset`/`context`: the instruct preset and context template when the format is
    one (else None)."""
    card = inp.card
    macros = inp.macros
    names = MacroContext(char=char, user=inp.user_name, rng=rng, clock=clock, warn=warn)
    own_system = _text(card.get("system_prompt"))
    system = expand_macros(own_system or system_default, names, "the system prompt")
    default = expand_macros(system_default, names, "the system prompt")
    separator = context.example_separator if context else ""
    chat_start = context.chat_start if context else ""
    return replace(
        names,
        group=macros.group,
        card=CardFields(
            description=_text(card.get("description")),
            personality=_text(card.get("personality")),
            scenario=_text(card.get("scenario")),
            persona=(inp.persona or "").strip(),
            mes_examples=_text(card.get("mes_example")),
            system=own_system,
            jailbreak=_text(card.get("post_history_instructions")),
            version=_text(card.get("character_version")),
        ),
        model=macros.model,
        input=macros.input,
        max_prompt=max_prompt,
        chat=macros.chat or default_state(inp.history, inp.earlier.messages),
        instruct=instruct_values(
            preset,
            system_prompt=system,
            default_system_prompt=default,
            example_separator=separator,
            chat_start=chat_start,
        ),
        variables=(macros.variables or Variables()).copy(),
        notes=MacroNotes(),
    )


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def default_state(history: Sequence[Message], earlier: int = 0) -> ChatState:
    """The chat state from the prompt's own history, when the caller gave none; `earlier`
    messages come before it."""
    tail = [(m.role, m.text, None) for m in history[-_STATE_TAIL:]]
    state = chat_state(tail)
    return replace(state, last_message_id=earlier + len(history) - 1 if history else None)


def history_writes(history: Sequence[Message], earlier: int = 0) -> Callable[[int], bool]:
    """Which history messages may write variables (see the module docstring); `earlier`
    messages come before `history`."""
    last_user = next(
        (i for i in range(len(history) - 1, -1, -1) if history[i].role == "user"),
        len(history) - 1,
    )
    first_reply = (
        not earlier and len(history) <= 2 and bool(history) and history[0].role == "assistant"
    )

    def writes(i: int) -> bool:
        return i >= last_user or (i == 0 and first_reply)

    return writes


def read_only(ctx: MacroContext) -> MacroContext:
    if ctx.variables is None or not ctx.variables.writable:
        return ctx
    return replace(ctx, variables=ctx.variables.reader())


class Once:
    """Expands each text once per build: the fitting renders the story string many times."""

    def __init__(self, ctx: MacroContext, where: str) -> None:
        self.ctx, self.where = ctx, where
        self._done: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        if text not in self._done:
            self._done[text] = expand_macros(text, self.ctx, self.where)
        return self._done[text]
