"""A background picture per chat: copied into the data folder, shown behind that chat only."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication

from app.core.appdata.settings import Settings
from app.gui.chat.background import BackgroundError
from app.gui.theme import apply_theme


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


def _texture_colour(window) -> QColor:
    brush = window.chat_view.viewport().palette().brush(QPalette.ColorRole.Base)
    image = brush.texture().toImage()
    return image.pixelColor(image.width() // 2, image.height() // 2)


def _character(window) -> int:
    return window.ctx.store.chats.character_of(window.controller.chat_id)


def test_a_characters_background_shows_in_each_of_its_chats_unless_a_chat_has_its_own(
    qtbot, make_window, tmp_path
):
    window = make_window()
    first = window.controller.chat_id
    window.chat_background.set_character_image(
        _character(window), str(_picture(tmp_path / "r.png"))
    )
    reddish = _texture_colour(window)
    assert _has_texture(window) and reddish.red() > reddish.blue()
    window.new_chat_action.trigger()
    assert _has_texture(window) and _texture_colour(window) == reddish  # the character's
    second = window.controller.chat_id
    window.chat_background.set_image(second, str(_picture(tmp_path / "b.png", "#3030a0")))
    assert _texture_colour(window).blue() > _texture_colour(window).red()  # its own first
    saved = Settings.load(window.ctx.paths.settings_file).character_backgrounds
    assert saved == window.ctx.settings.character_backgrounds and saved  # kept between runs
    window.header.chat_selected.emit(first)
    assert _texture_colour(window) == reddish
    window.chat_background.clear(first)  # one action: no picture here at all
    assert not _has_texture(window) and window.ctx.settings.character_backgrounds == {}


def test_the_library_menu_sets_and_clears_a_characters_background(qtbot, make_window):
    window = make_window()
    library = window.library
    library.select(_character(window))
    rect = library.view.visualRect(library.view.currentIndex())
    library._show_menu(rect.center())
    texts = [a.text() for a in library._menu.actions()]
    library._menu.close()
    assert "Chat background image…" in texts and "No chat background image" not in texts
    window.ctx.settings.character_backgrounds[str(_character(window))] = "x.png"
    library._show_menu(rect.center())
    clear = next(a for a in library._menu.actions() if a.text() == "No chat background image")
    library._menu.close()
    clear.trigger()
    assert window.ctx.settings.character_backgrounds == {}


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("colour", ["#ffffff", "#000000", "#e03020"])
def test_text_over_the_picture_stays_readable(qtbot, make_window, tmp_path, theme, colour):
    """The scrim keeps WCAG's 4.5:1 contrast for body text over any picture, also after
    the theme changes under it (the picture is set in the other theme first)."""
    window = make_window()
    apply_theme(QApplication.instance(), "dark" if theme == "light" else "light")
    try:
        window.chat_background.set_image(
            window.controller.chat_id, str(_picture(tmp_path / "p.png", colour))
        )
        before = _texture_colour(window)
        apply_theme(QApplication.instance(), theme)
        qtbot.waitUntil(lambda: _has_texture(window) and _texture_colour(window) != before)
        behind = _texture_colour(window)
        text = window.chat_view.palette().color(QPalette.ColorRole.Text)
        assert _contrast(text, behind) >= 4.5, (text.name(), behind.name())
    finally:
        apply_theme(QApplication.instance(), "light")


def _luminance(c: QColor) -> float:
    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())


def _contrast(a: QColor, b: QColor) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
