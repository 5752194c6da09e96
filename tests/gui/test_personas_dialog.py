"""The persona manager and the header's persona combo over a real store."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.gui.chat.header import ChatHeader
from app.gui.personas_dialog import PersonasDialog


@pytest.fixture
def dialog(qtbot, store):
    dialog = PersonasDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def labels(dialog: PersonasDialog) -> list[str]:
    return [dialog.list.item(i).text() for i in range(dialog.list.count())]


def test_empty_store_shows_a_disabled_editor(dialog):
    assert labels(dialog) == [] and not dialog.editor.isEnabled()
    assert not dialog.delete_button.isEnabled()


def test_add_then_edit_name_and_description(qtbot, dialog, store):
    with qtbot.waitSignal(dialog.personas_changed):
        qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    persona = dialog.selected_id()
    assert labels(dialog) == ["New persona  (default)"]  # the first one is the default
    assert dialog.name_edit.selectedText() == "New persona"  # ready to type over
    dialog.name_edit.clear()
    qtbot.keyClicks(dialog.name_edit, "Mira")
    dialog.description_edit.setPlainText("A retired knight.")
    dialog.add("Rowan")  # choosing another persona saves the one being edited
    assert store.personas.get(persona).name == "Mira"
    assert store.personas.get(persona).description == "A retired knight."
    assert labels(dialog) == ["Mira  (default)", "Rowan"]


def test_typing_is_saved_after_a_pause(qtbot, dialog, store):
    persona = dialog.add("Mira", "Old text.")
    dialog.description_edit.setPlainText("New text.")
    qtbot.waitUntil(lambda: store.personas.get(persona).description == "New text.")


def test_an_empty_name_keeps_the_old_one(dialog, store):
    persona = dialog.add("Mira")
    dialog.name_edit.setText("  ")
    dialog.save()
    assert store.personas.get(persona).name == "Mira"


def test_closing_saves_pending_edits(dialog, store):
    persona = dialog.add("Mira")
    dialog.description_edit.setPlainText("Written just before closing.")
    dialog.close()
    assert store.personas.get(persona).description == "Written just before closing."


def test_make_default(qtbot, dialog, store):
    dialog.add("Mira")
    rowan = dialog.add("Rowan")
    assert dialog.default_button.isEnabled()
    with qtbot.waitSignal(dialog.personas_changed):
        qtbot.mouseClick(dialog.default_button, Qt.MouseButton.LeftButton)
    assert store.personas.default().id == rowan
    assert labels(dialog) == ["Mira", "Rowan  (default)"]
    assert not dialog.default_button.isEnabled()
    assert dialog.default_label.text() == "This is the default persona."


def test_delete_and_undo_restores_default_and_chat_choice(qtbot, dialog, store):
    character = store.characters.add({"name": "Alice"})
    chat = store.chats.new(character, ["Hello!"])
    mira = dialog.add("Mira", "A retired knight.")
    dialog.add("Rowan")
    store.personas.set_for_chat(chat, mira)
    dialog.select(mira)
    qtbot.mouseClick(dialog.delete_button, Qt.MouseButton.LeftButton)
    assert labels(dialog) == ["Rowan  (default)"]
    assert store.personas.of_chat(chat).name == "Rowan"  # fell back to the default
    assert dialog.undo_bar.isVisible()
    qtbot.mouseClick(dialog.undo_button, Qt.MouseButton.LeftButton)
    assert labels(dialog) == ["Mira  (default)", "Rowan"]
    back = store.personas.of_chat(chat)
    assert (back.name, back.description) == ("Mira", "A retired knight.")
    assert not dialog.undo_bar.isVisible()


def test_header_persona_combo(qtbot, store):
    header = ChatHeader()
    qtbot.addWidget(header)
    store.personas.add("Mira")
    rowan = store.personas.add("Rowan")
    header.show_personas(store.personas.list(), rowan)
    combo = header.persona
    assert combo.currentText() == "Rowan"
    assert combo.itemText(0) == "Default persona (Mira)"
    chosen, edits = [], []
    header.persona_chosen.connect(chosen.append)
    header.personas_requested.connect(lambda: edits.append(True))
    combo.activated.emit(0)  # what picking an entry in the popup does
    assert chosen == [None]
    combo.setCurrentIndex(combo.count() - 1)
    combo.activated.emit(combo.count() - 1)  # "Edit personas…"
    assert edits == [True] and chosen == [None]
    assert combo.currentIndex() == 0  # still shows the chat's choice
    combo.setCurrentIndex(2)
    combo.activated.emit(2)
    assert chosen == [None, rowan]
    header.show_personas([], None)
    assert combo.itemText(0) == "Default persona"
