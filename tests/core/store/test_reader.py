"""The background reader: its own read-only connection sees what the Store committed, its
history is the active path, Find keeps to the path shown, and the search across chats comes
in batches, newest first."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from app.core.store import Store
from app.core.store.path_pages import UNBOUNDED
from app.core.store.reader import Reader, phrase_query


def _chat(store: Store, texts: list[str]) -> int:
    char = store.characters.add({"name": "Ines", "first_mes": texts[0]})
    chat = store.chats.new(char, [texts[0]])
    parent = store.messages.active_leaf(chat)
    for i, text in enumerate(texts[1:]):
        parent = store.messages.append(chat, parent, ("user", "assistant")[i % 2], text)
    return chat


def _history(reader: Reader, chat: int, leaf: int | None = None) -> list:
    return reader.history_tail(chat, leaf, UNBOUNDED).messages


def test_history_is_the_active_path_as_committed(store):
    chat = _chat(store, ["Welcome.", "Hello there", "*waves* Hi!", "How are you?"])
    with Reader(store.path) as reader:
        history = _history(reader, chat)
    path = store.messages.active_path(chat)
    assert history == [replace(m, sibling_index=0, sibling_count=1) for m in path]
    leaf = store.messages.append(chat, path[-1].id, "assistant", "Fine, thanks.")
    with Reader(store.path) as reader:  # a new reader sees the new commit
        assert _history(reader, chat)[-1].id == leaf
        assert [m.id for m in _history(reader, chat, path[1].id)] == [m.id for m in path[:2]]


def test_find_keeps_to_the_path_shown_and_finds_pieces_of_words(store):
    chat = _chat(store, ["Welcome to the harbour.", "The lantern is lit", "A second lantern"])
    path = store.messages.active_path(chat)
    # another take of the last reply, not shown: its lantern is not on the path
    other = store.messages.regenerate(path[-1].id, "No lantern here", "complete")
    store.messages.show_branch(chat, path[-1].id)
    with Reader(store.path) as reader:
        hits = reader.find_in_path(chat, "lantern")
        assert hits.hits == [1, 2] and hits.path == [m.id for m in path]
        assert other not in [hits.path[i] for i in hits.hits]
        assert reader.find_in_path(chat, "the lan").hits == [1]  # a phrase, last word begun
        assert reader.find_in_path(chat, "arbou").hits == [0]  # inside a word: the scan
        assert reader.find_in_path(chat, "LANTERN IS").hits == [1]
        assert reader.find_in_path(chat, "unicorn").hits == []
        cancel = threading.Event()
        cancel.set()
        assert reader.find_in_path(chat, "lantern", cancel).hits == []


def test_phrase_query_quotes_user_text():
    assert phrase_query('say "hi') == '"say ""hi"*'
    assert phrase_query("harbour ") == '"harbour "'
    assert phrase_query("...") is None


def test_search_across_chats_comes_in_batches_newest_first(store):
    chat = _chat(store, ["Welcome."] + [f"atlas {i}" for i in range(25)])
    with Reader(store.path) as reader:
        batches = list(reader.search_chats("atlas", batch=10))
    assert [len(b) for b in batches] == [10, 10, 5]
    hits = [h for b in batches for h in b]
    assert {h.chat_id for h in hits} == {chat}
    assert [h.snippet for h in hits[:2]] == ["[atlas] 24", "[atlas] 23"]


def test_a_missing_file_is_a_store_error(tmp_path):
    from app.core.store import StoreError

    with pytest.raises(StoreError):
        Reader(tmp_path / "nothing.db")


def test_a_tail_read_counts_what_it_leaves_behind(store):
    """The newest messages, and the older ones counted in SQLite as the prompt counts them:
    all stored, those with text that are not hidden system lines, and the user's of those."""
    texts = ["Welcome."] + [f"line {i}" if i % 5 else "" for i in range(1, 40)]
    chat = _chat(store, texts)
    with store._tx() as c:  # every 7th a hidden system line
        c.execute("UPDATE messages SET role = 'system' WHERE chat_id = ? AND id % 7 = 0", (chat,))
    whole = store.messages.active_path(chat)
    with Reader(store.path) as reader:
        tail = reader.history_tail(chat, None, 12)
        everything = reader.history_tail(chat, None, 100)
    older = whole[:-12]
    assert [m.id for m in tail.messages] == [m.id for m in whole[-12:]]
    sent = [m for m in older if m.text and m.role != "system"]
    assert (tail.before, tail.sent_before, tail.user_before) == (
        len(older),
        len(sent),
        sum(m.role == "user" for m in sent),
    )
    assert 0 < tail.user_before < tail.sent_before < tail.before
    assert len(everything.messages) == len(whole) and everything.before == 0
