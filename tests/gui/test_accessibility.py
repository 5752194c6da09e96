"""Every control can be reached by keyboard and has a name a screen reader can say."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)

CONTROLS = (QAbstractButton, QComboBox, QLineEdit, QPlainTextEdit, QAbstractItemView)


def _controls(root: QWidget) -> list[QWidget]:
    # a view's header is reached through its view, not on its own
    return [
        w
        for w in root.findChildren(QWidget)
        if isinstance(w, CONTROLS)
        and not isinstance(w, QHeaderView)
        and w.isVisibleTo(root)
        and w.window() is root.window()
    ]


def _named(widget: QWidget) -> bool:
    """Its own text or name, or (for the editor inside a spin box) its owner's."""
    text = widget.text() if isinstance(widget, QAbstractButton) else ""
    owner = widget.parentWidget()
    inner = isinstance(owner, (QAbstractSpinBox, QComboBox)) and _named_owner(owner)
    return bool(
        text.replace("&", "").strip() or widget.accessibleName() or widget.toolTip() or inner
    )


def _named_owner(owner: QWidget) -> bool:
    return bool(owner.accessibleName() or owner.toolTip())


def _check(root: QWidget) -> list[str]:
    problems = []
    for w in _controls(root):
        label = f"{type(w).__name__}({w.objectName() or w.accessibleName() or '?'})"
        if w.focusPolicy() == Qt.FocusPolicy.NoFocus and not w.focusProxy():
            problems.append(f"{label} cannot take keyboard focus")
        if isinstance(w, (QAbstractButton, QComboBox, QLineEdit, QPlainTextEdit)) and not _named(w):
            problems.append(f"{label} has no accessible name")
    return problems


def test_main_window_controls_are_focusable_and_named(qtbot, make_window):
    window = make_window()
    assert _check(window) == []


def test_settings_dialog_controls_are_focusable_and_named(qtbot, make_window):
    window = make_window()
    dialog = window.show_settings()
    for index in range(dialog.tabs.count()):
        dialog.tabs.setCurrentIndex(index)
        assert _check(dialog) == [], dialog.tabs.tabText(index)


def test_the_other_dialogs_are_focusable_and_named(qtbot, make_window, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: no traffic
    window = make_window()
    window.ctx.settings.hf_endpoint = "http://127.0.0.1:9"
    dialogs = [
        window.chats.show_chats(),
        window.chats.show_personas(),
        window.models.show_download(),
        window.library.edit(window.library.current_id()),
    ]
    for dialog in dialogs:
        qtbot.addWidget(dialog)
        assert _check(dialog) == [], type(dialog).__name__
