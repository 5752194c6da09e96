"""A 100,000-message chat in a real store, in the real window: it opens on one page, takes a
message and a swipe without reading the whole path on the GUI thread, and Find reaches its
oldest message, highlighted, by loading only the page around it.

Speed is measured by `parlor bench --only gui_scale`, not here; these tests check that the
long chat behaves like a short one.
"""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStyleOptionViewItem

from app.core.chat.context import AppContext
from app.core.chat.default_character import ensure_default_character
from app.core.store import Store
from app.gui.chat.model import PAGE, Roles
from bench.gui_scale import OLDEST, write_long_chat
from tests.gui.conftest import load

N = 100_000
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def long_store(tmp_path_factory):
    """The 100,000-message library, written once; each test gets its own copy."""
    path = tmp_path_factory.mktemp("long") / "parlor.db"
    store = Store(path)
    chat = write_long_chat(store, ensure_default_character(store), N)
    store.close()
    return path, chat


@pytest.fixture
def long_window(make_window, long_store):
    source, chat = long_store
    target = AppContext.create()
    database = target.paths.database
    target.close()
    shutil.copyfile(source, database)
    window = make_window(max_tokens=4)
    assert window.controller.chat_id == chat
    return window


def _reply(qtbot, window, act) -> None:
    with qtbot.waitSignal(window.controller.reply_finished, timeout=120_000):
        assert act()


def _highlighted(window, row: int) -> list[str]:
    view = window.chat_view
    opt = QStyleOptionViewItem()
    view.initViewItemOption(opt)
    opt.rect = view.visualRect(window.chat_model.index(row))
    doc = view.itemDelegate().document_for(opt, window.chat_model.index(row))
    out, block = [], doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.charFormat().background().style() != Qt.BrushStyle.NoBrush:
                out.append(frag.text())
            it += 1
        block = block.next()
    return out


def test_a_100k_chat_opens_sends_and_swipes_on_one_page(qtbot, long_window, tiny_llama_path):
    window, model, store = long_window, long_window.chat_model, long_window.ctx.store
    assert model.rowCount() == PAGE and model.has_earlier()
    assert model.index(PAGE - 1).data().endswith(f"(entry {N - 1})")
    old_leaf = store.messages.active_leaf(window.controller.chat_id)
    load(qtbot, window, tiny_llama_path)

    _reply(qtbot, window, lambda: window.controller.send("And then?"))
    user, reply = model.message_at(model.rowCount() - 2), model.message_at(model.rowCount() - 1)
    assert (user.text, user.parent_id, reply.parent_id) == ("And then?", old_leaf, user.id)
    assert model.rowCount() == PAGE + 2  # the two new rows, not a reload of the path
    # the prompt was built from the path's newest messages, the older ones counted (on the
    # worker thread): nearly all of the chat did not fit the tiny model's context, and the
    # marks say where it starts among the rows shown
    assert window.controller.last_prompt.dropped_messages > N - 1000
    assert not model.index(model.rowCount() - 2).data(Roles.OUT_OF_CONTEXT)
    assert model.index(0).data(Roles.OUT_OF_CONTEXT)

    _reply(qtbot, window, lambda: window.controller.swipe(reply.id, +1) is not None)
    second = model.message_at(model.rowCount() - 1)
    assert second.id != reply.id and (second.sibling_index, second.sibling_count) == (1, 2)
    assert window.controller.swipe(second.id, -1) == reply.id
    shown = model.message_at(model.rowCount() - 1)
    assert (shown.id, shown.text, shown.sibling_count) == (reply.id, reply.text, 2)
    assert store.messages.active_leaf(window.controller.chat_id) == reply.id


def test_find_reaches_the_oldest_of_100k_messages_and_highlights_it(qtbot, long_window):
    window, model = long_window, long_window.chat_model
    window.find_action.trigger()
    window.find_bar.field.setText("Gull and Lantern")
    with qtbot.waitSignal(window.find_bar.searched, timeout=60_000) as done:
        assert window.find_bar.find(-1) is None  # searched off the GUI thread
    assert done.args == [1]
    assert window.find_bar.current == 0
    assert window.chat_view.currentIndex().data() == OLDEST
    assert model.rowCount() <= PAGE and not model.has_earlier() and model.has_later()
    assert window.find_bar.result.text() == f"message 1 of {N}"
    assert _highlighted(window, window.chat_view.currentIndex().row()) == ["Gull and Lantern"]
    # scrolling down from there brings the next page, in path order
    last = model.message_at(model.rowCount() - 1)
    assert model.load_later() == PAGE
    assert model.message_at(model.rowCount() - PAGE).parent_id == last.id
