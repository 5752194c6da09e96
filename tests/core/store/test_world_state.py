"""World info kept per chat in the store: timed effects across swipes, branches and a
restart (SillyTavern's `WorldInfoTimedEffects`, which keeps `chat_metadata.timedWorldInfo`),
the author's note and scenario in SillyTavern's `chat_metadata` keys, and the book library."""

from __future__ import annotations

import json

import pytest

from app.core.chat.world_info import (
    lore_input,
    remember_lore_state,
    save_authors_note,
    save_scenario,
)
from app.core.chat_io.st_export import st_chat_rows
from app.core.prompt import Message, PromptInput, build_prompt, preset
from app.core.prompt.worldinfo import AuthorsNote
from app.core.store import Store, StoreError
from app.core.store.world_state import WorldInfoStore

BOOK = {
    "entries": [
        {
            "name": "ward",
            "keys": ["dragon"],
            "content": "A ward hums.",
            "enabled": True,
            "insertion_order": 100,
            "extensions": {"sticky": 3},
        },
        {
            "name": "roar",
            "keys": ["dragon"],
            "content": "A roar echoes.",
            "enabled": True,
            "insertion_order": 90,
            "extensions": {"cooldown": 3},
        },
    ]
}
CARD = {"name": "Mira", "description": "Mira.", "first_mes": "Hello.", "character_book": BOOK}


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "parlor.db")
    yield s
    s.close()


def start_chat(store):
    character = store.characters.add(CARD)
    chat = store.chats.new(character, ["Hello."])
    return character, chat


def turn(store, chat, character, *, regenerate=False):
    """Build the prompt for the chat's active path (without its last reply when
    regenerating, as the app does), keep its state; the lore that fired."""
    wi = WorldInfoStore(store)
    path = store.messages.active_path(chat)[:-1] if regenerate else store.messages.active_path(chat)
    ids = [m.id for m in path]
    inp = PromptInput(
        CARD,
        "Ann",
        history=[Message(m.role, m.text) for m in path],
        lore=lore_input(wi, chat, character, ids),
    )
    built = build_prompt(inp, preset("chatml"), len, 4096, 256)
    remember_lore_state(wi, ids, built)
    return {t.entry: t for t in built.lore_trace}


def say(store, chat, role, text):
    return store.messages.append(chat, store.messages.active_leaf(chat), role, text)


def test_sticky_and_cooldown_follow_the_chat(store):
    """`checkTimedEffects`: an effect counts chat messages from when it was set; sticky keeps
    an entry in without its key; cooldown keeps it out."""
    character, chat = start_chat(store)
    say(store, chat, "user", "A dragon!")  # chat length 2
    first = turn(store, chat, character)
    assert first["ward"].fired and first["roar"].fired
    say(store, chat, "assistant", "Indeed.")
    say(store, chat, "user", "What now?")  # length 4: sticky until 5, cooldown until 5
    second = turn(store, chat, character)
    assert second["ward"].fired and second["ward"].reason == "sticky until message 5"
    assert not second["roar"].fired
    say(store, chat, "assistant", "Wait.")
    say(store, chat, "user", "A dragon again?")  # length 6: both effects are over
    third = turn(store, chat, character)
    assert third["ward"].reason.startswith("key 'dragon'")
    assert third["roar"].fired


def test_a_swipe_rolls_again_and_a_cooldown_does_not_block_its_own_regenerate(store):
    """An effect set at the current length is dropped when the chat has not advanced
    (`#checkTimedEffectOfType`: `chat.length <= start && !protected`)."""
    character, chat = start_chat(store)
    say(store, chat, "user", "A dragon!")
    assert turn(store, chat, character)["roar"].fired
    reply = say(store, chat, "assistant", "first try")
    store.messages.regenerate(reply, "second try", status="complete")  # a swipe: same history
    assert turn(store, chat, character, regenerate=True)["roar"].fired


def test_a_branch_has_its_own_timeline_and_state_survives_a_restart(store, tmp_path):
    character, chat = start_chat(store)
    greeting = store.messages.active_leaf(chat)
    say(store, chat, "user", "A dragon!")
    turn(store, chat, character)
    say(store, chat, "assistant", "Indeed.")
    say(store, chat, "user", "And then?")
    assert turn(store, chat, character)["ward"].reason == "sticky until message 5"
    # another branch from the greeting: nothing was set there
    store.messages.append(chat, greeting, "user", "Nice weather.")
    store.messages.append(chat, store.messages.active_leaf(chat), "assistant", "Yes.")
    store.messages.append(chat, store.messages.active_leaf(chat), "user", "And then?")
    assert not turn(store, chat, character)["ward"].fired
    store.close()
    reopened = Store(tmp_path / "parlor.db")
    try:
        old_leaf = [m for m in reopened.messages.of_chat(chat) if m.text == "And then?"][0].id
        reopened.messages.show_branch(chat, old_leaf)
        trace = turn(reopened, chat, character)
        assert trace["ward"].reason == "sticky until message 5"
        assert not trace["roar"].fired and trace["roar"].reason == "on cooldown until message 5"
    finally:
        reopened.close()


