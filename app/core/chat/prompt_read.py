"""The prompt input for a chat's next reply, read from the store on the worker thread.

Only the path's newest messages are read, as many as the prompt could hold at the model's
context (`history_reach`); the rest is counted inside SQLite (`Reader.history_tail`) and
handed to the builder as `Earlier`, so a 100,000-message chat costs a reply what a
10,000-message one does and the prompt is the one the whole path would give.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from app.core.appdata.settings import Settings
from app.core.chat.job import PromptIds, earlier_of, prompt_input, sent_ids
from app.core.chat.macro_state import macro_input, with_macros
from app.core.chat.world_info import lore_input
from app.core.prompt import PromptInput
from app.core.prompt.worldinfo import AuthorsNote
from app.core.store import Store
from app.core.store.reader import read_tail
from app.core.store.world_state import WorldInfoStore


@dataclass(frozen=True)
class ChatTurn:
    """What the window knows of the reply it asks for, before anything is read."""

    card: dict[str, Any]
    settings: Settings
    character_id: int
    persona: tuple[str, str] | None = None
    note: AuthorsNote | None = None  # the default author's note, for chats without one
    instruction: str | None = None  # a last system line (impersonation)
    continue_last: bool = False
    model: str | None = None  # {{model}}
    first_included: int | None = None  # {{firstIncludedMessageId}}: the last prompt's


@dataclass(frozen=True)
class ReadPrompt:
    inp: PromptInput
    path_ids: list[int]  # the messages read, oldest first: world info's timed effects
    prompt_ids: PromptIds  # those the prompt sends: the window's out-of-context marks


def read_prompt_input(
    store: Store, chat_id: int, leaf: int | None, reach: int, turn: ChatTurn
) -> ReadPrompt:
    """The builder's input for the reply after `leaf`, from the newest `reach` messages."""
    tail = read_tail(store.path, chat_id, leaf, reach)
    history, ids = tail.messages, [m.id for m in tail.messages]
    lore = lore_input(WorldInfoStore(store), chat_id, turn.character_id, ids, turn.note)
    inp = prompt_input(
        turn.card,
        turn.settings,
        history,
        instruction=turn.instruction,
        persona=turn.persona,
        lore=lore,
        earlier=earlier_of(tail),
    )
    macros = macro_input(
        store,
        chat_id,
        history,
        model=turn.model,
        first_included=turn.first_included,
        before=tail.before,
    )
    inp = with_macros(inp, macros)
    inp = replace(inp, continue_last=True) if turn.continue_last else inp
    return ReadPrompt(inp, ids, PromptIds(sent_ids(history), tail.sent_before))
