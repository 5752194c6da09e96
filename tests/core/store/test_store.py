"""The history store on real SQLite files."""

from __future__ import annotations

import sqlite3

import pytest

from app.core.store import Store, StoreError


def _chat(store: Store, greetings=("Hello there.",)) -> int:
    char = store.characters.add({"name": "Mira", "first_mes": greetings[0]})
    return store.chats.new(char, list(greetings))


def test_schema_is_versioned_with_wal_and_foreign_keys(tmp_path):
    Store(tmp_path / "db.sqlite3").close()
    conn = sqlite3.connect(tmp_path / "db.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_new_chat_shows_first_greeting_with_alternates_as_swipes(store):
    chat = _chat(store, ("Hi!", "Good evening.", "Oh, you again."))
    path = store.messages.active_path(chat)
    assert [m.text for m in path] == ["Hi!"]
    assert (path[0].sibling_index, path[0].sibling_count) == (0, 3)
    store.messages.swipe(path[0].id, +2)
    assert store.messages.active_path(chat)[0].text == "Oh, you again."


def test_messages_survive_reopening(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    chat = _chat(s)
    root = s.messages.active_path(chat)[0].id
    user = s.messages.append(chat, root, "user", "Who are you?")
    s.messages.append(chat, user, "assistant", "A friend.", gen_info={"seed": 7})
    s.close()
    reopened = Store(tmp_path / "db.sqlite3")
    path = reopened.messages.active_path(chat)
    assert [m.text for m in path] == ["Hello there.", "Who are you?", "A friend."]
    assert path[-1].gen_info == {"seed": 7}
    reopened.close()


def test_swipe_on_an_earlier_message_restores_the_path_below_it(store):
    chat = _chat(store)
    root = store.messages.active_path(chat)[0].id
    u1 = store.messages.append(chat, root, "user", "first question")
    a1 = store.messages.append(chat, u1, "assistant", "first answer")
    deep = store.messages.append(chat, a1, "user", "follow-up")
    u1b = store.messages.append(chat, root, "user", "other question")  # a branch
    assert [m.text for m in store.messages.active_path(chat)][-1] == "other question"
    leaf = store.messages.swipe(u1b, -1)
    assert leaf == deep
    assert store.messages.swipe(u1, -1) is None  # already the first sibling


def test_delete_removes_the_subtree_and_moves_the_path_up(store):
    chat = _chat(store)
    root = store.messages.active_path(chat)[0].id
    u1 = store.messages.append(chat, root, "user", "q")
    store.messages.append(chat, u1, "assistant", "a")
    store.messages.delete(u1)
    assert [m.text for m in store.messages.active_path(chat)] == ["Hello there."]


def test_interrupted_stream_is_recovered_and_marked(store):
    chat = _chat(store)
    root = store.messages.active_path(chat)[0].id
    reply = store.messages.append(chat, root, "assistant", "", status="streaming")
    store.messages.update(reply, "half a sen")
    assert store.messages.recover_interrupted() == 1
    msg = store.messages.get(reply)
    assert (msg.text, msg.status) == ("half a sen", "interrupted")


def test_full_text_search_finds_edited_text(store):
    chat = _chat(store)
    root = store.messages.active_path(chat)[0].id
    mid = store.messages.append(chat, root, "user", "the lighthouse keeper")
    store.messages.update(mid, "the harbour master")
    assert store.messages.search("lighthouse") == []
    assert [m.id for m in store.messages.search("harbour")] == [mid]


def test_unopenable_database_gives_a_clear_error(tmp_path):
    bad = tmp_path / "db.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="db.sqlite3"):
        Store(bad)


def test_a_reused_message_id_is_never_taken_for_a_remembered_child(store):
    """SQLite reuses deleted ids; a stale active_child_id must not jump to another branch."""
    chat = _chat(store)
    root = store.messages.active_path(chat)[0].id
    a = store.messages.append(chat, root, "user", "branch a")
    store.messages.append(chat, a, "assistant", "reply a")  # the newest id in the table
    b = store.messages.append(chat, root, "user", "branch b")
    store.messages.show_branch(chat, a)  # root remembers a
    store.messages.delete(a)  # frees a's and its reply's ids
    other = _chat(store, ("Another chat.",))
    reused = store.messages.append(
        other, store.messages.active_path(other)[0].id, "user", "elsewhere"
    )
    path = store.messages.active_path(chat)
    assert [m.text for m in path][-1] == "branch b" and reused not in [m.id for m in path]
    assert store.messages.active_leaf(chat) == b
