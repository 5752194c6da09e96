"""Light and dark themes that follow the system unless the user picks one."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

from app.gui.icons import refresh_icons

SCHEMES = {
    "system": Qt.ColorScheme.Unknown,
    "light": Qt.ColorScheme.Light,
    "dark": Qt.ColorScheme.Dark,
}
DARK = {
    QPalette.ColorRole.Window: "#1f2126",
    QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#17191d",
    QPalette.ColorRole.AlternateBase: "#2a2d33",
    QPalette.ColorRole.Text: "#e6e6e6",
    QPalette.ColorRole.Button: "#2a2d33",
    QPalette.ColorRole.ButtonText: "#e6e6e6",
    QPalette.ColorRole.Highlight: "#4f8edc",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.PlaceholderText: "#8d9199",
    QPalette.ColorRole.ToolTipBase: "#2a2d33",
    QPalette.ColorRole.ToolTipText: "#e6e6e6",
    QPalette.ColorRole.Mid: "#5a5f69",
    QPalette.ColorRole.Link: "#7fb0ee",
}


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, color in DARK.items():
        palette.setColor(role, QColor(color))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.ButtonText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b7079"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Button, QColor("#24272c"))
    return palette


def apply_theme(app: QApplication, theme: str, font_size: int = 0) -> None:
    """Fusion draws both schemes well on every OS.

    The colour scheme hint makes the platform follow the choice where it can; an explicit
    palette makes it true everywhere else (some platforms ignore the hint).
    """
    app.setStyle("Fusion")
    app.styleHints().setColorScheme(SCHEMES.get(theme, Qt.ColorScheme.Unknown))
    wants_dark = theme == "dark" or (
        theme == "system" and app.styleHints().colorScheme() == Qt.ColorScheme.Dark
    )
    app.setPalette(dark_palette() if wants_dark else app.style().standardPalette())
    app.setStyleSheet(DARK_QSS if wants_dark else "")
    apply_chat_font(app, font_size)
    refresh_icons(app)  # the icons are drawn in the palette's text colour


# Fusion draws text fields' frames and check boxes from the window colour, which in a dark
# palette leaves them without a visible edge. Only these get a style sheet: combo and spin
# boxes keep Fusion's own drawing (a style sheet there would drop their arrows).
DARK_QSS = """
QLineEdit, QPlainTextEdit, QTextEdit { border: 1px solid #4a4f58; border-radius: 3px; }
QLineEdit:focus, QPlainTextEdit:focus, QTextEdit:focus { border-color: #4f8edc; }
QCheckBox::indicator { width: 13px; height: 13px; border: 1px solid #9aa0aa;
                       border-radius: 3px; background: #17191d; }
QCheckBox::indicator:checked { background: #4f8edc; border-color: #7fb0ee; }
QCheckBox::indicator:disabled { border-color: #4a4f58; }
"""


CHAT_TEXT = "chat_text"  # the property that marks widgets showing chat text


def apply_chat_font(app: QApplication, font_size: int) -> None:
    """ "Text size" is the chat's text (messages and the composer), not the whole UI; 0 gives
    back the system's size, at once, without a restart."""
    base = app.property("system_font")
    if base is None:  # the first call sees the font the platform chose
        base = QFont(app.font())
        app.setProperty("system_font", base)
    if app.font() != base:
        app.setFont(base)  # undo a scaled UI font from an older Parlor
    font = QFont(base)
    if font_size > 0:
        font.setPointSize(font_size)
    for widget in app.allWidgets():
        if widget.property(CHAT_TEXT):
            widget.setFont(font)


def is_dark(app: QApplication) -> bool:
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128
