"""A chat's side of the prompt's macros: its variables, the state of its last messages and
swipes, the model's name; and saving the variables a sent prompt changed.

Reads go through the store (`VariableStore`); `remember_variables` runs once the prompt is
sent (the worker's `started`), as SillyTavern runs `{{setvar}}` when it prompts the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from app.core.chat.job import greetings
from app.core.prompt import BuiltPrompt, PromptInput
from app.core.prompt.macros import ChatState, MacroInput, Variables, chat_state
from app.core.store import Message, Store
from app.core.store.variables import VariableStore

_STATE_TAIL = 64  # the newest messages the chat-state macros read


def macro_input(
    store: Store,
    chat_id: int,
    history: Sequence[Message],
    *,
    model: str | None = None,
    first_included: int | None = None,
    group: str | None = None,
    input_text: str = "",
    before: int = 0,
) -> MacroInput:
    """`history`: the active path the prompt is built from, oldest first. `input_text` is
    what the input box holds while the prompt is built: SillyTavern empties it before a
    reply is written, so a sent message is not in {{input}}; the saved draft lags behind
    the box, so it is not read here. `before`: the path's messages before `history`."""
    return MacroInput(
        variables=stored_variables(store, chat_id),
        chat=path_state(history, first_included, before),
        model=model,
        input=input_text,
        group=group,
    )


def stored_variables(store: Store, chat_id: int) -> Variables:
    """The chat's and the global variables, as the store has them."""
    stored = VariableStore(store)
    return Variables(stored.chat(chat_id), stored.global_(), stored=True)


def with_macros(inp: PromptInput, macros: MacroInput) -> PromptInput:
    return replace(inp, macros=macros)


def path_state(
    history: Sequence[Message], first_included: int | None = None, before: int = 0
) -> ChatState:
    """The chat state of a stored path (its newest messages, `before` older ones not read):
    narrator lines count as system, swipes from the last message's siblings, ids as
    positions in the path."""
    tail = [
        (_role(m), m.text, datetime.fromtimestamp(m.created_at)) for m in history[-_STATE_TAIL:]
    ]
    last = history[-1] if history else None
    state = chat_state(
        tail,
        swipe=(last.sibling_index, last.sibling_count) if last else None,
        first_included=first_included,
    )
    return replace(state, last_message_id=before + len(history) - 1 if history else None)


def _role(m: Message) -> str:
    inner = (m.extra or {}).get("extra")
    if isinstance(inner, dict) and inner.get("type") == "narrator":
        return "system"
    return str(m.role)


def remember_variables(store: Store, chat_id: int, built: BuiltPrompt) -> None:
    """Save the variables the sent prompt changed (nothing when none did)."""
    variables = built.variables
    if variables is None or not variables.stored or not variables.changed:
        return  # a prompt without the chat's variables must not overwrite them
    stored = VariableStore(store)
    if "chat" in variables.changed:
        stored.save_chat(chat_id, variables.chat)
    if "global" in variables.changed:
        stored.save_global(variables.glob)


def new_chat(store: Store, character_id: int, card: dict[str, Any], user: str) -> int:
    """A chat with the card's greetings, macros filled in; what the first greeting's
    `{{setvar}}`s write is the new chat's (and the global) variables from the start."""
    variables = Variables(glob=VariableStore(store).global_(), stored=True)
    chat_id = store.chats.new(character_id, greetings(card, user, variables))
    stored = VariableStore(store)
    if "chat" in variables.changed:
        stored.save_chat(chat_id, variables.chat)
    if "global" in variables.changed:
        stored.save_global(variables.glob)
    return chat_id
