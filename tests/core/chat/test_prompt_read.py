"""A reply's prompt read from the newest part of a long path (`read_prompt_input` with the
model's `history_reach`) is the prompt the whole path gives: the same text, the same
messages left out, the same world-info timeline, the same out-of-context mark.

What depends on the whole chat is checked by making each of it visible in the text or the
state: `{{lastMessageId}}` in the card (a position in the stored path), an author's note
every third user message (SillyTavern's `setFloatingPrompt` counts the chat's user
messages), sticky and cooldown entries (`WorldInfoTimedEffects` keys them to the chat's
length), and hidden system lines and empty messages in the path (stored but never sent,
so the stored and the sent counts differ)."""

from __future__ import annotations

import pytest

from app.core.appdata.settings import Settings
from app.core.chat.prompt_read import ChatTurn, read_prompt_input
from app.core.chat.world_info import remember_lore_state, save_authors_note
from app.core.prompt import build_prompt
from app.core.prompt.history_tail import Earlier, history_reach
from app.core.prompt.instruct import instruct_template
from app.core.prompt.worldinfo import AuthorsNote, NotePosition
from app.core.store import Store
from app.core.store.path_pages import UNBOUNDED
from app.core.store.world_state import WorldInfoStore
from tests.core.store.store_helpers import append_chain
from tests.core.store.test_world_state import BOOK  # a sticky and a cooldown entry

N_CTX = 900  # history_reach: 1001 messages, world info's deepest scan
CARD = {
    "name": "Mira",
    "description": "Mira keeps the lighthouse. ({{lastMessageId}} is the last message.)",
    "first_mes": "Hello.",
    "character_book": BOOK,
}
NOTE = "[Note: the storm is rising.]"


def _row(i: int) -> tuple[str, str]:
    if i % 97 == 0:
        return "system", f"(hidden line {i})"
    if i % 89 == 0:
        return "assistant", ""
    role = "user" if i % 2 == 0 else "assistant"
    return role, f"{role} line {i}" + (" about the dragon" if i % 11 == 0 else "")


@pytest.fixture
def long_chat(tmp_path):
    store = Store(tmp_path / "parlor.sqlite3")
    character = store.characters.add(CARD)
    chat = store.chats.new(character, ["Hello."])
    append_chain(store, chat, store.messages.active_leaf(chat), 2600, row=_row)
    save_authors_note(WorldInfoStore(store), chat, AuthorsNote(NOTE, 3, NotePosition.IN_CHAT, 2))
    yield store, chat, character
    store.close()


def _build(inp):
    return build_prompt(inp, instruct_template("Alpaca-Single-Turn"), len, N_CTX, 64)


def test_the_tail_gives_the_prompt_of_the_whole_path(long_chat):
    store, chat, character = long_chat
    wi = WorldInfoStore(store)
    turn = ChatTurn(CARD, Settings(), character)
    notes = []
    for i in range(6):  # each turn adds a message and a reply, so the counts move on
        leaf = store.messages.active_leaf(chat)
        whole = read_prompt_input(store, chat, leaf, UNBOUNDED, turn)
        tail = read_prompt_input(store, chat, leaf, history_reach(N_CTX), turn)
        assert len(tail.inp.history) < 1001 < len(whole.inp.history)
        assert tail.inp.earlier.messages == len(whole.inp.history) - len(tail.inp.history)
        a, b = _build(whole.inp), _build(tail.inp)
        assert b.text == a.text
        assert b.dropped_messages == a.dropped_messages > 2000
        assert (b.lore, b.lore_state) == (a.lore, a.lore_state)
        assert tail.prompt_ids.first_kept(b.dropped_messages) == whole.prompt_ids.first_kept(
            a.dropped_messages
        )
        notes.append(NOTE in b.text)
        remember_lore_state(wi, tail.path_ids, b)
        said = "the dragon again" if i % 2 else "tell me more"
        parent = store.messages.append(chat, leaf, "user", f"Ann: {said}")
        store.messages.append(chat, parent, "assistant", f"Mira answers ({i}).")
    assert any(notes) and not all(notes), "the note's interval was not exercised"
    assert "(2" in a.text and "is the last message" in a.text  # {{lastMessageId}} filled in


def test_a_short_path_is_read_whole(long_chat):
    store, chat, character = long_chat
    first = store.messages.active_path(chat)[5].id
    read = read_prompt_input(
        store, chat, first, history_reach(N_CTX), ChatTurn(CARD, Settings(), character)
    )
    assert read.inp.earlier == Earlier() and len(read.path_ids) == 6


def test_the_first_message_mark_is_kept_for_the_chats_real_start():
    """`Generate` marks `coreChat[0]` with the first output sequence: a tail that starts
    after the chat's first message must not get it, though it is the first given."""
    from app.core.prompt import Message, PromptInput

    history = [Message("assistant", "Hello, Bob!"), Message("user", "Hi.")]
    start = _build(PromptInput(CARD, "Bob", history=history))
    later = _build(PromptInput(CARD, "Bob", history=history, earlier=Earlier(40, 20)))
    assert "<START OF CHAT>" in start.text and "<START OF CHAT>" not in later.text
    assert (start.dropped_messages, later.dropped_messages) == (0, 40)
    assert "(1 is the last message" in start.text and "(41 is the last message" in later.text
