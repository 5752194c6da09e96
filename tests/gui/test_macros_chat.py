"""Macros in a real chat window: variables that last across turns and restarts, and the
inspector's list of macros nobody knows."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.core.prompt import Message, PromptInput, build_prompt, preset
from app.core.store.variables import VariableStore
from app.gui.chat.inspector import PromptInspector
from tests.gui.conftest import load


def _send(qtbot, window, text: str):
    prompts = []
    window.worker.worker.started.connect(prompts.append)
    qtbot.keyClicks(window.composer, text)
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    window.worker.worker.started.disconnect(prompts.append)
    return prompts[-1]


def test_a_counter_in_the_card_counts_sent_prompts_and_is_kept(qtbot, make_window, tiny_llama_path):
    """SillyTavern runs `{{incvar}}` each time the card is prompted; the chat keeps the value
    in its `chat_metadata.variables`."""
    window = make_window()
    load(qtbot, window, tiny_llama_path)
    controller, store = window.controller, window.ctx.store
    character = store.chats.character_of(controller.chat_id)
    card = store.characters.card(character)
    card["description"] = "Visit number {{incvar::visits}}. {{frobnicate}}"
    store.characters.update(character, card)  # saved, as the card editor does
    controller.open_chat(controller.chat_id)
    assert "incvar" in controller.card["description"]
    first = _send(qtbot, window, "Hello")
    assert "Visit number 1." in first.text and first.unknown_macros == ["{{frobnicate}}"]
    second = _send(qtbot, window, "Again")
    assert "Visit number 2." in second.text
    assert VariableStore(window.ctx.store).chat(controller.chat_id) == {"visits": 2}


def test_the_inspector_lists_unknown_macros_and_banned_words(qtbot):
    prompt = build_prompt(
        PromptInput(
            {"name": "X", "description": 'Hi {{wat}} {{banned "alas"}}'},
            "Ann",
            history=[Message("user", "hi")],
        ),
        preset("chatml"),
        len,
        4096,
        256,
    )
    inspector = PromptInspector(prompt, 4096)
    qtbot.addWidget(inspector)
    assert inspector.unknown_label is not None
    assert inspector.unknown_label.text() == "Unknown macros, sent as written: {{wat}}"
    assert "{{wat}}" in inspector.text.toPlainText() and "alas" not in inspector.text.toPlainText()
