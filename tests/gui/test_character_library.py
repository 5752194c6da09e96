"""The character library on a real store, with real card files written by the cards API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage, QPainter
from PySide6.QtWidgets import QApplication, QWidget

from app.core.cards import load_card, new_card, save_card
from app.core.cards.png import card_payloads, read_chunks
from app.gui.characters import CharacterLibrary
from app.gui.characters.card_editor import png_bytes
from app.gui.characters.library import Roles

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cards"


def avatar_png(color: str, size: int = 128) -> bytes:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(QColor(color))
    painter = QPainter(image)
    painter.setBrush(QColor("white"))
    painter.drawEllipse(size // 4, size // 5, size // 2, size // 2)
    painter.end()
    return png_bytes(image)


def write_card(
    folder: Path, name: str, tags: list[str], color: str | None = "#5e81ac", suffix: str = ".png"
) -> Path:
    card = new_card(name)
    card.tags = tags
    card.description = f"{{{{char}}}} is {name}."
    card.extensions["parlor_test"] = {"deep": {"keep": [1, 2, 3]}}
    path = folder / f"{name.lower().replace(' ', '_')}{suffix}"
    save_card(card, path, avatar_png=avatar_png(color) if color and suffix == ".png" else None)
    return path


@pytest.fixture
def library(qtbot, store):
    widget = CharacterLibrary(store)
    qtbot.addWidget(widget)
    widget.resize(280, 420)
    widget.show()
    return widget


def names(library: CharacterLibrary) -> list[str]:
    return [library.proxy.index(r, 0).data() for r in range(library.proxy.rowCount())]


def test_import_several_cards_shows_names_tags_and_avatars(library, store, tmp_path):
    files = [
        write_card(tmp_path, "Alice", ["fantasy", "mage"]),
        write_card(tmp_path, "Bob", ["sci-fi"], color="#bf616a"),
        FIXTURES / "v3_full.json",
        FIXTURES / "v2_full.json",
    ]
    ids, errors = library.import_files([str(p) for p in files])
    assert errors == []
    assert len(ids) == 4 and sorted(library.ids()) == sorted(ids)
    # v2_full is a SillyTavern favourite (extensions.fav): favourites come first
    assert names(library) == [load_card(files[3]).name, "Alice", "Bob", "Hana Kim"]
    alice = library.proxy.index(1, 0)
    assert alice.data(Roles.TAGS) == ["fantasy", "mage"]
    assert alice.data(Qt.ItemDataRole.DecorationRole) is not None
    assert library.proxy.index(3, 0).data(Roles.TAGS) == ["modern", "slice of life", "korean"]
    stored = store.characters.card(ids[2])
    assert stored["extensions"]["risuai"]["viewScreen"] == "none"  # nothing lost on import
    assert library.current_id() == ids[-1]  # the last one imported is shown


def test_broken_cards_name_the_file_and_import_nothing(library, store, tmp_path):
    good = write_card(tmp_path, "Good", [])
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    no_card = tmp_path / "plain.png"
    no_card.write_bytes(avatar_png("#000000"))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"spec": "chara_card_v2", "data": {"name": ', encoding="utf-8")
    book = FIXTURES / "st_world_info.json"
    ids, errors = library.import_and_report(
        [str(p) for p in (truncated, good, no_card, bad_json, book)]
    )
    assert len(ids) == 1 and names(library) == ["Good"]
    assert len(errors) == 4
    for path, error in zip((truncated, no_card, bad_json, book), errors, strict=True):
        assert str(path) in error
    assert "lorebook" in errors[3]
    assert library.last_report is not None and "plain.png" in library.last_report.informativeText()
    assert [row.name for row in store.characters.list()] == ["Good"]


def test_search_by_name_and_tag(library, tmp_path):
    library.import_files(
        [
            str(write_card(tmp_path, "Alice", ["fantasy", "mage"])),
            str(write_card(tmp_path, "Bob", ["sci-fi", "pilot"])),
            str(write_card(tmp_path, "Mage Hunter", ["horror"])),
        ]
    )
    library.search.setText("mage")
    assert names(library) == ["Alice", "Mage Hunter"]
    library.search.setText("#mage")
    assert names(library) == ["Alice"]
    library.search.setText("sci pilot")
    assert names(library) == ["Bob"]
    library.search.setText("nobody")
    assert names(library) == []
    library.search.clear()
    assert len(names(library)) == 3


def test_choosing_a_character_emits_its_id(qtbot, library, tmp_path):
    ids, _ = library.import_files(
        [str(write_card(tmp_path, "Alice", [])), str(write_card(tmp_path, "Bob", []))]
    )
    with qtbot.waitSignal(library.character_chosen) as blocker:
        library.view.setCurrentIndex(library.proxy.index(0, 0))
    assert blocker.args == [ids[0]]
    with qtbot.assertNotEmitted(library.character_chosen):
        library.reload()  # after a save: the same character stays chosen, the chat stays open
    assert library.current_id() == ids[0]


def _drop(widget: QWidget, paths: list[Path]) -> QDropEvent:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(
        QPoint(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, drop)
    return drop


def test_dropping_several_files_on_a_window_imports_them(qtbot, library, tmp_path):
    window = QWidget()
    qtbot.addWidget(window)
    library.drop_filter.install(window)
    files = [
        write_card(tmp_path, "Alice", []),
        write_card(tmp_path, "Bob", []),
        FIXTURES / "v1_tavern.json",
    ]
    drop = _drop(window, files)
    assert drop.isAccepted()
    qtbot.waitUntil(lambda: len(library.ids()) == 3)
    assert "Alice" in names(library) and "Bob" in names(library)


def test_dropping_other_things_is_ignored(qtbot, library, tmp_path):
    window = QWidget()
    qtbot.addWidget(window)
    library.drop_filter.install(window)
    mime = QMimeData()
    mime.setText("just text")
    enter = QDragEnterEvent(
        QPoint(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    enter.ignore()
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()


def test_duplicate_keeps_the_card_and_avatar(library, store, tmp_path):
    [alice], _ = library.import_files([str(write_card(tmp_path, "Alice", ["mage"]))])
    copy_id = library.duplicate(alice)
    assert names(library) == ["Alice", "Alice (copy)"]
    original, duplicate = store.characters.card(alice), store.characters.card(copy_id)
    assert duplicate["extensions"] == original["extensions"]
    assert {**duplicate, "name": "Alice"} == original
    avatars = {row.id: row.avatar for row in store.characters.list()}
    assert avatars[copy_id] == avatars[alice] and avatars[alice]


def test_delete_goes_to_trash_and_undo_brings_it_back(library, store, tmp_path):
    ids, _ = library.import_files(
        [str(write_card(tmp_path, "Alice", [])), str(write_card(tmp_path, "Bob", []))]
    )
    library.delete(ids[0])
    assert names(library) == ["Bob"]
    assert [row.name for row in store.characters.list()] == ["Bob"]
    assert library.undo_bar.isVisible() and "Alice" in library.undo_label.text()
    library.undo_button.click()
    assert names(library) == ["Alice", "Bob"]
    assert library.current_id() == ids[0]
    assert not library.undo_bar.isVisible()
    assert library.undo_delete() is None


def test_export_png_json_v3_and_v2(library, tmp_path):
    [hana], _ = library.import_files([str(FIXTURES / "v3_full.json")])
    out = tmp_path / "out"
    out.mkdir()
    library.export(hana, str(out / "hana.png"))
    keywords = [
        p.keyword for p in card_payloads(read_chunks((out / "hana.png").read_bytes(), "hana.png"))
    ]
    assert sorted(keywords) == ["ccv3", "chara"]
    exported = load_card(out / "hana.png")
    assert exported.data == load_card(FIXTURES / "v3_full.json").data
    library.export(hana, str(out / "hana.json"))
    assert json.loads((out / "hana.json").read_text("utf-8"))["spec"] == "chara_card_v3"
    library.export(hana, str(out / "hana_v2.json"), v2=True)
    v2 = json.loads((out / "hana_v2.json").read_text("utf-8"))
    assert v2["spec"] == "chara_card_v2" and v2["data"]["extensions"]["risuai"]["bias"] == []


def test_editor_saves_back_without_losing_fields(qtbot, library, store):
    [hana], _ = library.import_files([str(FIXTURES / "v3_full.json")])
    before = store.characters.card(hana)
    editor = library.edit(hana)
    editor.fields["personality"].setPlainText("bookish, teasing, kind")
    editor.fields["tags"].setText("modern, cosy")
    editor.accept()
    after = store.characters.card(hana)
    assert after["personality"] == "bookish, teasing, kind" and after["tags"] == ["modern", "cosy"]
    assert {**after, "personality": before["personality"], "tags": before["tags"]} == before
    assert library.proxy.index(0, 0).data(Roles.TAGS) == ["modern", "cosy"]


def test_charx_with_a_jpeg_icon_imports_and_exports_as_png(library, tmp_path):
    image = QImage(64, 64, QImage.Format.Format_RGB32)
    image.fill(QColor("#d08770"))
    jpeg = tmp_path / "icon.jpg"
    assert image.save(str(jpeg), "JPEG")
    card = new_card("Jay")
    card.avatar = jpeg.read_bytes()
    save_card(card, tmp_path / "jay.charx")
    [jay], errors = library.import_files([str(tmp_path / "jay.charx")])
    assert errors == []
    assert library.proxy.index(0, 0).data(Qt.ItemDataRole.DecorationRole) is not None
    library.export(jay, str(tmp_path / "jay.png"))
    exported = load_card(tmp_path / "jay.png")
    assert exported.name == "Jay" and exported.avatar.startswith(b"\x89PNG")
    assert QImage.fromData(exported.avatar).pixel(10, 10) != QImage.fromData(
        save_png_placeholder()
    ).pixel(10, 10)


def save_png_placeholder() -> bytes:
    from app.core.cards import placeholder_png

    return placeholder_png(new_card("Jay"))


def test_unknown_top_level_keys_survive_import_and_export(library, tmp_path):
    import json as _json

    source = tmp_path / "odd.json"
    source.write_text(
        _json.dumps(
            {
                "spec": "chara_card_v3",
                "spec_version": "3.0",
                "made_with": "SomeEditor 2.1",
                "fork_of": {"url": "https://example.invalid/c/42"},
                "data": {
                    "name": "Odd",
                    "description": "d",
                    "personality": "",
                    "scenario": "",
                    "first_mes": "hi",
                    "mes_example": "",
                    "extensions": {"x": {"y": 1}},
                },
            }
        )
    )
    ids, errors = library.import_files([str(source)])
    assert ids and not errors
    out = tmp_path / "out.json"
    library.export(ids[0], str(out))
    written = _json.loads(out.read_text())
    assert written["made_with"] == "SomeEditor 2.1"
    assert written["fork_of"] == {"url": "https://example.invalid/c/42"}
    assert written["data"]["extensions"] == {"x": {"y": 1}}
