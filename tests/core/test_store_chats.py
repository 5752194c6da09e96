"""The chat library on real SQLite: rename, duplicate, branch, trash, search, personas."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from app.core.store import Store, StoreError
from app.core.store.db import MIGRATIONS
from app.core.store.nodes import NewNode


def _chat(store: Store, name="Mira", greetings=("Hello there.",), title="") -> int:
    char = store.add_character({"name": name, "first_mes": greetings[0]})
    return store.new_chat(char, list(greetings), title)


def _texts(store: Store, chat: int) -> list[str]:
    return [m.text for m in store.active_path(chat)]


def _tree(store: Store, chat: int) -> list:
    """The chat's tree as nested (role, text, status, gen_info, children) in swipe order."""
    messages = store.chat_messages(chat)

    def below(parent):
        return [(m.role, m.text, m.status, m.gen_info, below(m.id))
                for m in messages if m.parent_id == parent]

    return below(None)


def _branched(store: Store) -> tuple[int, dict[str, int]]:
    """greeting -> q1 -> (a1 -> q2 -> a2 | a1b) ; the path shows a1b."""
    chat = _chat(store, greetings=("Hi!", "Evening."))
    ids = {"g": store.active_path(chat)[0].id}
    ids["q1"] = store.append_message(chat, ids["g"], "user", "Tell me about the lighthouse.")
    ids["a1"] = store.append_message(chat, ids["q1"], "assistant", "It is old.",
                                     gen_info={"model": "tiny", "seed": 3})
    ids["q2"] = store.append_message(chat, ids["a1"], "user", "How old?")
    ids["a2"] = store.append_message(chat, ids["q2"], "assistant", "Very.", status="stopped")
    ids["a1b"] = store.regenerate(ids["a1"], "It is red and white.", status="complete")
    return chat, ids


def test_rename_and_list_all_chats_by_last_use(store):
    first = _chat(store, title="first")
    second = _chat(store, name="Bo", title="second")
    store.rename_chat(first, "the lighthouse")
    store.touch_chat(first)
    rows = store.all_chats()
    assert [(r["id"], r["title"]) for r in rows] == [(first, "the lighthouse"),
                                                     (second, "second")]
    assert rows[1]["character_name"] == "Bo" and rows[0]["message_count"] == 1
    with pytest.raises(StoreError, match="No chat with id 999"):
        store.rename_chat(999, "x")


def test_duplicate_copies_the_whole_tree_and_is_independent(store):
    chat, ids = _branched(store)
    copy = store.duplicate_chat(chat)
    assert _tree(store, copy) == _tree(store, chat)
    assert _texts(store, copy) == _texts(store, chat)
    assert store.chat_info(copy)["title"].endswith("(copy)")
    new_a1 = store.active_path(copy)[2]
    leaf = store.swipe(new_a1.id, -1)  # the copy remembers the path below a1 too
    assert store.message(leaf).text == "Very."
    store.edit_message(leaf, "Changed in the copy.")
    assert store.message(ids["a2"]).text == "Very."


def test_branch_here_copies_the_path_with_its_swipes_only(store):
    chat, ids = _branched(store)
    store.swipe(ids["a1b"], -1)
    branch = store.branch_from(ids["q2"])
    assert _texts(store, branch) == ["Hi!", "Tell me about the lighthouse.", "It is old.",
                                     "How old?"]
    path = store.active_path(branch)
    assert (path[0].sibling_count, path[2].sibling_count) == (2, 2)  # swipes came along
    assert path[2].sibling_index == 0
    assert store.message(store.sibling_ids(path[2].id)[1]).text == "It is red and white."
    assert len(store.chat_messages(branch)) == 6  # a2 (below the branch point) stayed behind
    assert store.chat_extra(branch)["chat_metadata"]["main_chat"] == store.chat_info(chat)["title"]
    assert _texts(store, chat)[-1] == "Very."  # the original is untouched


def test_edit_keeps_status_and_gen_info(store):
    chat, ids = _branched(store)
    store.edit_message(ids["a2"], "Very, very old.")
    msg = store.message(ids["a2"])
    assert (msg.text, msg.status) == ("Very, very old.", "stopped")
    store.edit_message(ids["a1"], "It is ancient.")
    assert store.message(ids["a1"]).gen_info == {"model": "tiny", "seed": 3}


def test_regenerate_adds_a_shown_sibling_and_keeps_the_old_reply(store):
    chat, ids = _branched(store)
    assert store.sibling_ids(ids["a1"]) == [ids["a1"], ids["a1b"]]
    new = store.regenerate(ids["a1b"])
    msg = store.message(new)
    assert (msg.role, msg.status, msg.parent_id) == ("assistant", "streaming", ids["q1"])
    assert store.active_leaf(chat) == new
    assert store.sibling_ids(new) == [ids["a1"], ids["a1b"], new]
    greeting = store.regenerate(ids["g"], "Good morning.", "complete")
    assert store.active_path(chat)[0].sibling_count == 3 and store.active_leaf(chat) == greeting