def test_authors_note_and_scenario_are_sillytavern_chat_metadata(store):
    """SillyTavern's keys: note_prompt, note_interval, note_position, note_depth, note_role,
    scenario; they leave with the chat's exported `.jsonl`."""
    character, chat = start_chat(store)
    wi = WorldInfoStore(store)
    save_authors_note(wi, chat, AuthorsNote("Keep it short.", interval=2, depth=1))
    save_scenario(wi, chat, "A night at sea.")
    seed = wi.seed(chat)
    meta = st_chat_rows(store, chat)[0]["chat_metadata"]
    assert {
        k: meta[k]
        for k in (
            "note_prompt",
            "note_interval",
            "note_position",
            "note_depth",
            "note_role",
            "scenario",
        )
    } == {
        "note_prompt": "Keep it short.",
        "note_interval": 2,
        "note_position": 1,
        "note_depth": 1,
        "note_role": 0,
        "scenario": "A night at sea.",
    }
    ids = [m.id for m in store.messages.active_path(chat)]
    inp = lore_input(wi, chat, character, ids)
    assert inp.authors_note == AuthorsNote("Keep it short.", interval=2, depth=1)
    assert inp.scenario == "A night at sea." and inp.seed == seed == meta["integrity"]
    save_authors_note(wi, chat, None)
    default = AuthorsNote("Default note.")
    assert lore_input(wi, chat, character, ids, default).authors_note == default


def test_books_global_per_character_and_chat_lore(store):
    """`getSortedEntries` draws on global books, the character's extra books and the chat's
    lore (`chat_metadata.world_info`)."""
    character, chat = start_chat(store)
    other = store.characters.add({"name": "Other"})
    wi = WorldInfoStore(store)
    world = {"entries": {"0": {"uid": 0, "key": ["harbor"], "content": "Cold.", "order": 5}}}
    wi.save_book("Harbor", world, is_global=True)
    wi.save_book("Mira's", {"entries": [{"keys": ["x"], "content": "y"}]})
    wi.link_character("Mira's", character, True)
    wi.save_book("Tonight", {"entries": [{"keys": ["z"], "content": "w"}]})
    wi.update_chat_metadata(chat, {"world_info": "Tonight"})
    sources = {b.name: b.source.value for b in lore_input(wi, chat, character, []).books}
    assert sources == {"Harbor": "global", "Mira's": "character", "Tonight": "chat"}
    assert {b.name for b in lore_input(wi, chat, other, []).books} == {"Harbor", "Tonight"}
    wi.set_global("Harbor", False)
    wi.rename_book("Mira's", "Mira")
    assert [(b.name, b.is_global, b.characters) for b in wi.books()] == [
        ("Harbor", False, ()),
        ("Mira", False, (character,)),
        ("Tonight", False, ()),
    ]
    with pytest.raises(StoreError, match="already exists"):
        wi.rename_book("Mira", "Harbor")
    wi.delete_book("Harbor")
    assert wi.book("Harbor") is None
    assert json.loads(json.dumps(wi.book("Mira").book))["name"] == "Mira"


def test_the_exported_chat_carries_the_paths_timed_effects(store):
    """SillyTavern keeps sticky/cooldown in `chat_metadata.timedWorldInfo`; the export writes
    the state of the exported path, and an imported chat starts from the file's state."""
    character, chat = start_chat(store)
    say(store, chat, "user", "A dragon!")
    turn(store, chat, character)
    meta = st_chat_rows(store, chat)[0]["chat_metadata"]
    assert set(meta["timedWorldInfo"]["sticky"]) == {"Mira.0"}
    assert meta["timedWorldInfo"]["cooldown"]["Mira.1"]["end"] == 5
    fresh = store.chats.new(character, ["Hello."])
    WorldInfoStore(store).update_chat_metadata(fresh, {"timedWorldInfo": meta["timedWorldInfo"]})
    store.messages.append(fresh, store.messages.active_leaf(fresh), "user", "Hm?")
    store.messages.append(fresh, store.messages.active_leaf(fresh), "assistant", "Yes.")
    store.messages.append(fresh, store.messages.active_leaf(fresh), "user", "A dragon?")
    assert turn(store, fresh, character)["roar"].reason == "on cooldown until message 5"
