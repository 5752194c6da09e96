"""The chat manager over a real store: list, rename, duplicate, delete with undo, export,
import of SillyTavern files (malformed lines asked about), and search across all chats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.core.store import Store
from app.gui.chat.chats_dialog import ChatsDialog
from app.gui.chat.header import ChatHeader

CHATS = Path(__file__).parents[1] / "fixtures" / "chats"


def add_chat(store: Store, character: int, title: str, lines: list[str], used: float) -> int:
    chat = store.chats.new(character, [lines[0]], title=title)
    parent = store.messages.active_leaf(chat)
    for i, text in enumerate(lines[1:]):
        parent = store.messages.append(chat, parent, "user" if i % 2 == 0 else "assistant", text)
    with store._tx() as c:  # a known order of last use, independent of the clock
        c.execute("UPDATE chats SET last_used_at = ? WHERE id = ?", (used, chat))
    return chat


@pytest.fixture
def world(store):
    alice = store.characters.add({"name": "Alice", "first_mes": "Hello!"})
    bob = store.characters.add({"name": "Bob", "first_mes": "Yo."})
    chats = {
        "old": add_chat(store, alice, "Tea party", ["Hello!", "Some tea?", "Yes please."], 100),
        "new": add_chat(
            store,
            alice,
            "Library visit",
            ["Hello!", "Where is the atlas?", "Second shelf.", "Thanks", "Sure"],
            300,
        ),
        "mid": add_chat(store, alice, "Rainy day", ["Hello!"], 200),
        "bob": add_chat(store, bob, "Spaceport", ["Yo.", "Is the atlas of Mars here?"], 400),
    }
    return alice, bob, chats


@pytest.fixture
def dialog(qtbot, store, world):
    alice, _bob, chats = world
    dialog = ChatsDialog(store, alice, current_chat=chats["mid"])
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def titles(dialog: ChatsDialog) -> list[str]:
    return [dialog.list.topLevelItem(i).text(0) for i in range(dialog.list.topLevelItemCount())]


def test_lists_the_characters_chats_by_last_use_with_message_counts(dialog, world):
    _alice, _bob, chats = world
    assert titles(dialog) == ["Library visit", "Rainy day", "Tea party"]
    assert [dialog.list.topLevelItem(i).text(1) for i in range(3)] == ["5", "1", "3"]
    assert dialog.list.topLevelItem(1).font(0).bold()  # the open chat stands out
    assert not dialog.list.topLevelItem(0).font(0).bold()
    assert chats["bob"] not in dialog.chat_ids()


def test_rename_in_place_and_an_empty_name_is_refused(qtbot, dialog, store, world):
    chats = world[2]
    item = dialog.list.topLevelItem(2)
    with qtbot.waitSignal(dialog.chats_changed):
        item.setText(0, "Tea with the Queen")  # what the item editor does on Enter
    assert store.chats.info(chats["old"]).title == "Tea with the Queen"
    dialog.list.topLevelItem(2).setText(0, "   ")
    assert store.chats.info(chats["old"]).title == "Tea with the Queen"
    assert "kept the old one" in dialog.status.text()
    assert titles(dialog)[2] == "Tea with the Queen"


def test_duplicate_copies_every_message(qtbot, dialog, store, world):
    chats = world[2]
    dialog.select(chats["new"])
    with qtbot.waitSignal(dialog.chats_changed):
        qtbot.mouseClick(dialog.duplicate_button, Qt.MouseButton.LeftButton)
    copy = dialog.selected_id()
    assert copy not in chats.values() and copy in dialog.chat_ids()
    assert store.chats.info(copy).title == "Library visit (copy)"
    assert [m.text for m in store.messages.active_path(copy)] == [
        m.text for m in store.messages.active_path(chats["new"])
    ]


def test_delete_moves_to_trash_and_undo_brings_it_back(qtbot, dialog, store, world):
    chats = world[2]
    dialog.select(chats["old"])
    qtbot.mouseClick(dialog.delete_button, Qt.MouseButton.LeftButton)
    assert chats["old"] not in dialog.chat_ids()
    assert [r.id for r in store.chats.trash()] == [chats["old"]]
    assert dialog.undo_bar.isVisible() and "Tea party" in dialog.undo_label.text()
    qtbot.mouseClick(dialog.undo_button, Qt.MouseButton.LeftButton)
    assert store.chats.trash() == []
    assert titles(dialog) == ["Library visit", "Rainy day", "Tea party"]
    assert dialog.selected_id() == chats["old"] and not dialog.undo_bar.isVisible()


def test_export_in_three_formats(dialog, world, tmp_path):
    chat = world[2]["old"]
    assert dialog.export_file(chat, str(tmp_path / "tea.jsonl"))
    lines = (tmp_path / "tea.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["character_name"] == "Alice"
    assert [json.loads(line)["mes"] for line in lines[1:]] == ["Hello!", "Some tea?", "Yes please."]
    assert dialog.export_file(chat, str(tmp_path / "tea.md"))
    assert (tmp_path / "tea.md").read_text(encoding="utf-8").startswith("# Tea party")
    assert dialog.export_file(chat, str(tmp_path / "tea-notes"), fmt="txt")
    assert "Alice: Hello!" in (tmp_path / "tea-notes").read_text(encoding="utf-8")
    assert not dialog.export_file(chat, str(tmp_path / "tea.pdf"))
    assert "unknown export format" in dialog.status.text()


def test_import_keeps_swipes_and_selects_the_new_chat(qtbot, dialog, store):
    with qtbot.waitSignal(dialog.chats_changed):
        chat = dialog.import_file(str(CHATS / "old_style.jsonl"), lambda _p: False)
    assert chat is not None and dialog.selected_id() == chat
    assert "old_style" in titles(dialog)
    first = store.messages.active_path(chat)[0]
    assert first.sibling_count == 2
    assert "Imported old_style.jsonl" in dialog.status.text()


def test_malformed_lines_are_named_and_imported_only_if_accepted(dialog, store):
    asked = []
    before = dialog.chat_ids()
    refused = dialog.import_file(
        str(CHATS / "malformed.jsonl"), lambda problems: asked.append(problems) or False
    )
    assert refused is None and dialog.chat_ids() == before
    assert [p.line for p in asked[0]] == [3, 5]
    assert "not imported (2 malformed line(s))" in dialog.status.text()
    chat = dialog.import_file(str(CHATS / "malformed.jsonl"), lambda problems: True)
    assert [m.text for m in store.messages.active_path(chat)] == [
        "Hello!",
        "Are you there?",
        "Still here.",
    ]
    assert "line 3" in dialog.status.text() and "line 5" in dialog.status.text()


@pytest.mark.parametrize(
    "answer, imported",
    [(QMessageBox.StandardButton.Yes, True), (QMessageBox.StandardButton.No, False)],
)
def test_the_import_question_is_a_non_modal_box(qtbot, dialog, answer, imported):
    before = len(dialog.chat_ids())
    assert dialog.import_asking(str(CHATS / "malformed.jsonl")) is None
    box = dialog.last_box
    assert box is not None and box.isVisible() and not box.isModal()
    assert "line 3:" in box.informativeText() and "line 5:" in box.informativeText()
    qtbot.mouseClick(box.button(answer), Qt.MouseButton.LeftButton)
    if imported:  # the file is read again off the GUI thread, then written
        qtbot.waitUntil(lambda: len(dialog.chat_ids()) == before + 1, timeout=5000)
    assert len(dialog.chat_ids()) == before + imported


def test_search_spans_all_chats_and_double_click_opens_the_hit(qtbot, dialog, world):
    _alice, _bob, chats = world
    with qtbot.waitSignal(dialog.searched):  # the search runs off the GUI thread
        qtbot.keyClicks(dialog.search_box, "atlas")
    assert dialog.pages.currentWidget() is dialog.hits
    assert sorted(dialog.hit_chat_ids()) == sorted([chats["new"], chats["bob"]])
    texts = [dialog.hits.item(i).text() for i in range(dialog.hits.count())]
    assert any(t.startswith("Bob · Spaceport\n") and "[atlas]" in t for t in texts)
    row = dialog.hit_chat_ids().index(chats["bob"])
    rect = dialog.hits.visualItemRect(dialog.hits.item(row))
    opened = []
    dialog.chat_chosen.connect(opened.append)
    qtbot.mouseClick(dialog.hits.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(dialog.hits.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened == [chats["bob"]]  # once, though a double-click also activates
    assert not dialog.isVisible()


def test_search_without_hits_says_so_and_clearing_shows_the_list(qtbot, dialog):
    with qtbot.waitSignal(dialog.searched) as done:
        dialog.search("unicorn")
    assert done.args == [0]
    assert "unicorn" in dialog.hits.item(0).text() and dialog.hit_chat_ids() == []
    assert not dialog.delete_button.isEnabled()  # list actions wait for the list
    dialog.search("")
    assert dialog.pages.currentWidget() is dialog.list
    assert dialog.delete_button.isEnabled()


def test_search_runs_in_the_background_and_lists_the_newest_hits_first(qtbot, dialog, world):
    alice = world[0]
    lines = ["Hello!", *(f"atlas page {i}" for i in range(34))]
    archive = add_chat(dialog.store, alice, "Archive", lines, 500)
    with qtbot.waitSignal(dialog.searched) as done:
        dialog.search("atlas")
        assert dialog.hit_chat_ids() == []  # nothing yet: the search has only started
    assert done.args == [len(dialog.hit_chat_ids())] and done.args[0] >= 34
    assert dialog.hit_chat_ids()[:34] == [archive] * 34
    first = dialog.hits.item(0).text()
    assert first.startswith("Alice · Archive\n") and "page 33" in first


def test_open_button_on_search_results_opens_the_chosen_hit(qtbot, dialog, world):
    with qtbot.waitSignal(dialog.searched):
        dialog.search("atlas")
    row = dialog.hit_chat_ids().index(world[2]["bob"])
    dialog.hits.setCurrentRow(row)
    with qtbot.waitSignal(dialog.chat_chosen) as chosen:
        qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert chosen.args == [world[2]["bob"]]


def test_open_button_emits_the_selected_chat(qtbot, dialog, world):
    dialog.select(world[2]["old"])
    with qtbot.waitSignal(dialog.chat_chosen) as chosen:
        qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert chosen.args == [world[2]["old"]]


def test_header_chats_button_asks_for_the_manager(qtbot):
    header = ChatHeader()
    qtbot.addWidget(header)
    with qtbot.waitSignal(header.manage_requested):
        qtbot.mouseClick(header.manage_button, Qt.MouseButton.LeftButton)