def test_deleted_chat_goes_to_the_trash_and_comes_back(store):
    chat, _ = _branched(store)
    character = store.chat_character(chat)
    store.delete_chat(chat)
    assert store.chats(character) == [] and store.all_chats() == []
    assert [r["id"] for r in store.chat_trash()] == [chat]
    assert store.search_chats("lighthouse") == []
    store.restore_chat(chat)
    assert [r["id"] for r in store.chats(character)] == [chat]
    assert _texts(store, chat)[-1] == "It is red and white."


def test_purge_removes_only_what_is_old_enough(store, tmp_path):
    old, _ = _branched(store)
    recent = _chat(store, name="Bo")
    store.delete_chat(old)
    store._conn.execute("UPDATE chats SET deleted_at = deleted_at - 90000 WHERE id = ?", (old,))
    store.delete_chat(recent)
    assert store.purge_trash(older_than=timedelta(days=1)) == 1
    assert [r["id"] for r in store.chat_trash()] == [recent]
    assert store.chat_messages(old) == []  # its messages went with it
    assert store.purge_trash() == 1 and store.chat_trash() == []


def test_deleted_character_hides_its_chats_until_restored(store):
    chat = _chat(store)
    character = store.chat_character(chat)
    store.delete_character(character)
    assert store.characters() == [] and store.all_chats() == []
    assert [r["name"] for r in store.character_trash()] == ["Mira"]
    store.restore_character(character)
    assert [r["id"] for r in store.all_chats()] == [chat]
    store.delete_character(character)
    assert store.purge_trash() == 1
    assert store.all_chats() == [] and store.character_trash() == []
    with pytest.raises(StoreError):
        store.chat_info(chat)


def test_search_across_chats_gives_chat_character_and_snippet(store):
    chat, ids = _branched(store)
    other = _chat(store, name="Bo", greetings=("The lighthouse keeper waves.",))
    hits = store.search_chats("lighthouse")
    assert {(h.chat_id, h.character_name) for h in hits} == {(chat, "Mira"), (other, "Bo")}
    hit = next(h for h in hits if h.chat_id == chat)
    assert hit.message_id == ids["q1"] and "[lighthouse]" in hit.snippet
    assert hit.chat_title == store.chat_info(chat)["title"]
    assert [h.chat_id for h in store.search_chats("keeper lighthouse")] == [other]
    assert store.search_chats('AND "( NEAR') == [] and store.search_chats("  ") == []


def test_personas_default_and_per_chat_choice(store):
    chat = _chat(store)
    assert store.chat_persona(chat) is None
    sam = store.add_persona("Sam", "A sailor.")
    kit = store.add_persona("Kit")
    assert store.default_persona()["id"] == sam  # the first one became the default
    assert store.chat_persona(chat)["name"] == "Sam"
    store.set_chat_persona(chat, kit)
    assert store.chat_persona(chat)["name"] == "Kit"
    store.update_persona(kit, description="A cat.")
    assert store.chat_persona(chat)["description"] == "A cat."
    store.set_default_persona(kit)
    assert [p["is_default"] for p in store.personas()] == [1, 0]  # Kit, Sam by name
    store.delete_persona(kit)
    assert store.default_persona()["id"] == sam
    assert store.chat_persona(chat)["name"] == "Sam"  # the chat falls back to the default
    with pytest.raises(StoreError):
        store.set_chat_persona(chat, 999)


def test_a_version_1_database_is_migrated_keeping_its_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    conn.execute("INSERT INTO characters (name, card_json, created_at, updated_at)"
                 " VALUES ('Mira', '{}', 0, 0)")
    conn.execute("INSERT INTO chats (character_id, title, created_at, last_used_at,"
                 " active_leaf_id) VALUES (1, 'old chat', 0, 0, 1)")
    conn.execute("INSERT INTO messages (chat_id, role, text, created_at)"
                 " VALUES (1, 'assistant', 'from before', 0)")
    conn.execute("INSERT INTO personas (name, is_default) VALUES ('A', 1)")
    conn.commit()
    conn.close()
    store = Store(path)
    assert [(m.text, m.extra) for m in store.active_path(1)] == [("from before", None)]
    assert store.chat_extra(1) == {}
    assert [(p["name"], p["is_default"]) for p in store.personas()] == [("A", 1)]
    store.close()
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == len(MIGRATIONS)


def test_a_long_chat_keeps_its_path_and_swipes(store):
    character = store.add_character({"name": "Mira"})
    nodes = [NewNode(i, i - 1 if i else None, "user" if i % 2 else "assistant", f"m{i}")
             for i in range(2000)]
    chat = store.create_chat_from_nodes(character, "long", nodes)  # one transaction
    leaf = store.active_leaf(chat)
    early = store.active_path(chat)[10]
    store.regenerate(early.id, "another take", "complete")
    assert len(store.active_path(chat)) == 11
    assert store.swipe(store.active_leaf(chat), -1) == leaf  # back down the old 2,000
    path = store.active_path(chat)
    assert len(path) == 2000 and path[-1].text == "m1999"
    assert (path[10].sibling_index, path[10].sibling_count) == (0, 2)
