"""The chat library on real SQLite: rename, duplicate, branch, trash, search, personas."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from app.core.store import Store, StoreError
from app.core.store.db import MIGRATIONS
from app.core.store.nodes import NewNode
from tests.core.store.store_helpers import vm_steps


def _chat(store: Store, name="Mira", greetings=("Hello there.",), title="") -> int:
    char = store.characters.add({"name": name, "first_mes": greetings[0]})
    return store.chats.new(char, list(greetings), title)


def _texts(store: Store, chat: int) -> list[str]:
    return [m.text for m in store.messages.active_path(chat)]


def _tree(store: Store, chat: int) -> list:
    """The chat's tree as nested (role, text, status, gen_info, children) in swipe order."""
    messages = store.messages.of_chat(chat)

    def below(parent):
        return [
            (m.role, m.text, m.status, m.gen_info, below(m.id))
            for m in messages
            if m.parent_id == parent
        ]

    return below(None)


def _branched(store: Store) -> tuple[int, dict[str, int]]:
    """greeting -> q1 -> (a1 -> q2 -> a2 | a1b) ; the path shows a1b."""
    chat = _chat(store, greetings=("Hi!", "Evening."))
    ids = {"g": store.messages.active_path(chat)[0].id}
    ids["q1"] = store.messages.append(chat, ids["g"], "user", "Tell me about the lighthouse.")
    ids["a1"] = store.messages.append(
        chat, ids["q1"], "assistant", "It is old.", gen_info={"model": "tiny", "seed": 3}
    )
    ids["q2"] = store.messages.append(chat, ids["a1"], "user", "How old?")
    ids["a2"] = store.messages.append(chat, ids["q2"], "assistant", "Very.", status="stopped")
    ids["a1b"] = store.messages.regenerate(ids["a1"], "It is red and white.", status="complete")
    return chat, ids


def test_rename_and_list_all_chats_by_last_use(store):
    first = _chat(store, title="first")
    second = _chat(store, name="Bo", title="second")
    store.chats.rename(first, "the lighthouse")
    store.chats.touch(first)
    rows = store.chats.all()
    assert [(r.id, r.title) for r in rows] == [(first, "the lighthouse"), (second, "second")]
    assert rows[1].character_name == "Bo" and rows[0].message_count == 1
    with pytest.raises(StoreError, match="No chat with id 999"):
        store.chats.rename(999, "x")


def test_a_chats_info_costs_the_same_whatever_its_length_and_the_list_counts(store):
    """`info` is read at each reply, swipe and chat switch: it must not count a long chat's
    messages. The chat list still shows how many each chat holds."""
    short, long = _chat(store, title="short"), _chat(store, title="long")
    parent = store.messages.active_leaf(long)
    with store._tx() as c:  # 3,000 messages in one commit
        for i in range(3000):
            parent = c.execute(
                "INSERT INTO messages (chat_id, parent_id, role, text, created_at)"
                " VALUES (?, ?, 'user', ?, 0)",
                (long, parent, f"line {i}"),
            ).lastrowid
    assert vm_steps(store, lambda: store.chats.info(long)) == vm_steps(
        store, lambda: store.chats.info(short)
    )
    assert store.chats.info(long).title == "long"
    assert {r.id: r.message_count for r in store.chats.all()} == {short: 1, long: 3001}
    store.chats.delete(long)
    assert [(r.id, r.message_count) for r in store.chats.trash()] == [(long, 3001)]


def test_duplicate_copies_the_whole_tree_and_is_independent(store):
    chat, ids = _branched(store)
    copy = store.chats.duplicate(chat)
    assert _tree(store, copy) == _tree(store, chat)
    assert _texts(store, copy) == _texts(store, chat)
    assert store.chats.info(copy).title.endswith("(copy)")
    new_a1 = store.messages.active_path(copy)[2]
    leaf = store.messages.swipe(new_a1.id, -1)  # the copy remembers the path below a1 too
    assert store.messages.get(leaf).text == "Very."
    store.messages.edit(leaf, "Changed in the copy.")
    assert store.messages.get(ids["a2"]).text == "Very."


def test_branch_here_copies_the_path_with_its_swipes_only(store):
    chat, ids = _branched(store)
    store.messages.swipe(ids["a1b"], -1)
    branch = store.chats.branch_from(ids["q2"])
    assert _texts(store, branch) == [
        "Hi!",
        "Tell me about the lighthouse.",
        "It is old.",
        "How old?",
    ]
    path = store.messages.active_path(branch)
    assert (path[0].sibling_count, path[2].sibling_count) == (2, 2)  # swipes came along
    assert path[2].sibling_index == 0
    assert (
        store.messages.get(store.messages.sibling_ids(path[2].id)[1]).text == "It is red and white."
    )
    assert len(store.messages.of_chat(branch)) == 6  # a2 (below the branch point) stayed behind
    assert store.chats.extra(branch)["chat_metadata"]["main_chat"] == store.chats.info(chat).title
    assert _texts(store, chat)[-1] == "Very."  # the original is untouched


def test_edit_keeps_status_and_gen_info(store):
    chat, ids = _branched(store)
    store.messages.edit(ids["a2"], "Very, very old.")
    msg = store.messages.get(ids["a2"])
    assert (msg.text, msg.status) == ("Very, very old.", "stopped")
    store.messages.edit(ids["a1"], "It is ancient.")
    assert store.messages.get(ids["a1"]).gen_info == {"model": "tiny", "seed": 3}


