"""Chat and global variables in the store: kept across restarts, saved only when a prompt is
sent, a chat's in SillyTavern's `chat_metadata.variables` (so its export carries them)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from app.core.chat.macro_state import macro_input, path_state, remember_variables
from app.core.prompt import Message, PromptInput, build_prompt, preset
from app.core.store import Store
from app.core.store.db import MIGRATIONS
from app.core.store.variables import VariableStore
from app.core.store.world_state import WorldInfoStore

CARD = {"name": "Bob", "description": "{{incvar::visits}}{{incglobalvar::runs}} visits"}


def _chat(store: Store) -> int:
    character = store.characters.add({"name": "Bob"})
    return store.chats.new(character, ["Hello."])


def _send(store: Store, chat_id: int):
    path = store.messages.active_path(chat_id)
    macros = macro_input(store, chat_id, path, model="tiny")
    inp = PromptInput(CARD, "Ann", history=[Message("user", "Hi")], macros=macros)
    return build_prompt(inp, preset("chatml"), len, 2048, 100)


def test_variables_survive_a_restart_and_change_only_when_saved(tmp_path):
    path = tmp_path / "parlor.db"
    store = Store(path)
    chat_id = _chat(store)
    built = _send(store, chat_id)
    assert "11 visits" in built.text
    assert VariableStore(store).chat(chat_id) == {}  # built, not sent: nothing changed
    remember_variables(store, chat_id, built)
    store.close()

    store = Store(path)
    assert VariableStore(store).chat(chat_id) == {"visits": 1}
    assert VariableStore(store).global_() == {"runs": 1}
    assert WorldInfoStore(store).chat_metadata(chat_id)["variables"] == {"visits": 1}
    built = _send(store, chat_id)
    assert "22 visits" in built.text  # {{incvar}} and {{incglobalvar}} give the new values
    remember_variables(store, chat_id, built)
    other = _chat(store)
    assert VariableStore(store).chat(other) == {}  # chat variables are the chat's own
    assert "13 visits" in _send(store, other).text  # global ones are everyone's
    store.close()


def test_a_prompt_that_changes_nothing_writes_nothing(store):
    chat_id = _chat(store)
    inp = PromptInput({"name": "Bob"}, "Ann", history=[Message("user", "Hi")])
    built = build_prompt(inp, preset("chatml"), len, 2048, 100)
    remember_variables(store, chat_id, built)
    assert "variables" not in WorldInfoStore(store).chat_metadata(chat_id)


def test_the_path_state_counts_positions_and_swipes(store):
    chat_id = _chat(store)
    root = store.messages.active_path(chat_id)[0].id
    user = store.messages.append(chat_id, root, "user", "Hi")
    store.messages.append(chat_id, user, "assistant", "One")
    store.messages.append(chat_id, user, "assistant", "Two")
    state = path_state(store.messages.active_path(chat_id))
    assert state.last_message == "Two" and state.last_message_id == 2
    assert (state.current_swipe_id, state.last_swipe_id) == (2, 2)
    sent = datetime.fromtimestamp(store.messages.get(user).created_at)
    assert state.last_user_message == "Hi" and state.idle_since == sent  # the user's, before it


def test_a_schema_5_database_gains_the_global_variables_table(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:5], 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    conn.close()
    store = Store(path)
    VariableStore(store).save_global({"a": "1", "b": [1, 2]})
    assert VariableStore(store).global_() == {"a": "1", "b": [1, 2]}
    assert store._query("PRAGMA user_version")[0][0] == len(MIGRATIONS)
    store.close()


def test_a_group_chat_reads_its_variables_and_keeps_them(store):
    """A group's prompt starts from the chat's stored variables, so a sent prompt adds to
    them instead of replacing them with its own few."""
    from app.core.appdata.settings import Settings
    from app.core.chat.groups.prompt import group_job, group_prompt_input
    from app.core.chat.job import TokenCounter
    from tests.core.chat.test_groups_prompt import INFO, count_many

    ann = store.characters.add({"name": "Ann", "description": "{{incvar::turns}} turns"})
    bob = store.characters.add({"name": "Bob", "description": "A bard."})
    gid = store.groups.create("Inn", [ann, bob])
    chat = store.groups.new_chat(gid, [(ann, "Hi.")])
    VariableStore(store).save_chat(chat, {"turns": 4, "kept": "yes"})
    prompt = group_prompt_input(store, Settings(), chat, ann, store.messages.active_path(chat))
    built = group_job(prompt, INFO, Settings(), TokenCounter())(count_many)
    assert "5 turns" in built.text
    remember_variables(store, chat, built)
    assert VariableStore(store).chat(chat) == {"turns": 5, "kept": "yes"}


def test_a_prompt_that_started_without_the_chats_variables_never_overwrites_them(store):
    chat_id = _chat(store)
    VariableStore(store).save_chat(chat_id, {"mood": "calm"})
    inp = PromptInput({"name": "Bob", "description": "{{setvar::other::1}}"}, "Ann")
    built = build_prompt(inp, preset("chatml"), len, 2048, 100)
    assert built.variables is not None and built.variables.changed == {"chat"}
    remember_variables(store, chat_id, built)
    assert VariableStore(store).chat(chat_id) == {"mood": "calm"}


def test_a_new_chats_first_greeting_sets_its_variables(store):
    """SillyTavern substitutes the shown greeting (`messageFormatting` for message 0, and
    `Generate`'s `chat[0].mes = substituteParams(...)`): its `{{setvar}}` runs once, and the
    greeting is kept without it. An alternate greeting only reads."""
    from app.core.chat.macro_state import new_chat

    card = {
        "name": "Bob",
        "first_mes": "{{setvar::met::yes}}{{incglobalvar::chats}}Welcome, {{user}}.",
        "alternate_greetings": ["{{setvar::met::no}}Hi ({{getvar::met}})."],
    }
    character = store.characters.add(card)
    chat_id = new_chat(store, character, card, "Ann")
    path = store.messages.active_path(chat_id)
    assert path[0].text == "1Welcome, Ann."  # {{incglobalvar}} gives the new value
    assert VariableStore(store).chat(chat_id) == {"met": "yes"}
    assert VariableStore(store).global_() == {"chats": 1}
    swipes = [store.messages.get(i).text for i in store.messages.sibling_ids(path[0].id)]
    assert "Hi (yes)." in swipes
