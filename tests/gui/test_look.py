"""How it looks: colours for speech and actions, readable dark controls, and every dialog
and the main window at 800×600 and 1920×1080 in light and dark, saved as screenshots
(to $PARLOR_SCREENSHOTS if set) with nothing squeezed below its minimum size."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QAbstractButton, QApplication, QStyleOptionViewItem

from app.gui.theme import apply_theme


def _doc_html(window, row: int = 0) -> str:
    view = window.chat_view
    opt = QStyleOptionViewItem()
    view.initViewItemOption(opt)
    opt.rect = view.visualRect(window.chat_model.index(row))
    return view.itemDelegate().document_for(opt, window.chat_model.index(row)).toHtml()


def test_speech_and_action_colours_are_the_users(qtbot, make_window):
    window = make_window()
    window.ctx.settings.speech_color = "#123456"
    window.ctx.settings.action_color = "not a colour"
    window.controller.reload()
    html = _doc_html(window).lower()
    assert "#123456" in html  # Wren's greeting has "speech"
    assert "#8a8f98" in html  # a bad value keeps the default for *actions*


def test_dark_controls_get_visible_edges(qtbot, make_window):
    window = make_window()
    app = QApplication.instance()
    apply_theme(app, "dark")
    assert "QCheckBox::indicator" in app.styleSheet()
    apply_theme(app, "light")
    assert app.styleSheet() == ""
    assert window.isVisible()


def _squeezed(root) -> list[str]:
    """Buttons narrower than their text needs (clipped labels)."""
    return [
        f"{type(w).__name__} {w.text()!r} {w.width()}<{w.minimumSizeHint().width()}"
        for w in root.findChildren(QAbstractButton)
        if w.isVisible() and w.text() and w.width() < w.minimumSizeHint().width() - 1
    ]


def _dialogs(window):
    yield "settings", window.show_settings()
    yield "chats", window.chats.show_chats()
    yield "personas", window.chats.show_personas()
    yield "card-editor", window.library.edit_current()


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("size", [(800, 600), (1920, 1080)])
def test_screenshots_with_nothing_squeezed(qtbot, make_window, theme, size, tmp_path):
    out = Path(os.environ.get("PARLOR_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    window = make_window()
    apply_theme(QApplication.instance(), theme)
    window.resize(*size)
    qtbot.waitUntil(lambda: window.width() == size[0])
    QApplication.processEvents()
    assert window.grab().save(str(out / f"main-{theme}-{size[0]}.png"))
    assert _squeezed(window) == []
    for name, dialog in _dialogs(window):
        dialog.resize(min(dialog.width(), size[0]), min(dialog.height(), size[1]))
        QApplication.processEvents()
        assert dialog.grab().save(str(out / f"{name}-{theme}-{size[0]}.png"))
        assert _squeezed(dialog) == [], name
        dialog.close()
    apply_theme(QApplication.instance(), "light")


def test_every_dialog_fits_an_800_by_600_screen(qtbot, make_window):
    window = make_window()
    for name, dialog in _dialogs(window):
        hint = dialog.minimumSizeHint()
        assert hint.width() <= 800 and hint.height() <= 600, (name, hint)
        dialog.close()
