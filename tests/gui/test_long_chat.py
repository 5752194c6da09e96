"""A long chat opens at its end with only one page laid out, and pages in as you scroll up."""

from __future__ import annotations

from app.core.context import AppContext
from app.core.default_character import ensure_default_character
from app.gui.chat.model import PAGE


def _long_chat(n: int) -> None:
    ctx = AppContext.create()
    char = ensure_default_character(ctx.store)
    chat = ctx.store.new_chat(char, ["Welcome."])
    parent = ctx.store.active_leaf(chat)
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        parent = ctx.store.append_message(chat, parent, role, f"message number {i}")
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
    row = next(r for r in range(window.chat_model.rowCount())
               if window.chat_model.index(r).data() == first_shown)
    assert row == PAGE
    rect = window.chat_view.visualRect(window.chat_model.index(row))
    assert -rect.height() <= rect.top() <= window.chat_view.viewport().height()
