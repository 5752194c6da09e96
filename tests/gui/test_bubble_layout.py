"""Message bubbles: the header's pieces never overlap, hostile text paints quickly."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem

from app.gui.chat.bubble_layout import HEADER, PAD

LONG_NAME = "Archibald Fitzwilliam Montgomery-Smythe the Third, Keeper of the Lantern"


def _window_with(make_window, text: str, status: str = "interrupted"):
    window = make_window()
    store, chat = window.ctx.store, window.controller.chat_id
    store.messages.append(chat, store.messages.active_leaf(chat), "user", text, status=status)
    store.messages.append(chat, store.messages.active_leaf(chat), "assistant", text, status=status)
    window.controller.reload()
    window.chat_model.names["assistant"] = LONG_NAME
    window.chat_model.set_out_of_context(2)
    return window


def _option(view, index) -> QStyleOptionViewItem:
    opt = QStyleOptionViewItem()
    view.initViewItemOption(opt)
    opt.rect = view.visualRect(index)
    opt.rect.setHeight(max(opt.rect.height(), 60))
    return opt


@pytest.mark.parametrize("text", ["", "Hi", "word " * 400])
@pytest.mark.parametrize("width", [420, 1200])
def test_header_pieces_do_not_overlap(qtbot, make_window, text, width):
    window = _window_with(make_window, text)
    view, delegate = window.chat_view, window.chat_view.itemDelegate()
    view.resize(width, 600)
    for row in range(window.chat_model.rowCount()):
        index = window.chat_model.index(row)
        for hover in (-1, row):
            delegate.hover_row = hover
            opt = _option(view, index)
            bubble = delegate.bubble_rect(opt, index)
            rects = delegate.header(opt, index).rects()
            for i, a in enumerate(rects):
                assert bubble.contains(a), (row, hover, a, bubble)
                for b in rects[i + 1 :]:
                    assert not a.intersects(b), (row, hover, a, b)


def test_hovering_does_not_move_the_swipe_arrows(qtbot, make_window):
    window = _window_with(make_window, "Hi", status="complete")
    view, delegate = window.chat_view, window.chat_view.itemDelegate()
    index = window.chat_model.index(window.chat_model.rowCount() - 1)
    before = delegate.header(_option(view, index), index).swipe_right
    delegate.hover_row = index.row()
    after = delegate.header(_option(view, index), index)
    assert after.swipe_right == before and after.actions


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1_000_000,
        "مرحبا بالعالم " * 2000,
        "😀🐉🏰 " * 5000,
        "你好世界，这是一个很长的句子。" * 3000,
    ],
)
def test_hostile_text_paints_one_bubble_quickly(qtbot, make_window, text):
    window = _window_with(make_window, text, status="complete")
    view, delegate = window.chat_view, window.chat_view.itemDelegate()
    index = window.chat_model.index(window.chat_model.rowCount() - 1)
    opt = _option(view, index)
    size = delegate.sizeHint(opt, index)  # the layout, once, as the view does
    # painted as the view paints a row taller than itself: the whole row's rectangle on the
    # viewport (whose own clip a QPainter does not report)
    opt.rect = QRect(0, 0, opt.rect.width(), size.height())
    image = QImage(view.viewport().size(), QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    start = time.perf_counter()
    delegate.paint(painter, opt, index)
    elapsed = time.perf_counter() - start
    painter.end()
    assert elapsed < 0.1, f"{elapsed * 1000:.0f} ms"
    text_area = image.copy(QRect(60, 40, image.width() - 120, image.height() - 60))
    shades = {
        text_area.pixel(x, y)
        for x in range(0, text_area.width(), 3)
        for y in range(0, text_area.height(), 3)
    }
    assert len(shades) > 5  # the text is drawn, not clipped away


@pytest.mark.parametrize("text", ["", "Hi", "word " * 400])
@pytest.mark.parametrize("width", [420, 1200])
def test_the_retry_button_sits_inside_a_failed_bubble_below_its_text(
    qtbot, make_window, text, width
):
    window = _window_with(make_window, text, status="error")
    view, delegate = window.chat_view, window.chat_view.itemDelegate()
    view.resize(width, 600)
    index = window.chat_model.index(window.chat_model.rowCount() - 1)
    opt = _option(view, index)
    opt.rect.setHeight(delegate.sizeHint(opt, index).height())
    bubble, retry = delegate.bubble_rect(opt, index), delegate.retry_button(opt, index)
    assert retry is not None and bubble.contains(retry)
    text_bottom = bubble.top() + PAD + HEADER + delegate.document_for(opt, index).size().height()
    assert retry.top() >= text_bottom  # PAD + HEADER, then the text, then the button
    for piece in delegate.header(opt, index).rects():
        assert not piece.intersects(retry)
    assert delegate.retry_button(opt, window.chat_model.index(index.row() - 1)) is None
