"""Settings that behave: the wheel scrolls the page, text size is the chat's text only and
comes back at once, a long name does not squeeze the library."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QScrollArea


def _wheel(widget, steps: int = -3) -> None:
    centre = QPointF(widget.rect().center())
    event = QWheelEvent(
        centre,
        QPointF(widget.mapToGlobal(centre.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_the_wheel_scrolls_settings_instead_of_changing_values(qtbot, make_window):
    window = make_window()
    dialog = window.show_settings()
    dialog.resize(600, 300)  # small enough that the section scrolls
    _kind, min_p = dialog.editors["min_p"]
    _kind, kv = dialog.editors["kv_type"]
    dialog.tabs.setCurrentWidget(min_p.parentWidget().parentWidget().parentWidget())
    qtbot.waitUntil(min_p.isVisible)
    before = (min_p.value(), kv.currentText())
    scroll = min_p.parentWidget().parentWidget().parentWidget()
    assert isinstance(scroll, QScrollArea)
    bar = scroll.verticalScrollBar()
    start = bar.value()
    _wheel(min_p)
    _wheel(kv)
    assert (min_p.value(), kv.currentText()) == before
    assert bar.value() != start or bar.maximum() == 0
    min_p.setFocus()  # clicked into: now the wheel is the user's choice
    qtbot.waitUntil(min_p.hasFocus)
    _wheel(min_p, steps=1)
    assert min_p.value() != before[0]


def test_text_size_is_the_chat_text_and_zero_restores_it(qtbot, make_window):
    window = make_window()
    app = QApplication.instance()
    ui_size = app.font().pointSizeF()
    dialog = window.show_settings()
    dialog.set_values({"font_size": 22})
    dialog.apply()
    assert window.chat_view.font().pointSize() == 22
    assert window.composer.font().pointSize() == 22
    assert app.font().pointSizeF() == ui_size and window.send_button.font().pointSizeF() == ui_size
    dialog.set_values({"font_size": 0})
    dialog.apply()
    assert window.chat_view.font().pointSizeF() == ui_size


def test_a_long_character_name_does_not_squeeze_the_library(qtbot, make_window):
    window = make_window()
    window.resize(800, 600)
    name = "Lady Evangeline Wintersmith-Ravenscroft of the Northern Marches " * 3
    character = window.ctx.store.characters.add({"name": name, "first_mes": "Hello."})
    window.library.reload()
    window.library.select(character)
    qtbot.waitUntil(lambda: window.header.title.text() == name)
    QApplication.processEvents()
    assert window.library.width() >= 180
    assert window.header.title.width() < window.width()
