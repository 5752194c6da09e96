"""The card editor on real cards: every field, the avatar, the token count, nothing lost."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage

from app.core.cards import card_from_json, load_card, new_card, to_v3_json
from app.gui.characters.card_editor import (
    STORED_AVATAR_SIDE,
    AvatarError,
    CardEditor,
    decode_avatar,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cards"


@pytest.fixture
def make_editor(qtbot):
    def make(card, avatar=None, count_tokens=None):
        editor = CardEditor(card, avatar, count_tokens)
        qtbot.addWidget(editor)
        editor.show()
        return editor

    return make


def test_an_untouched_editor_gives_the_card_back_unchanged(make_editor):
    card = load_card(FIXTURES / "v3_full.json")
    card.description = "Line one\r\nLine two\r\n"  # Qt's text boxes would turn this into \n
    card.tags = ["a, b", "c"]  # a tag holding a comma
    before = to_v3_json(card)
    editor = make_editor(card)
    assert to_v3_json(editor.card()) == before


def test_every_field_is_editable(make_editor):
    editor = make_editor(load_card(FIXTURES / "v3_full.json"))
    values = {
        "name": "Hana Park",
        "description": "A bookseller.",
        "personality": "warm",
        "scenario": "Closing time.",
        "first_mes": "We're closed! …fine, come in.",
        "mes_example": "<START>\n{{char}}: Hi.",
        "system_prompt": "Be brief.",
        "post_history_instructions": "Stay in character.",
        "creator_notes": "v2 notes",
        "creator": "someone",
        "character_version": "4",
    }
    for key, value in values.items():
        widget = editor.fields[key]
        widget.setPlainText(value) if hasattr(widget, "setPlainText") else widget.setText(value)
    editor.fields["tags"].setText("books,  rain ,cosy")
    editor.greetings.add()
    editor.greetings.text.setPlainText("*Looks up.* Oh, hello.")
    card = editor.card()
    for key, value in values.items():
        assert getattr(card, key) == value, key
    assert card.tags == ["books", "rain", "cosy"]
    assert card.alternate_greetings == [
        "*The bell rings.* Oh, {{user}}! Back for the sequel?",
        "*Looks up.* Oh, hello.",
    ]


def test_edits_keep_unknown_fields_and_extensions(make_editor):
    obj = copy.deepcopy(to_v3_json(load_card(FIXTURES / "v3_full.json")))
    obj["data"]["x_unknown_field"] = {"nested": [1, {"deep": True}]}
    obj["data"]["extensions"]["some_app"] = {"a": {"b": {"c": "d"}}}
    obj["x_top_level"] = "kept"
    card = card_from_json(obj, "test")
    editor = make_editor(card)
    editor.fields["scenario"].setPlainText("Another day.")
    editor.greetings.remove_current()
    result = to_v3_json(editor.card())
    expected = copy.deepcopy(obj)
    expected["data"]["scenario"] = "Another day."
    expected["data"]["alternate_greetings"] = []
    assert result == expected


def test_token_count_uses_the_tokenizer_and_follows_typing(qtbot, make_editor):
    card = new_card("Ada")
    card.description = "one two three"
    card.personality = "four"
    editor = make_editor(card, count_tokens=lambda text: len(text.split()))
    assert editor.token_count == 4
    assert "≈" not in editor.token_label.text() and "4 tokens" in editor.token_label.text()
    editor.fields["scenario"].setPlainText("five six")
    qtbot.waitUntil(lambda: editor.token_count == 6)
    editor.fields["first_mes"].setPlainText("not part of the permanent prompt at all")
    editor.update_token_count()
    assert editor.token_count == 6


def test_token_estimate_without_a_tokenizer(make_editor):
    card = new_card("Ada")
    card.description = "x" * 700
    editor = make_editor(card)
    assert editor.token_count == 200
    assert "≈ 200" in editor.token_label.text()


def test_a_failing_tokenizer_falls_back_to_the_estimate(make_editor):
    card = new_card("Ada")
    card.system_prompt = "y" * 35

    def broken(_text: str) -> int:
        raise RuntimeError("the model was unloaded")

    editor = make_editor(card, count_tokens=broken)
    assert editor.token_count == 10 and "≈" in editor.token_label.text()


def test_choosing_an_avatar_decodes_and_shrinks_it(make_editor, tmp_path):
    big = QImage(2400, 1200, QImage.Format.Format_RGB32)
    big.fill(QColor("#88c0d0"))
    path = tmp_path / "big.jpg"
    assert big.save(str(path), "JPEG")
    editor = make_editor(new_card("Ada"))
    assert not editor.avatar_changed()
    editor.set_avatar_file(str(path))
    assert editor.avatar_changed()
    image = QImage.fromData(editor.avatar())
    assert editor.avatar().startswith(b"\x89PNG")
    assert (image.width(), image.height()) == (STORED_AVATAR_SIDE, STORED_AVATAR_SIDE // 2)
    assert editor.avatar_label.pixmap() is not None and not editor.avatar_label.pixmap().isNull()


def test_bad_avatars_are_refused_naming_the_file(make_editor, tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image at all", encoding="utf-8")
    editor = make_editor(new_card("Ada"), avatar=b"old")
    with pytest.raises(AvatarError, match="notes.png"):
        editor.set_avatar_file(str(not_image))
    assert editor.avatar() == b"old" and not editor.avatar_changed()
    wide = QImage(9000, 4, QImage.Format.Format_RGB32)
    wide.fill(QColor("black"))
    huge = tmp_path / "huge.png"
    assert wide.save(str(huge), "PNG")
    with pytest.raises(AvatarError, match="huge.png.*9000"):
        decode_avatar(str(huge))


def test_lorebook_edits_reach_the_card(make_editor):
    editor = make_editor(load_card(FIXTURES / "v3_full.json"))
    editor.lorebook.add_entry()
    editor.lorebook.form.keys.setText("umbrella")
    editor.lorebook.form.keys.textEdited.emit("umbrella")
    book = editor.card().character_book
    assert len(book["entries"]) == 3 and book["entries"][2]["keys"] == ["umbrella"]
    assert book["entries"][0]["id"] == "shop-sequel"


def test_a_card_without_a_lorebook_stays_without_one(make_editor):
    editor = make_editor(load_card(FIXTURES / "v2_full.json"))
    assert ("character_book" in editor.card().data) == (
        "character_book" in load_card(FIXTURES / "v2_full.json").data
    )
    editor = make_editor(new_card("Ada"))
    assert "character_book" not in editor.card().data


def _press_escape(qtbot, editor) -> None:
    from PySide6.QtCore import Qt

    qtbot.keyClick(editor, Qt.Key.Key_Escape)


def test_escape_asks_before_dropping_unsaved_edits(qtbot, make_editor):
    from PySide6.QtWidgets import QMessageBox

    editor = make_editor(load_card(FIXTURES / "v2_full.json"))
    _press_escape(qtbot, editor)  # nothing changed: it just closes
    assert not editor.isVisible() and editor.discard_box is None
    editor.show()
    editor.fields["scenario"].setPlainText("A new scenario.")
    _press_escape(qtbot, editor)
    assert editor.isVisible() and editor.discard_box is not None
    editor.discard_box.button(QMessageBox.StandardButton.Cancel).click()
    assert editor.isVisible() and editor.fields["scenario"].toPlainText() == "A new scenario."
    _press_escape(qtbot, editor)
    with qtbot.waitSignal(editor.accepted):
        editor.discard_box.button(QMessageBox.StandardButton.Save).click()
    assert editor.card().scenario == "A new scenario."
    editor.show()
    editor.fields["scenario"].setPlainText("Changed again.")
    _press_escape(qtbot, editor)
    with qtbot.waitSignal(editor.rejected):
        editor.discard_box.button(QMessageBox.StandardButton.Discard).click()
    assert not editor.isVisible()
