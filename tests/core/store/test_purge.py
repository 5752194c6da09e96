"""Deleting a long branch on real SQLite: hidden at once, removed a batch at a time, and an
exit part-way leaves the chat as the delete left it until the next purge finishes."""

from __future__ import annotations

import threading

from app.core.store import Store
from app.core.store.purge import BATCH, purge, purge_step
from tests.core.store.store_helpers import append_chain


def _chain(store: Store, n: int) -> tuple[int, int, list[int]]:
    """A chat: its greeting, a kept reply beside the first line, then `n` lines in a row
    under the first. Returns the chat, the greeting and the chain's ids."""
    char = store.characters.add({"name": "Mira", "first_mes": "Hello there."})
    chat = store.chats.new(char, ["Hello there."])
    greeting = store.messages.active_leaf(chat)
    store.messages.append(chat, greeting, "user", "a kept swipe")
    ids = append_chain(store, chat, greeting, n)
    return chat, greeting, ids


def _rows(store: Store, chat: int) -> int:
    return store._query("SELECT count(*) FROM messages WHERE chat_id = ?", (chat,))[0][0]


def _consistent(store: Store) -> None:
    assert store._query("PRAGMA foreign_key_check") == []
    store._query("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")


def test_deleting_the_start_of_a_chain_longer_than_sqlites_cascade_limit(store):
    """SQLite ends a cascade 1,000 levels deep; one DELETE of the chain's first line failed."""
    chat, greeting, ids = _chain(store, 1500)
    assert store.messages.delete(ids[0]) is not None
    assert [m.text for m in store.messages.active_path(chat)] == ["Hello there.", "a kept swipe"]
    assert _rows(store, chat) == 2 and not store.messages.hidden_pending()
    _consistent(store)


def test_a_purge_cut_short_leaves_the_branch_hidden_and_the_next_finishes_it(tmp_path):
    path = tmp_path / "parlor.db"
    store = Store(path)
    chat, greeting, ids = _chain(store, 3 * BATCH)
    leaf = store.messages.hide(ids[0])
    assert leaf != ids[-1] and store.messages.get(leaf).text == "a kept swipe"
    with store._tx() as c:  # one step, then the app ends
        assert 0 < purge_step(c) < 3 * BATCH
    store.close()

    store = Store(path)  # the next start: the chat is as the delete left it
    try:
        path_now = store.messages.active_path(chat)
        assert [m.text for m in path_now] == ["Hello there.", "a kept swipe"]
        assert path_now[1].sibling_count == 1  # the deleted line is no swipe of it
        assert [m.text for m in store.messages.tail(chat, 10)] == [m.text for m in path_now]
        assert [m.text for m in store.messages.of_chat(chat)] == ["Hello there.", "a kept swipe"]
        copy = store.chats.duplicate(chat)
        assert [m.text for m in store.messages.of_chat(copy)] == ["Hello there.", "a kept swipe"]
        # a walk from inside the hidden branch stops at its top instead of going round
        walk = [m.id for m in store.messages.before(ids[-1], 10**6)]
        assert walk == ids[ids.index(walk[0]) : -1] and walk[0] != ids[0]
        _consistent(store)
        assert _rows(store, chat) > 2 and store.messages.hidden_pending()

        left = _rows(store, chat) - 2
        assert purge(path) == left  # as the window does, on a connection of its own
        assert _rows(store, chat) == 2 and not store.messages.hidden_pending()
        assert store.messages.active_path(chat) == path_now
        _consistent(store)
    finally:
        store.close()


def test_a_cancelled_purge_stops_between_steps_and_keeps_the_rest_listed(store):
    chat, greeting, ids = _chain(store, 2 * BATCH)
    store.messages.hide(ids[0])
    cancel = threading.Event()
    cancel.set()
    assert purge(store.path, cancel) == 0
    assert _rows(store, chat) == 2 + 2 * BATCH and store.messages.hidden_pending()
    assert purge(store.path) == 2 * BATCH
    assert _rows(store, chat) == 2
