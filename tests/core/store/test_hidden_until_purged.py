"""What a delete hid is gone for every reader before its purge has run: the chat lists'
counts, the searches across chats and "export everything" leave the hidden rows out, and
the lists still cost what they did when no purge is pending."""

from __future__ import annotations

from app.core.appdata.paths import default_paths
from app.core.chat.context import AppContext
from app.core.store import Store
from app.core.store.export_all import export_everything, import_everything
from app.core.store.reader import Reader
from tests.core.store.store_helpers import vm_steps


def _chat(store: Store, name: str, texts: list[str]) -> tuple[int, list[int]]:
    """A chat of one line after another; returns it and its message ids, oldest first."""
    char = store.characters.add({"name": name, "first_mes": texts[0]})
    chat = store.chats.new(char, [texts[0]])
    ids = [store.messages.active_leaf(chat)]
    with store._tx() as c:  # one commit for the lot
        for i, text in enumerate(texts[1:]):
            ids.append(
                c.execute(
                    "INSERT INTO messages (chat_id, parent_id, role, text, created_at)"
                    " VALUES (?, ?, ?, ?, 0)",
                    (chat, ids[-1], ("user", "assistant")[i % 2], text),
                ).lastrowid
            )
        c.execute("UPDATE chats SET active_leaf_id = ? WHERE id = ?", (ids[-1], chat))
    return chat, ids


def _statements(store: Store, call) -> list[str]:
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    try:
        call()
    finally:
        store._conn.set_trace_callback(None)
    return seen


def test_the_chat_lists_do_not_count_what_a_delete_hid(store):
    chat, ids = _chat(store, "Mira", ["Welcome."] + [f"line {i}" for i in range(12)])
    store.messages.regenerate(ids[5], "a swipe below the cut", "complete")
    store.messages.hide(ids[3])  # it, the 9 after it and the swipe: no row removed yet
    assert [(r.id, r.message_count) for r in store.chats.all()] == [(chat, 3)]
    store.chats.delete(chat)
    assert [(r.id, r.message_count) for r in store.chats.trash()] == [(chat, 3)]
    store.chats.restore(chat)
    store.messages.purge()
    assert [(r.id, r.message_count) for r in store.chats.all()] == [(chat, 3)]


def test_the_chat_list_stays_a_count_per_chat_while_a_purge_is_pending(store):
    """Leaving hidden rows out costs what is hidden, never the length of the chats: with a
    3,000-message chat listed, the list costs its counts when nothing is hidden, a hidden
    10-message branch elsewhere adds a few hundred steps, and no message table is scanned."""
    long, _ = _chat(store, "Long", ["Welcome."] + [f"line {i}" for i in range(3000)])
    short, ids = _chat(store, "Short", ["Welcome."] + [f"line {i}" for i in range(20)])
    counts = vm_steps(
        store,
        lambda: [
            store._query("SELECT count(*) FROM messages WHERE chat_id = ?", (c,))
            for c in (long, short)
        ],
    )
    before = vm_steps(store, store.chats.all)
    assert before - counts < 1000  # a scan of the messages would be 9,000 more
    store.messages.hide(ids[11])
    pending = vm_steps(store, store.chats.all)
    assert {r.id: r.message_count for r in store.chats.all()} == {long: 3001, short: 11}
    assert 0 < pending - before < 1000  # the long chat alone has 3,001 index entries
    (listing,) = _statements(store, store.chats.all)
    plan = [r[3] for r in store._query(f"EXPLAIN QUERY PLAN {listing}")]
    assert not [p for p in plan if p.startswith("SCAN m")], plan  # messages are searched


def test_the_searches_across_chats_leave_out_what_a_delete_hid(store):
    chat, ids = _chat(
        store,
        "Mira",
        ["Welcome.", "the lighthouse at dusk", "a lantern", "the lighthouse again", "its keeper"],
    )
    store.messages.hide(ids[2])  # the lantern line; the second lighthouse is below it
    assert [h.message_id for h in store.chats.search("lighthouse")] == [ids[1]]
    assert store.chats.search("lantern") == [] and store.chats.search("keeper") == []
    assert [m.id for m in store.messages.search("lighthouse")] == [ids[1]]
    with Reader(store.path) as reader:
        assert [h.message_id for b in reader.search_chats("lighthouse") for h in b] == [ids[1]]
        assert list(reader.search_chats("keeper")) == []


def _every_message_in_its_tree(store: Store) -> None:
    for (chat,) in store._query("SELECT id FROM chats"):
        rows = store._query("SELECT count(*) FROM messages WHERE chat_id = ?", (chat,))[0][0]
        assert len(store.messages.of_chat(chat)) == rows


def test_export_everything_leaves_out_what_a_delete_hid(tmp_path, monkeypatch):
    ctx = AppContext.create()
    chat, ids = _chat(ctx.store, "Mira", ["Welcome.", "q1", "a1", "q2", "a2"])
    ctx.store.messages.hide(ids[1])  # the greeting's shown child: hidden, not purged
    target = export_everything(ctx.paths, tmp_path / "export.zip")
    ctx.close()

    monkeypatch.setenv("PARLOR_HOME", str(tmp_path / "other-machine"))
    counts = import_everything(target, default_paths())
    assert counts["messages"] == 1
    other = AppContext.create()
    try:
        assert [m.text for m in other.store.messages.active_path(chat)] == ["Welcome."]
        assert other.store.messages.search("q2") == []
        _every_message_in_its_tree(other.store)
    finally:
        other.close()


def test_export_everything_after_a_delete_imports_again(tmp_path, monkeypatch):
    """The parent of a deleted message still named it as the child it showed; an import
    refused such a pointer, so a library with any delete could not be imported again."""
    ctx = AppContext.create()
    chat, ids = _chat(ctx.store, "Mira", ["Welcome."])
    ids.append(ctx.store.messages.append(chat, ids[0], "user", "q1"))  # the greeting shows it
    ctx.store.messages.append(chat, ids[1], "assistant", "a1")
    ctx.store.messages.delete(ids[1])  # hidden, then purged
    target = export_everything(ctx.paths, tmp_path / "export.zip")
    ctx.close()

    monkeypatch.setenv("PARLOR_HOME", str(tmp_path / "other-machine"))
    assert import_everything(target, default_paths())["messages"] == 1
    other = AppContext.create()
    try:
        assert [m.text for m in other.store.messages.active_path(chat)] == ["Welcome."]
        other.store.messages.append(chat, ids[0], "user", "q1 again")
        assert [m.text for m in other.store.messages.active_path(chat)] == ["Welcome.", "q1 again"]
        _every_message_in_its_tree(other.store)
    finally:
        other.close()
