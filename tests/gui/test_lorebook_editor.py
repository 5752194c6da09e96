"""The lorebook editor on real books: entry fields, add/remove, world-info import/export."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from app.core.cards import CardError, load_card, load_lorebook, lorebook_to_world_info
from app.gui.characters.lorebook_editor import LorebookEditor

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cards"


@pytest.fixture
def make_editor(qtbot):
    def make(book=None):
        editor = LorebookEditor(book)
        qtbot.addWidget(editor)
        editor.resize(760, 480)
        editor.show()
        return editor

    return make


def hana_book() -> dict:
    return load_card(FIXTURES / "v3_full.json").character_book


def test_an_untouched_book_comes_back_identical(make_editor):
    book = hana_book()
    editor = make_editor(book)
    assert editor.entry_count() == 2
    editor.entries.setCurrentRow(1)
    editor.entries.setCurrentRow(0)
    assert editor.book() == book
    world = load_lorebook(FIXTURES / "st_world_info.json")
    assert make_editor(world).book() == world


def test_every_entry_field_is_editable(make_editor):
    book = hana_book()
    editor = make_editor(book)
    form = editor.form
    form.comment.setText("Sequel news")
    form.keys.setText("sequel, next book ,")
    form.secondary.setText("signed, copy")
    form.content.setPlainText("@@depth 0\nThe sequel is out Friday.")
    form.flags["enabled"].setChecked(False)
    form.flags["constant"].setChecked(True)
    form.flags["selective"].setChecked(True)
    form.flags["case_sensitive"].setChecked(True)
    form.order.setValue(42)
    form.position.setCurrentIndex(form.position.findData(1))  # after the character
    entry = editor.book()["entries"][0]
    assert entry["comment"] == "Sequel news"
    assert entry["keys"] == ["sequel", "next book"]
    assert entry["secondary_keys"] == ["signed", "copy"]
    assert entry["content"] == "@@depth 0\nThe sequel is out Friday."
    assert (entry["enabled"], entry["constant"], entry["selective"], entry["case_sensitive"]) == (
        False,
        True,
        True,
        True,
    )
    assert entry["insertion_order"] == 42 and entry["position"] == "after_char"
    assert entry["extensions"]["position"] == 1
    assert entry["id"] == "shop-sequel" and entry["use_regex"] is False
    assert editor.book()["entries"][1] == book["entries"][1]
    assert editor.entries.item(0).text() == "Sequel news"


def test_switching_entries_keeps_each_ones_edits(make_editor):
    editor = make_editor(hana_book())
    editor.form.content.setPlainText("first edited")
    editor.entries.setCurrentRow(1)
    assert editor.form.content.toPlainText().endswith("smell of paper.")
    editor.form.content.setPlainText("second edited")
    editor.entries.setCurrentRow(0)
    assert editor.form.content.toPlainText() == "first edited"
    assert [e["content"] for e in editor.book()["entries"]] == ["first edited", "second edited"]


def test_add_and_remove_entries(make_editor):
    editor = make_editor(None)
    assert editor.book() is None  # no book in, nothing added: still no book
    editor.add_entry()
    editor.form.keys.setText("dragon")
    editor.form.content.setPlainText("Dragons are rare.")
    editor.add_entry()
    assert editor.entry_count() == 2 and editor.entries.currentRow() == 1
    editor.remove_entry()
    book = editor.book()
    assert [e["keys"] for e in book["entries"]] == [["dragon"]]
    assert book["entries"][0]["content"] == "Dragons are rare."
    assert book["entries"][0]["enabled"] is True


def test_import_world_info_then_export_gives_the_same_file(make_editor, tmp_path):
    source = FIXTURES / "st_world_info.json"
    editor = make_editor(None)
    assert editor.import_file(str(source)) == len(json.loads(source.read_text("utf-8"))["entries"])
    out = tmp_path / "world.json"
    editor.export_file(str(out))
    assert json.loads(out.read_text("utf-8")) == json.loads(source.read_text("utf-8"))
    v3 = tmp_path / "book.json"
    editor.export_file(str(v3), world_info=False)
    assert json.loads(v3.read_text("utf-8"))["spec"] == "lorebook_v3"
    assert load_lorebook(v3) == load_lorebook(source)


def test_import_into_a_book_adds_the_entries(make_editor):
    book = hana_book()
    editor = make_editor(copy.deepcopy(book))
    added = editor.import_file(str(FIXTURES / "st_world_info.json"))
    result = editor.book()
    assert len(result["entries"]) == 2 + added and result["name"] == book["name"]
    assert result["entries"][:2] == book["entries"]


def test_an_edited_world_info_entry_exports_the_edit(make_editor, tmp_path):
    editor = make_editor(load_lorebook(FIXTURES / "st_world_info.json"))
    editor.form.keys.setText("Valdris, capital city")
    out = tmp_path / "edited.json"
    editor.export_file(str(out))
    exported = json.loads(out.read_text("utf-8"))
    original = lorebook_to_world_info(load_lorebook(FIXTURES / "st_world_info.json"))
    assert exported["entries"]["0"]["key"] == ["Valdris", "capital city"]
    exported["entries"]["0"]["key"] = original["entries"]["0"]["key"]
    assert exported == original


def test_a_bad_lorebook_file_names_itself(make_editor, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"entries": [', encoding="utf-8")
    editor = make_editor(hana_book())
    with pytest.raises(CardError, match="broken.json"):
        editor.import_file(str(bad))
    assert editor.entry_count() == 2


def test_the_character_filter_is_edited_and_exported_as_sillytavern_writes_it(
    make_editor, tmp_path
):
    """SillyTavern's entry editor sets `characterFilter` {names, tags, isExclude} and drops it
    when emptied; the filter then keeps the entry to (or away from) those characters."""
    from app.core.prompt.worldinfo import Book, run_world_info

    editor = make_editor(load_lorebook(FIXTURES / "st_world_info.json"))
    advanced = editor.form.advanced
    assert advanced.filter_names.text() == "" and not advanced.filter_exclude.isChecked()
    advanced.filter_names.setText("Mira, Bob ,")
    advanced.filter_names.textEdited.emit(advanced.filter_names.text())
    advanced.filter_tags.setText("elf")
    advanced.filter_tags.textEdited.emit("elf")
    advanced.filter_exclude.setChecked(True)
    out = tmp_path / "filtered.json"
    editor.export_file(str(out))
    exported = json.loads(out.read_text("utf-8"))
    original = lorebook_to_world_info(load_lorebook(FIXTURES / "st_world_info.json"))
    wanted = {"isExclude": True, "names": ["Mira", "Bob"], "tags": ["elf"]}
    assert exported["entries"]["0"]["characterFilter"] == wanted
    exported["entries"]["0"]["characterFilter"] = original["entries"]["0"]["characterFilter"]
    assert exported == original

    book = editor.book()
    label = book["entries"][0].get("comment") or book["entries"][0]["keys"][0]
    lines = [" ".join(book["entries"][0]["keys"])]

    def fires(character, tags=()):
        result = run_world_info(
            [Book("w", book)],
            lines,
            max_context=10_000,
            count_tokens=len,
            character=character,
            character_tags=tags,
        )
        return label in result.fired

    assert not fires("Mira") and not fires("Ann", ("Elf",)) and fires("Ann", ("human",))

    advanced.filter_names.setText("")
    advanced.filter_names.textEdited.emit("")
    advanced.filter_tags.setText("")
    advanced.filter_tags.textEdited.emit("")
    advanced.filter_exclude.setChecked(False)
    entry = editor.book()["entries"][0]
    assert "characterFilter" not in entry["extensions"].get("parlor_world_info", {})


def test_a_cards_own_filter_is_edited_where_it_is(make_editor):
    """A card's book written by SillyTavern keeps the filter as `extensions.character_filter`
    (`setWIOriginalDataValue`); the edit goes there, not into a second copy."""
    book = hana_book()
    book["entries"][0].setdefault("extensions", {})["character_filter"] = {
        "isExclude": False,
        "names": ["Hana"],
        "tags": [],
    }
    editor = make_editor(copy.deepcopy(book))
    advanced = editor.form.advanced
    assert advanced.filter_names.text() == "Hana"
    advanced.filter_names.setText("Hana, Ren")
    advanced.filter_names.textEdited.emit("Hana, Ren")
    ext = editor.book()["entries"][0]["extensions"]
    assert ext["character_filter"]["names"] == ["Hana", "Ren"]
    assert "parlor_world_info" not in ext or "characterFilter" not in ext["parlor_world_info"]
