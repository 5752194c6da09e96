"""Emptying the trash on real SQLite: a chat longer than SQLite's cascade limit goes with its
character or on its own, through the stepwise purge, and leaves no row behind."""

from __future__ import annotations

import threading

import pytest

from app.core.store import Store, StoreError
from app.core.store import purge as purging
from tests.core.store.store_helpers import append_chain

LONG = 1500  # SQLite ends a cascade 1,000 levels deep: one DELETE of this chain failed


def _long_chat(store: Store, character: int, n: int = LONG, word: str = "line") -> int:
    """A chat: a greeting with a swipe, `n` lines in a row under it (one committed
    transaction) with a world-info state on the last and a branch beside the second."""
    chat = store.chats.new(character, ["Hello there.", "Evening."])
    ids = append_chain(store, chat, store.messages.active_leaf(chat), n, word)
    with store._tx() as c:
        c.execute("INSERT INTO world_info_timed (message_id, state) VALUES (?, '{}')", (ids[-1],))
    store.messages.regenerate(ids[1], f"{word} another take", "complete")
    store.messages.show_branch(chat, ids[1])  # back to the long path
    return chat


def _rows(store: Store, sql: str, args: tuple = ()) -> int:
    return store._query(sql, args)[0][0]


def _consistent(store: Store) -> None:
    """No row points at a removed one, the index matches the messages, nothing is left
    hidden, and every message is in its chat's tree."""
    assert store._query("PRAGMA foreign_key_check") == []
    store._query("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
    assert not store.messages.hidden_pending()
    for (chat,) in store._query("SELECT id FROM chats"):
        count = _rows(store, "SELECT count(*) FROM messages WHERE chat_id = ?", (chat,))
        assert len(store.messages.of_chat(chat)) == count


def _indexed(store: Store, word: str) -> int:
    """How many rows the full-text index itself lists for `word` (stale entries included)."""
    return _rows(store, "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (word,))


def test_emptying_the_trash_removes_a_character_with_a_chat_past_the_cascade_limit(store):
    mira = store.characters.add({"name": "Mira", "first_mes": "Hello there."})
    bo = store.characters.add({"name": "Bo", "first_mes": "Ahoy."})
    chat = _long_chat(store, mira)
    kept = _long_chat(store, bo, n=20, word="lighthouse")
    store.characters.delete(mira)
    assert store.chats.purge_trash() == 1  # the character; its chat went with it
    assert store.characters.trash() == [] and store.chats.trash() == []
    assert _rows(store, "SELECT count(*) FROM messages WHERE chat_id = ?", (chat,)) == 0
    with pytest.raises(StoreError):
        store.chats.info(chat)
    assert _indexed(store, "line") == 0 and _indexed(store, "lighthouse") == 21
    assert [(r.id, r.message_count) for r in store.chats.all()] == [(kept, 23)]
    assert len(store.messages.active_path(kept)) == 21
    _consistent(store)


def test_emptying_the_trash_removes_a_chat_past_the_cascade_limit_and_keeps_the_rest(store):
    mira = store.characters.add({"name": "Mira", "first_mes": "Hello there."})
    chat = _long_chat(store, mira)
    kept = _long_chat(store, mira, n=10, word="harbour")
    store.chats.delete(chat)
    assert store.chats.purge_trash() == 1
    assert [r.id for r in store.chats.all()] == [kept]
    assert [r.name for r in store.characters.list()] == ["Mira"]
    assert _rows(store, "SELECT count(*) FROM messages") == 13
    assert _indexed(store, "line") == 0 and _indexed(store, "harbour") == 11
    _consistent(store)


def test_a_long_group_chat_stays_when_its_host_goes_and_goes_with_its_last_member(store):
    ann, bob, cid = (store.characters.add({"name": n}) for n in ("Ann", "Bob", "Cid"))
    pair = store.groups.create("Pair", [ann, bob])
    pair_chat = store.groups.new_chat(pair, [(ann, "Hi from Ann")])
    solo = store.groups.create("Solo", [cid])
    solo_chat = store.groups.new_chat(solo, [(cid, "Hi from Cid")])
    for chat in (pair_chat, solo_chat):
        leaf = store.messages.active_leaf(chat)
        with store._tx() as c:
            for i in range(LONG):
                leaf = c.execute(
                    "INSERT INTO messages (chat_id, parent_id, role, text, created_at)"
                    " VALUES (?, ?, 'user', ?, 0)",
                    (chat, leaf, f"line {i}"),
                ).lastrowid
            c.execute("UPDATE chats SET active_leaf_id = ? WHERE id = ?", (leaf, chat))
    # Bob and Ann go to the trash, then Bob comes back: Ann still hosts the pair's chat
    store.characters.delete(bob)
    store.characters.delete(ann)
    store.characters.restore(bob)
    store.characters.delete(cid)
    assert store.chats.info(pair_chat).character_id == ann
    assert store.chats.purge_trash() == 2
    assert store.chats.info(pair_chat).character_id == bob
    assert len(store.messages.active_path(pair_chat)) == LONG + 1
    assert _rows(store, "SELECT count(*) FROM messages WHERE chat_id = ?", (solo_chat,)) == 0
    assert [r.id for r in store.groups.chats(pair)] == [pair_chat]
    _consistent(store)


def test_emptying_the_trash_cut_short_is_finished_by_the_next_one(tmp_path):
    """The app ended after the chat's messages were hidden: the chat is still in the trash,
    showing none, and the next emptying removes it."""
    path = tmp_path / "parlor.db"
    store = Store(path)
    mira = store.characters.add({"name": "Mira", "first_mes": "Hello there."})
    chat = _long_chat(store, mira)
    store.chats.delete(chat)
    with store._tx() as c:  # the first transaction of purge_trash, then the app ends
        purging.hide_chats(c, [chat])
    store.close()

    store = Store(path)
    try:
        assert [(r.id, r.message_count) for r in store.chats.trash()] == [(chat, 0)]
        assert store.chats.search("line") == []
        assert store.chats.purge_trash() == 1 and store.chats.trash() == []
        assert _rows(store, "SELECT count(*) FROM messages") == 0
        _consistent(store)
    finally:
        store.close()


# --- deleting from the trash for good (the Trash dialog's store side) ------------------------


def _chat_with(store: Store, character: int, title: str, lines: int = 3) -> int:
    chat = store.chats.new(character, ["Hello there."], title=title)
    append_chain(store, chat, store.messages.active_leaf(chat), lines, title.lower())
    return chat


def _trash_ids(store: Store) -> tuple[list[int], list[int]]:
    return [r.id for r in store.chats.trash()], [r.id for r in store.characters.trash()]


def test_deleting_one_chat_for_good_leaves_the_trash_at_once_and_keeps_the_rest(store):
    mira = store.characters.add({"name": "Mira"})
    going, staying, live = (_chat_with(store, mira, t) for t in ("Going", "Staying", "Live"))
    store.chats.delete(going)
    store.chats.delete(staying)
    assert store.chats.delete_forever(chats=[going]) == 1
    # before any row is removed: out of the trash, its messages hidden, the removal recorded
    assert _trash_ids(store) == ([staying], [])
    assert store.chats.removal_pending() and store.messages.hidden_pending()
    with pytest.raises(StoreError, match="being deleted for good"):
        store.chats.restore(going)
    assert store.chats.remove_going() == 1
    assert not store.chats.removal_pending()
    with pytest.raises(StoreError):
        store.chats.info(going)
    assert _trash_ids(store) == ([staying], [])
    assert [r.id for r in store.chats.all()] == [live]
    assert _rows(store, "SELECT count(*) FROM messages") == 8  # two chats of 4 messages
    _consistent(store)


def test_deleting_a_character_for_good_takes_its_chats_and_moves_a_group_chat(store):
    mira, bo = store.characters.add({"name": "Mira"}), store.characters.add({"name": "Bo"})
    hers, trashed_hers = _chat_with(store, mira, "Hers"), _chat_with(store, mira, "Old")
    his = _chat_with(store, bo, "His")
    pair = store.groups.create("Pair", [mira, bo])
    pair_chat = store.groups.new_chat(pair, [(mira, "Hi from Mira")])
    store.chats.delete(trashed_hers)
    store.characters.delete(bo)  # Bo in the trash too, not deleted for good: he stays
    store.characters.delete(mira)
    assert store.characters.chats_in_trash() == {mira: 1, bo: 1}  # not the group's chat
    store.chats.delete_forever(characters=[mira])
    assert _trash_ids(store) == ([], [bo])  # her chat in the trash went with her
    assert store.chats.remove_going() == 1  # Mira; her chats went with her
    assert store.chats.info(pair_chat).character_id == bo
    assert [m.text for m in store.messages.active_path(pair_chat)] == ["Hi from Mira"]
    for chat in (hers, trashed_hers):
        with pytest.raises(StoreError):
            store.chats.info(chat)
    store.characters.restore(bo)
    assert {r.id for r in store.chats.all()} == {his, pair_chat}
    _consistent(store)


def test_emptying_the_trash_takes_everything_in_it_and_nothing_else(store):
    mira, bo = store.characters.add({"name": "Mira"}), store.characters.add({"name": "Bo"})
    chats = [_chat_with(store, mira, f"Chat {i}") for i in range(3)]
    his = _chat_with(store, bo, "His")
    store.chats.delete(chats[0])
    store.chats.delete(chats[1])
    store.characters.delete(bo)
    assert store.chats.empty_trash() == 3
    assert _trash_ids(store) == ([], [])
    assert store.chats.remove_going() == 3
    assert [r.id for r in store.chats.all()] == [chats[2]]
    assert [r.name for r in store.characters.list()] == ["Mira"]
    with pytest.raises(StoreError):
        store.chats.info(his)
    _consistent(store)


def test_restoring_a_chat_brings_back_its_character_and_group(store):
    mira = store.characters.add({"name": "Mira"})
    chat, other = _chat_with(store, mira, "Chat"), _chat_with(store, mira, "Other")
    store.chats.delete(chat)
    store.characters.delete(mira)
    assert _trash_ids(store) == ([chat], [mira])
    store.chats.restore(chat)
    assert _trash_ids(store) == ([], [])
    assert {r.id for r in store.chats.all()} == {chat, other}
    solo = store.groups.create("Solo", [mira])
    group_chat = store.groups.new_chat(solo, [(mira, "Hi")])
    store.groups.delete(solo)
    store.chats.restore(group_chat)
    assert [g.name for g in store.groups.all()] == ["Solo"]
    assert [r.id for r in store.groups.chats(solo)] == [group_chat]


def test_an_interrupted_removal_is_finished_at_the_next_open_and_only_it(tmp_path):
    """The app ends after the removal was recorded and part of the purge ran: the next open
    removes exactly what was asked. Another trashed chat whose messages are all hidden too
    (its greeting was deleted) and a chat with no message at all stay in the trash."""
    path = tmp_path / "parlor.db"
    store = Store(path)
    mira = store.characters.add({"name": "Mira"})
    going = _long_chat(store, mira)
    bare = store.chats.new(mira, [], title="No messages")
    hidden = _chat_with(store, mira, "Hidden")
    store.messages.hide(store.messages.active_path(hidden)[0].id)
    for chat in (going, bare, hidden):
        store.chats.delete(chat)
    store.chats.delete_forever(chats=[going])
    store.close()
    stop = threading.Event()
    steps = []

    def after_step(removed: int) -> None:  # the exit: after the second batch
        steps.append(removed)
        if len(steps) == 2:
            stop.set()

    assert purging.remove_going(path, stop, after_step) == 0
    assert len(steps) == 2 and 0 < steps[-1] < LONG  # part of it purged, no row deleted

    store = Store(path)  # the next start
    try:
        assert store.chats.removal_pending()
        assert sorted(_trash_ids(store)[0]) == sorted([bare, hidden])
        assert purging.remove_going(path) == 1
        assert not store.chats.removal_pending()
        with pytest.raises(StoreError):
            store.chats.info(going)
        assert sorted(_trash_ids(store)[0]) == sorted([bare, hidden])
        store.chats.restore(bare)
        assert store.chats.info(bare).deleted_at is None
        assert _indexed(store, "line") == 0
    finally:
        store.close()


def test_a_trashed_chat_past_the_cascade_limit_is_removed_on_a_connection_of_its_own(store):
    mira = store.characters.add({"name": "Mira"})
    chat = _long_chat(store, mira)
    kept = _chat_with(store, mira, "Kept")
    store.chats.delete(chat)
    store.chats.empty_trash()
    removed: list[int] = []
    assert purging.remove_going(store.path, progress=removed.append) == 1
    assert removed[-1] == LONG + 3  # the greeting, its swipe, the chain and a branch
    assert [r.id for r in store.chats.all()] == [kept]
    assert _rows(store, "SELECT count(*) FROM messages") == 4
    _consistent(store)
