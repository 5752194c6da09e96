"""A reply that fails leaves no stuck status and says how to try again."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStyleOptionViewItem

from tests.gui.conftest import load


def test_a_failed_reply_clears_writing_and_offers_a_retry(qtbot, make_window, tiny_llama_path):
    window = make_window()
    load(qtbot, window, tiny_llama_path)
    # The builder is told of a larger context than llama.cpp has, so the engine refuses the
    # prompt: a real failure on the worker's side.
    window.controller.info = replace(window.controller.info, n_ctx=100_000)
    errors = []
    window.controller.error.connect(errors.append)
    qtbot.keyClicks(window.composer, "Tell me everything. " + "Then more. " * 500)
    with qtbot.waitSignal(window.controller.error, timeout=60000):
        qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    assert "more than the context" in errors[0] and "Regenerate" in errors[0]
    assert window.chat_model.messages()[-1].status == "error"
    assert not window.speed_label.text().startswith("writing")
    assert not window.controller.busy and window.send_button.isEnabled()


def _retry_point(window):
    view, delegate = window.chat_view, window.chat_view.itemDelegate()
    index = window.chat_model.index(window.chat_model.rowCount() - 1)
    view.scrollToBottom()
    opt = QStyleOptionViewItem()
    view.initViewItemOption(opt)
    opt.rect = view.visualRect(index)
    rect = delegate.retry_button(opt, index)
    return None if rect is None else rect.center().toPoint()


def test_the_failed_bubble_says_why_and_its_retry_button_writes_the_reply(
    qtbot, make_window, tiny_llama_path
):
    """A real failure (llama.cpp refuses a prompt longer than its context), then Retry with
    the real context size: the builder leaves old history out and the reply is written, one
    swipe on from the failed one (SillyTavern's regenerate makes a new swipe the same way)."""
    window = make_window(max_tokens=8)
    load(qtbot, window, tiny_llama_path)
    real = window.controller.info
    store, chat = window.ctx.store, window.controller.chat_id
    for i in range(2 * real.n_ctx // 40):  # far more history than the context holds
        role = "user" if i % 2 == 0 else "assistant"
        store.messages.append(chat, store.messages.active_leaf(chat), role, "lorem ipsum " * 10)
    window.controller.reload()
    window.controller.info = replace(real, n_ctx=10 * real.n_ctx)  # the builder keeps it all
    with qtbot.waitSignal(window.controller.error, timeout=60000):
        window.controller.send("Hello there.")
    failed = window.chat_model.messages()[-1]
    assert failed.status == "error" and "more than the context" in failed.gen_info["error"]
    doc = _doc_text(window)
    assert "more than the context" in doc  # the cause is in the bubble, not only a status bar
    assert window.statusBar().currentMessage() != "writing…" and not window.controller.busy
    point = _retry_point(window)
    assert point is not None
    window.controller.info = real
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        qtbot.mouseClick(window.chat_view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    reply = window.chat_model.messages()[-1]
    assert reply.status == "complete" and reply.id != failed.id
    assert reply.parent_id == failed.parent_id and (reply.sibling_index, reply.sibling_count) == (
        1,
        2,
    )
    assert _retry_point(window) is None  # a good reply offers no Retry


def _doc_text(window) -> str:
    view = window.chat_view
    index = window.chat_model.index(window.chat_model.rowCount() - 1)
    opt = QStyleOptionViewItem()
    view.initViewItemOption(opt)
    opt.rect = view.visualRect(index)
    return view.itemDelegate().document_for(opt, index).toPlainText()


def test_a_stored_crashed_reply_offers_retry_until_a_good_one_replaces_it(qtbot, make_window):
    """As a chat reopened after a crash holds it: "interrupted" with the cause in its info."""
    window = make_window()
    store, chat = window.ctx.store, window.controller.chat_id
    leaf = store.messages.active_leaf(chat)
    mid = store.messages.append(chat, leaf, "assistant", "Half a sent", status="interrupted")
    store.messages.update(mid, "Half a sent", "interrupted", {"error": "The engine crashed."})
    window.controller.reload()
    assert "Half a sent\nThe engine crashed." == _doc_text(window)
    assert _retry_point(window) is not None
    store.messages.update(mid, "Half a sentence.", "complete", {"model": "x"})
    window.controller.reload()
    assert _retry_point(window) is None


def test_a_real_engine_crash_mid_reply_offers_retry_which_writes_it_after_a_reload(
    qtbot, make_window, tiny_llama_path
):
    """The llama.cpp child is killed while it writes: the reply keeps its text, is marked
    interrupted with the cause, nothing says "writing…"; once the model is loaded again,
    Retry writes the reply anew."""
    window = make_window(max_tokens=2000)
    load(qtbot, window, tiny_llama_path)
    worker = window.worker.worker
    killed = []

    def kill(_text: str) -> None:
        if not killed:
            killed.append(worker.engine._proc.pid)
            os.kill(killed[0], signal.SIGKILL)

    worker.token_batch.connect(kill)
    with qtbot.waitSignal(window.controller.error, timeout=60000):
        window.controller.send("Tell me a long story.")
    worker.token_batch.disconnect(kill)
    crashed = window.chat_model.messages()[-1]
    assert killed and crashed.status == "interrupted" and crashed.gen_info["error"]
    assert crashed.gen_info["error"] in _doc_text(window)
    assert not window.controller.busy and not window.speed_label.text().startswith("writing")
    point = _retry_point(window)
    assert point is not None
    load(qtbot, window, tiny_llama_path)  # the crash unloaded the model
    window.ctx.settings.max_tokens = 8
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        qtbot.mouseClick(window.chat_view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    reply = window.chat_model.messages()[-1]
    assert reply.status == "complete" and reply.parent_id == crashed.parent_id
    assert reply.id != crashed.id and _retry_point(window) is None
