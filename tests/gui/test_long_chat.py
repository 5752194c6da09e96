"""A long chat opens at its end with only one page laid out, and pages in as you scroll up."""

from __future__ import annotations

import threading

from app.core.chat.context import AppContext
from app.core.chat.default_character import ensure_default_character
from app.core.store.path_pages import UNBOUNDED
from app.gui.chat.model import PAGE


def _long_chat(n: int) -> None:
    ctx = AppContext.create()
    char = ensure_default_character(ctx.store)
    chat = ctx.store.chats.new(char, ["Welcome."])
    parent = ctx.store.messages.active_leaf(chat)
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        parent = ctx.store.messages.append(chat, parent, role, f"message number {i}")
    ctx.close()


def test_long_chat_opens_at_the_end_with_one_page(qtbot, make_window):
    _long_chat(500)
    window = make_window()
    model = window.chat_model
    assert model.rowCount() == PAGE
    assert len(model.messages()) == 501
    assert model.index(PAGE - 1).data() == "message number 499"
    bar = window.chat_view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    assert bar.value() == bar.maximum()


def test_scrolling_to_the_top_loads_the_previous_page_in_place(qtbot, make_window):
    _long_chat(200)
    window = make_window()
    bar = window.chat_view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    first_shown = window.chat_model.index(0).data()
    bar.setValue(0)
    assert window.chat_model.rowCount() == 2 * PAGE
    # the message that was at the top is still near the top of the viewport, not jumped away
    row = next(
        r
        for r in range(window.chat_model.rowCount())
        if window.chat_model.index(r).data() == first_shown
    )
    assert row == PAGE
    rect = window.chat_view.visualRect(window.chat_model.index(row))
    assert -rect.height() <= rect.top() <= window.chat_view.viewport().height()


def test_find_in_chat_reaches_pages_not_loaded_yet(qtbot, make_window):
    _long_chat(300)
    window = make_window()
    window.find_action.trigger()
    assert window.find_bar.isVisible()
    window.find_bar.field.setText("message number 12")
    with qtbot.waitSignal(window.find_bar.searched):  # the store is searched off the GUI thread
        assert window.find_bar.find(-1) is None
    hit = window.find_bar.current
    # newest match first: "message number 129" is the newest text containing it
    assert window.chat_model.messages()[hit].text == "message number 129"
    assert window.chat_view.currentIndex().data() == "message number 129"
    while window.find_bar.find(-1) is not None:
        pass
    assert window.chat_view.currentIndex().data() == "message number 12"
    assert window.find_bar.find(+1) is not None  # and back towards the newest
    assert window.chat_view.currentIndex().data() == "message number 120"


def test_shortcut_list_names_the_chat_shortcuts(make_window):
    window = make_window()
    keys = dict(window.shortcut_list())
    assert {"Ctrl+N", "Ctrl+Return", "Alt+Left", "Alt+Right", "Esc", "Ctrl+F"} <= set(keys)


def test_deleting_the_oldest_message_of_a_long_chat_purges_it_off_the_gui_thread(
    qtbot, make_window
):
    """Delete the first line of a 1,500-message chat: Undo brings it back exactly; when the
    offer ends the chat is its greeting at once, and the rows are removed by a background
    job on its own connection, never by the GUI thread (one cascading DELETE also failed:
    SQLite ends a cascade 1,000 levels deep)."""
    _long_chat(1500)
    window = make_window()
    store, chat, model = window.ctx.store, window.controller.chat_id, window.chat_model
    rows = store._query("SELECT id FROM messages WHERE chat_id = ? ORDER BY id LIMIT 2", (chat,))
    first = rows[1][0]  # the line after the greeting
    ops = window.message_ops
    assert ops.delete(first) == 1500
    assert [model.index(r).data() for r in range(model.rowCount())] == ["Welcome."]
    ops.undo()
    assert model.index(PAGE - 1).data() == "message number 1499"
    assert len(model.messages()) == 1501

    on_gui_thread: list[str] = []

    def trace(sql: str) -> None:
        if threading.current_thread() is threading.main_thread():
            on_gui_thread.append(sql)

    while model.has_earlier():  # scrolled up to the first line, which the user deletes
        model.load_earlier()
    store._conn.set_trace_callback(trace)
    try:
        assert ops.delete(first) == 1500  # counted from the rows shown, not walked
        ops.expire()  # the Undo offer ran out: deleted for good
        assert not ops.undo_bar.isVisible()
        assert [m.text for m in store.messages.active_path(chat)] == ["Welcome."]
        assert [model.index(r).data() for r in range(model.rowCount())] == ["Welcome."]
        qtbot.waitUntil(
            lambda: (
                store._query("SELECT count(*) FROM messages WHERE chat_id = ?", (chat,))[0][0] == 1
            ),
            timeout=60000,
        )
    finally:
        store._conn.set_trace_callback(None)
    assert not store.messages.hidden_pending()
    assert [s for s in on_gui_thread if s.lstrip().upper().startswith("DELETE")] == []
    # nor walks up the path: not the whole of it, nor from the leaf up to the message
    assert [s for s in on_gui_thread if "up(" in s and str(UNBOUNDED) in s] == []
    assert [s for s in on_gui_thread if "up.id !=" in s] == []
    assert store._query("PRAGMA foreign_key_check") == []
    qtbot.waitUntil(lambda: not window.controller.purger.busy)


def test_a_delete_the_last_run_left_hidden_is_purged_once_the_window_opens(qtbot, make_window):
    """The app ended while a purge was under way: the next start shows the chat as the
    delete left it and removes the rest in the background."""
    _long_chat(300)
    ctx = AppContext.create()
    (chat,) = [c.id for c in ctx.store.chats.all()]
    rows = ctx.store._query("SELECT id FROM messages WHERE chat_id = ? ORDER BY id", (chat,))
    ctx.store.messages.hide(rows[1][0])  # hidden and listed, no row removed yet
    ctx.close()
    window = make_window()
    store, model = window.ctx.store, window.chat_model
    assert [model.index(r).data() for r in range(model.rowCount())] == ["Welcome."]
    qtbot.waitUntil(lambda: not store.messages.hidden_pending(), timeout=60000)
    assert store._query("SELECT count(*) FROM messages WHERE chat_id = ?", (chat,))[0][0] == 1
    qtbot.waitUntil(lambda: not window.controller.purger.busy)