def test_regenerate_adds_a_shown_sibling_and_keeps_the_old_reply(store):
    chat, ids = _branched(store)
    assert store.messages.sibling_ids(ids["a1"]) == [ids["a1"], ids["a1b"]]
    new = store.messages.regenerate(ids["a1b"])
    msg = store.messages.get(new)
    assert (msg.role, msg.status, msg.parent_id) == ("assistant", "streaming", ids["q1"])
    assert store.messages.active_leaf(chat) == new
    assert store.messages.sibling_ids(new) == [ids["a1"], ids["a1b"], new]
    greeting = store.messages.regenerate(ids["g"], "Good morning.", "complete")
    assert (
        store.messages.active_path(chat)[0].sibling_count == 3
        and store.messages.active_leaf(chat) == greeting
    )


def test_deleted_chat_goes_to_the_trash_and_comes_back(store):
    chat, _ = _branched(store)
    character = store.chats.character_of(chat)
    store.chats.delete(chat)
    assert store.chats.of_character(character) == [] and store.chats.all() == []
    assert [r.id for r in store.chats.trash()] == [chat]
    assert store.chats.search("lighthouse") == []
    store.chats.restore(chat)
    assert [r.id for r in store.chats.of_character(character)] == [chat]
    assert _texts(store, chat)[-1] == "It is red and white."


def test_purge_removes_only_what_is_old_enough(store, tmp_path):
    old, _ = _branched(store)
    recent = _chat(store, name="Bo")
    store.chats.delete(old)
    store._conn.execute("UPDATE chats SET deleted_at = deleted_at - 90000 WHERE id = ?", (old,))
    store.chats.delete(recent)
    assert store.chats.purge_trash(older_than=timedelta(days=1)) == 1
    assert [r.id for r in store.chats.trash()] == [recent]
    assert store.messages.of_chat(old) == []  # its messages went with it
    assert store.chats.purge_trash() == 1 and store.chats.trash() == []


def test_deleted_character_hides_its_chats_until_restored(store):
    chat = _chat(store)
    character = store.chats.character_of(chat)
    store.characters.delete(character)
    assert store.characters.list() == [] and store.chats.all() == []
    assert [r.name for r in store.characters.trash()] == ["Mira"]
    store.characters.restore(character)
    assert [r.id for r in store.chats.all()] == [chat]
    store.characters.delete(character)
    assert store.chats.purge_trash() == 1
    assert store.chats.all() == [] and store.characters.trash() == []
    with pytest.raises(StoreError):
        store.chats.info(chat)


def test_search_across_chats_gives_chat_character_and_snippet(store):
    chat, ids = _branched(store)
    other = _chat(store, name="Bo", greetings=("The lighthouse keeper waves.",))
    hits = store.chats.search("lighthouse")
    assert {(h.chat_id, h.character_name) for h in hits} == {(chat, "Mira"), (other, "Bo")}
    hit = next(h for h in hits if h.chat_id == chat)
    assert hit.message_id == ids["q1"] and "[lighthouse]" in hit.snippet
    assert hit.chat_title == store.chats.info(chat).title
    assert [h.chat_id for h in store.chats.search("keeper lighthouse")] == [other]
    assert store.chats.search('AND "( NEAR') == [] and store.chats.search("  ") == []


def test_personas_default_and_per_chat_choice(store):
    chat = _chat(store)
    assert store.personas.of_chat(chat) is None
    sam = store.personas.add("Sam", "A sailor.")
    kit = store.personas.add("Kit")
    assert store.personas.default().id == sam  # the first one became the default
    assert store.personas.of_chat(chat).name == "Sam"
    store.personas.set_for_chat(chat, kit)
    assert store.personas.of_chat(chat).name == "Kit"
    store.personas.update(kit, description="A cat.")
    assert store.personas.of_chat(chat).description == "A cat."
    store.personas.set_default(kit)
    assert [p.is_default for p in store.personas.list()] == [1, 0]  # Kit, Sam by name
    store.personas.delete(kit)
    assert store.personas.default().id == sam
    assert store.personas.of_chat(chat).name == "Sam"  # the chat falls back to the default
    with pytest.raises(StoreError):
        store.personas.set_for_chat(chat, 999)


def test_a_version_1_database_is_migrated_keeping_its_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO characters (name, card_json, created_at, updated_at)"
        " VALUES ('Mira', '{}', 0, 0)"
    )
    conn.execute(
        "INSERT INTO chats (character_id, title, created_at, last_used_at,"
        " active_leaf_id) VALUES (1, 'old chat', 0, 0, 1)"
    )
    conn.execute(
        "INSERT INTO messages (chat_id, role, text, created_at)"
        " VALUES (1, 'assistant', 'from before', 0)"
    )
    conn.execute("INSERT INTO personas (name, is_default) VALUES ('A', 1)")
    conn.commit()
    conn.close()
    store = Store(path)
    assert [(m.text, m.extra) for m in store.messages.active_path(1)] == [("from before", None)]
    assert store.chats.extra(1) == {}
    assert [(p.name, p.is_default) for p in store.personas.list()] == [("A", 1)]
    store.close()
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == len(MIGRATIONS)


def test_a_long_chat_keeps_its_path_and_swipes(store):
    character = store.characters.add({"name": "Mira"})
    nodes = [
        NewNode(i, i - 1 if i else None, "user" if i % 2 else "assistant", f"m{i}")
        for i in range(2000)
    ]
    chat = store.chats.from_nodes(character, "long", nodes)  # one transaction
    leaf = store.messages.active_leaf(chat)
    early = store.messages.active_path(chat)[10]
    store.messages.regenerate(early.id, "another take", "complete")
    assert len(store.messages.active_path(chat)) == 11
    assert (
        store.messages.swipe(store.messages.active_leaf(chat), -1) == leaf
    )  # back down the old 2,000
    path = store.messages.active_path(chat)
    assert len(path) == 2000 and path[-1].text == "m1999"
    assert (path[10].sibling_index, path[10].sibling_count) == (0, 2)
