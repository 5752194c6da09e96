"""Dialogue, action and thought colours: chosen with a colour picker in Settings →
Appearance, used in the bubbles at once, and back to the theme's with one button."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QColorDialog, QStyleOptionViewItem

from app.gui.color_field import ColorField

COLOUR_KEYS = ("speech_color", "action_color", "thought_color")


def _last_html(window) -> str:
    view = window.chat_view
    index = window.chat_model.index(window.chat_model.rowCount() - 1)
    opt = QStyleOptionViewItem()
    view.initViewItemOption(opt)
    opt.rect = view.visualRect(index)
    return view.itemDelegate().document_for(opt, index).toHtml().lower()


def _say(window, text: str) -> None:
    store, chat = window.ctx.store, window.controller.chat_id
    store.messages.append(chat, store.messages.active_leaf(chat), "assistant", text)
    window.controller.reload()


def test_the_three_colours_are_pickers_side_by_side(qtbot, make_window):
    window = make_window()
    dialog = window.show_settings()
    fields = [dialog.editors[key][1] for key in COLOUR_KEYS]
    assert all(isinstance(f, ColorField) for f in fields)
    tabs = dialog.tabs
    tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == "Appearance"))
    QApplication.processEvents()
    assert all(f.isVisible() and f.swatch.isVisible() for f in fields)
    ys = [f.mapTo(dialog, f.rect().topLeft()).y() for f in fields]
    assert ys == sorted(ys)  # dialogue, actions, thoughts: in that order, one below another
    dialog.close()


def test_a_picked_thought_colour_reaches_the_bubbles(qtbot, make_window):
    window = make_window()
    _say(window, '__She is lying.__ *smiles* "Of course."')
    assert "#3d9c88" in _last_html(window)  # the default thought colour
    dialog = window.show_settings()
    field = dialog.editors["thought_color"][1]

    def choose() -> None:
        picker = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QColorDialog))
        picker.setCurrentColor(QColor("#aa3366"))
        picker.accept()

    QTimer.singleShot(200, choose)
    field.pick()
    assert field.text() == "#aa3366"
    assert field.swatch.icon().pixmap(18, 18).toImage().pixelColor(9, 9).name() == "#aa3366"
    dialog.editors["speech_color"][1].setText("#123456")
    dialog._ok()
    assert window.ctx.settings.thought_color == "#aa3366"
    html = _last_html(window)
    assert "#aa3366" in html and "#123456" in html and "#8a8f98" in html  # action: default


def test_default_gives_back_the_themes_colour(qtbot, make_window):
    window = make_window()
    window.ctx.settings.thought_color = "#aa3366"
    dialog = window.show_settings()
    field = dialog.editors["thought_color"][1]
    assert field.text() == "#aa3366"
    field.reset.click()
    assert field.text() == ""
    dialog._ok()
    assert window.ctx.settings.thought_color == ""
    _say(window, "__a thought__")
    assert "#3d9c88" in _last_html(window)
