"""A long chat opens at its end with only one page laid out, and pages in as you scroll up."""

from __future__ import annotations

from app.core.chat.context import AppContext
from app.core.chat.default_character import ensure_default_character
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
