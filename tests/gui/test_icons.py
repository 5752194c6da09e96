"""Parlor's own icons: every one the window names is a file that draws, and they are drawn
in the theme's colours (dark strokes on light, light strokes on dark)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication, QStyleOptionViewItem

from app.gui.chat.bubble_layout import action_names
from app.gui.icons import ICON_NAME, pixmap
from app.gui.theme import apply_theme

ICONS = Path(__file__).parents[2] / "resources" / "icons"
NAMED = {*action_names("assistant", True), "retry", "chevron-left", "chevron-right"}


def _inked(image: QImage) -> list[QColor]:
    return [
        image.pixelColor(x, y)
        for x in range(image.width())
        for y in range(image.height())
        if image.pixelColor(x, y).alpha() > 200
    ]


@pytest.mark.parametrize("name", sorted(p.stem for p in ICONS.glob("*.svg")))
def test_each_icon_file_draws_in_the_colour_asked(qtbot, name):
    image = pixmap(name, 24, QColor("#204080")).toImage()
    inked = _inked(image)
    assert len(inked) > 20, name  # a real drawing, not an empty or broken file
    for c in inked:  # (premultiplied alpha rounds a step either way)
        assert max(abs(c.red() - 0x20), abs(c.green() - 0x40), abs(c.blue() - 0x80)) <= 2, name


def test_the_icons_the_bubbles_use_exist():
    assert NAMED <= {p.stem for p in ICONS.glob("*.svg")}


def _lightness_of_actions(window) -> float:
    view, delegate = window.chat_view, window.chat_view.itemDelegate()
    index = window.chat_model.index(window.chat_model.rowCount() - 1)
    delegate.hover_row = index.row()
    opt = QStyleOptionViewItem()
    view.initViewItemOption(opt)
    opt.rect = view.visualRect(index)
    head = delegate.header(opt, index)
    assert set(head.actions) == set(action_names("assistant", True))
    image = QImage(view.viewport().size(), QImage.Format.Format_ARGB32)
    image.fill(opt.palette.color(opt.palette.ColorRole.Base))
    painter = QPainter(image)
    delegate.paint(painter, opt, index)
    painter.end()
    inked = []
    for rect in head.actions.values():
        crop = image.copy(rect.toRect())
        bubble = crop.pixelColor(1, 1)  # the bubble's own fill, in a corner of the button
        inked += [
            crop.pixelColor(x, y).lightnessF()
            for x in range(crop.width())
            for y in range(crop.height())
            if abs(crop.pixelColor(x, y).lightnessF() - bubble.lightnessF()) > 0.25
        ]
    assert len(inked) > 40 * len(head.actions)  # every button has a drawing in it
    return sum(inked) / len(inked)


def test_hover_icons_follow_light_and_dark(qtbot, make_window):
    window = make_window()
    app = QApplication.instance()
    apply_theme(app, "light")
    window.controller.reload()
    light = _lightness_of_actions(window)
    apply_theme(app, "dark")
    window.controller.reload()
    dark = _lightness_of_actions(window)
    apply_theme(app, "light")
    assert light < 0.4 < dark, (light, dark)


def test_buttons_with_icons_get_new_ones_when_the_theme_changes(qtbot, make_window):
    window = make_window()
    app = QApplication.instance()
    themed = [w for w in app.allWidgets() if w.property(ICON_NAME)]
    assert window.send_button in themed and window.library.controls.modes.buttons()[0] in themed

    def ink(button) -> float:
        image = button.icon().pixmap(24, 24).toImage()
        return sum(c.lightnessF() for c in _inked(image)) / max(1, len(_inked(image)))

    apply_theme(app, "dark")
    on_dark = ink(window.send_button)
    apply_theme(app, "light")
    on_light = ink(window.send_button)
    assert on_light < 0.5 < on_dark, (on_light, on_dark)
