"""A reply that fails leaves no stuck status and says how to try again."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt

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
