"""The world-info manager on a real store: import a SillyTavern world-info file, edit an entry's
world-info fields, choose where the book applies, export it again; the prompt follows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.chat.world_info import lore_input
from app.core.prompt import Message, PromptInput, build_prompt, preset
from app.core.store import Store
from app.core.store.world_state import WorldInfoStore
from app.gui.characters.entry_advanced import toggle_regex
from app.gui.worldinfo.manager import WorldInfoManager

WORLD = Path(__file__).resolve().parents[1] / "fixtures" / "worldinfo" / "harbor_world.json"


@pytest.fixture
def setup(qtbot, tmp_path):
    store = Store(tmp_path / "parlor.db")
    character = store.characters.add({"name": "Mira", "description": "Mira."})
    chat = store.chats.new(character, ["Hello."])
    manager = WorldInfoManager(store, character, chat)
    qtbot.addWidget(manager)
    yield store, character, chat, manager
    store.close()


def prompt(store, character, chat, text):
    path = store.messages.active_path(chat)
    inp = PromptInput(
        {"name": "Mira"},
        "Ann",
        history=[Message(m.role, m.text) for m in path] + [Message("user", text)],
        lore=lore_input(WorldInfoStore(store), chat, character, [m.id for m in path]),
    )
    return build_prompt(inp, preset("chatml"), len, 4096, 256)


def test_import_scope_edit_and_export(setup, tmp_path):
    store, character, chat, manager = setup
    assert manager.import_file(str(WORLD)) == "harbor_world"
    assert manager.books.currentItem().text() == "harbor_world"
    assert prompt(store, character, chat, "the harbor").lore == []  # applies nowhere yet
    manager.for_chat.click()
    assert WorldInfoStore(store).chat_metadata(chat)["world_info"] == "harbor_world"
    assert prompt(store, character, chat, "the harbor").lore == ["Harbor"]
    manager.for_chat.click()
    manager.is_global.click()
    assert prompt(store, character, chat, "the harbor").lore == ["Harbor"]
    # an entry's world-info fields, saved when the window closes
    editor = manager.editor
    editor.entries.setCurrentRow(0)
    editor.form.advanced.probability.setValue(0)
    manager.accept()
    entry = WorldInfoStore(store).book("harbor_world").book["entries"][0]
    assert entry["extensions"]["probability"] == 0
    assert prompt(store, character, chat, "the harbor").lore == []  # never rolls under 0%
    out = tmp_path / "out.json"
    manager.export_file(str(out))
    exported = json.loads(out.read_text("utf-8"))
    original = json.loads(WORLD.read_text("utf-8"))
    assert exported["entries"]["0"]["probability"] == 0
    exported["entries"]["0"]["probability"] = original["entries"]["0"]["probability"]
    # this hand-written file lacks some template fields: SillyTavern's defaults are added
    first = exported["entries"]["0"]
    assert {k: first[k] for k in original["entries"]["0"]} == original["entries"]["0"]


def test_new_rename_search_and_delete(setup):
    store, character, chat, manager = setup
    manager.new_book("Tides")
    manager.import_file(str(WORLD))
    assert [manager.books.item(i).text() for i in range(manager.books.count())] == [
        "harbor_world",
        "Tides",
    ]
    manager.search.setText("lighthouse")
    hidden = {
        manager.books.item(i).text(): manager.books.item(i).isHidden()
        for i in range(manager.books.count())
    }
    assert hidden == {"harbor_world": False, "Tides": True}
    manager.search.setText("")
    manager.books.setCurrentRow(1)
    manager.for_character.click()
    manager.rename("Tides 2")
    stored = WorldInfoStore(store).book("Tides 2")
    assert stored is not None and stored.characters == (character,)
    manager.delete_current()
    assert [b.name for b in WorldInfoStore(store).books()] == ["harbor_world"]


def test_the_regex_toggle_writes_sillytavern_keys(setup):
    _, _, _, manager = setup
    manager.import_file(str(WORLD))
    form = manager.editor.form
    manager.editor.entries.setCurrentRow(1)  # Lighthouse: a plain key
    assert not form.regex.isChecked()
    form.regex.click()
    assert form.keys.text() == "/lighthouse/"
    assert manager.editor.book()["entries"][1]["keys"] == ["/lighthouse/"]
    assert toggle_regex(["/a\\/b/"], False) == ["a/b"]


def test_sorted_entries_still_edit_the_right_entry(qtbot):
    from app.gui.characters.lorebook_editor import LorebookEditor

    book = {
        "entries": [
            {"keys": ["a"], "content": "A", "comment": "low", "insertion_order": 1},
            {"keys": ["b"], "content": "B", "comment": "high", "insertion_order": 50},
            {"keys": ["c"], "content": "C", "comment": "mid", "insertion_order": 10},
        ]
    }
    editor = LorebookEditor(book)
    qtbot.addWidget(editor)
    editor.sort.setCurrentIndex(editor.sort.findData("order"))
    assert [editor.entries.item(r).text() for r in range(3)] == ["high", "mid", "low"]
    editor.entries.setCurrentRow(0)
    editor.form.content.setPlainText("B edited")
    editor.sort.setCurrentIndex(editor.sort.findData("title"))
    assert [editor.entries.item(r).text() for r in range(3)] == ["high", "low", "mid"]
    editor.entries.setCurrentRow(2)
    editor.remove_entry()
    assert [e["content"] for e in editor.book()["entries"]] == ["A", "B edited"]
