"""A background picture per chat: copied into the data folder, shown behind that chat only."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage, QPalette

from app.gui.chat.background import BackgroundError


def _picture(path, colour="#a03030"):
    image = QImage(64, 48, QImage.Format.Format_RGB32)
    image.fill(QColor(colour))
    assert image.save(str(path))
    return path


def _has_texture(window) -> bool:
    brush = window.chat_view.viewport().palette().brush(QPalette.ColorRole.Base)
    return not brush.texture().isNull()


def test_a_chat_keeps_its_own_background(qtbot, make_window, tmp_path):
    window = make_window()
    chat = window.controller.chat_id
    source = _picture(tmp_path / "harbour.png")
    copy = window.chat_background.set_image(chat, str(source))
    source.unlink()  # the copy is what is shown
    assert copy.parent == window.ctx.paths.data / "backgrounds" and copy.is_file()
    assert _has_texture(window)
    window.new_chat_action.trigger()
    assert not _has_texture(window)
    window.header.chat_selected.emit(chat)
    assert _has_texture(window)
    window.chat_background.clear(chat)
    assert not _has_texture(window) and "background" not in window.ctx.store.chats.extra(chat)


def test_a_file_that_is_not_an_image_is_refused_by_name(qtbot, make_window, tmp_path):
    window = make_window()
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    with pytest.raises(BackgroundError, match="notes.png"):
        window.chat_background.set_image(window.controller.chat_id, str(bad))


def test_the_chat_menu_offers_it(qtbot, make_window):
    window = make_window()
    texts = [a.text() for m in window.menuBar().actions() if m.menu() for a in m.menu().actions()]
    assert "Background image…" in texts and "No background image" in texts
