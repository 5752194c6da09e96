"""The chat's author's note and scenario, edited in their dialog, stored in SillyTavern's
`chat_metadata` keys and used by the prompt (`setFloatingPrompt`, `getExtensionPrompt`);
the note can become the default for chats without one."""

from __future__ import annotations

import pytest

from app.core.appdata.settings import Settings
from app.core.chat.world_info import default_note, lore_input
from app.core.prompt import Message, PromptInput, build_prompt, preset
from app.core.prompt.worldinfo import AuthorsNote, NotePosition
from app.core.store import Store
from app.core.store.world_state import WorldInfoStore
from app.gui.worldinfo.authors_note import AuthorsNoteDialog


@pytest.fixture
def chat(tmp_path):
    store = Store(tmp_path / "p.db")
    character = store.characters.add({"name": "Mira", "scenario": "A calm sea."})
    chat_id = store.chats.new(character, ["Hello."])
    yield store, character, chat_id
    store.close()


def build(store, character, chat_id, settings):
    path = store.messages.active_path(chat_id)
    lore = lore_input(
        WorldInfoStore(store), chat_id, character, [m.id for m in path], default_note(settings)
    )
    history = [Message(m.role, m.text) for m in path] + [Message("user", "And now?")]
    return build_prompt(
        PromptInput(store.characters.card(character), "Ann", history=history, lore=lore),
        preset("chatml"),
        len,
        4096,
        256,
    ).text


def test_the_note_and_scenario_reach_the_prompt(qtbot, chat):
    store, character, chat_id = chat
    settings = Settings()
    dialog = AuthorsNoteDialog(store, chat_id, settings)
    qtbot.addWidget(dialog)
    assert dialog.position.currentData() == NotePosition.IN_CHAT and dialog.depth.value() == 4
    dialog.text.setPlainText("Storm coming.")
    dialog.depth.setValue(0)
    dialog.scenario.setPlainText("A storm at sea.")
    dialog.accept()
    meta = WorldInfoStore(store).chat_metadata(chat_id)
    assert (meta["note_prompt"], meta["note_depth"], meta["scenario"]) == (
        "Storm coming.",
        0,
        "A storm at sea.",
    )
    text = build(store, character, chat_id, settings)
    assert "Scenario: A storm at sea." in text and "A calm sea." not in text
    assert text.endswith(
        "And now?<|im_end|>\n<|im_start|>system\nStorm coming.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_a_default_note_for_chats_without_one(qtbot, chat):
    store, character, chat_id = chat
    settings = Settings()
    saved = []
    dialog = AuthorsNoteDialog(store, chat_id, settings, lambda: saved.append(True))
    qtbot.addWidget(dialog)
    dialog.text.setPlainText("Write in past tense.")
    dialog.as_default.setChecked(True)
    dialog.accept()
    assert saved and default_note(settings) == AuthorsNote("Write in past tense.")
    other = store.chats.new(character, ["Hi."])
    assert "Write in past tense." in build(store, character, other, settings)
