"""The character's note (`data.extensions.depth_prompt`, SillyTavern's character-specific
author's note) is edited in the card editor and reaches the prompt at its depth and role
(`setExtensionPrompt('DEPTH_PROMPT', …)` in public/script.js)."""

from __future__ import annotations

from app.core.cards import Card
from app.core.prompt import Message, PromptInput, build_prompt, preset
from app.gui.characters.card_editor import CardEditor


def card_with(extensions=None) -> Card:
    data = {"name": "Mira", "description": "Mira keeps the lighthouse."}
    if extensions is not None:
        data["extensions"] = extensions
    return Card(data=data)


def test_an_untouched_note_leaves_the_card_alone(qtbot):
    card = card_with()
    editor = CardEditor(card)
    qtbot.addWidget(editor)
    assert editor.card().data == card.data
    assert not editor.has_changes()


def test_the_note_is_written_and_injected(qtbot):
    card = card_with({"talkativeness": "0.5"})
    editor = CardEditor(card)
    qtbot.addWidget(editor)
    editor.depth_prompt.text.setPlainText("{{char}} never lies.")
    editor.depth_prompt.depth.setValue(1)
    editor.depth_prompt.role.setCurrentIndex(2)  # assistant
    data = editor.card().data
    assert data["extensions"] == {
        "talkativeness": "0.5",
        "depth_prompt": {"prompt": "{{char}} never lies.", "depth": 1, "role": "assistant"},
    }
    history = [Message("assistant", "Hello."), Message("user", "Is it true?")]
    text = build_prompt(
        PromptInput(data, "Ann", history=history), preset("chatml"), len, 4096, 256
    ).text
    assert (
        "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>assistant\nMira never "
        "lies.<|im_end|>\n<|im_start|>user\nIs it true?"
    ) in text
