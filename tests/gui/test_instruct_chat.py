"""A chat with one of SillyTavern's instruct presets, end to end on the tiny model."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.gui.conftest import load


def test_a_reply_with_an_instruct_preset_and_clean_up(qtbot, make_window, tiny_llama_path):
    window = make_window()
    window.ctx.settings.template = "Alpaca"
    load(qtbot, window, tiny_llama_path)
    prompts = []
    window.worker.worker.started.connect(prompts.append)
    qtbot.keyClicks(window.composer, "Hello Wren")
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    text = prompts[-1].text
    assert text.endswith("### Instruction:\nHello Wren\n\n### Response:\n")  # "force": no name
    assert "\n### Instruction:" in prompts[-1].stop
    reply = window.chat_model.messages()[-1]
    assert reply.status == "complete" and reply.text.strip()
    assert not reply.text.lstrip().startswith("Wren:")
