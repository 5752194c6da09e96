"""Text from cards, chats, models and files reaches Qt as plain text, never as markup.

Qt guesses: a label, message box or tooltip whose text starts like HTML is rendered as rich
text, and rich text loads what its `<img src>` names, from any local path (`/dev/zero` reads
until the app aborts; a FIFO hangs the window). Labels and boxes are set to plain text;
tooltips, which have no such setting, get the text escaped; documents Parlor fills with its
own HTML load no resource at all.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QImage, QTextDocument
from PySide6.QtWidgets import QMessageBox


def plain_tip(text: str) -> str:
    """A tooltip that shows `text` exactly: escaped, with its line breaks kept."""
    if not text:
        return ""
    return f"<p style='white-space:pre-wrap'>{html.escape(text, quote=False)}</p>"


def refused_resource(kind: int) -> object:
    """What a `loadResource` override returns to load nothing.

    Returning None is not enough: for an image Qt then reads the path itself (so a
    Markdown `![x](/dev/zero)` still read /dev/zero). A blank image stands in instead."""
    if kind == QTextDocument.ResourceType.ImageResource:
        blank = QImage(1, 1, QImage.Format.Format_ARGB32)
        blank.fill(0)
        return blank
    return ""


class SafeDocument(QTextDocument):
    """A document that refuses every resource its HTML names."""

    def loadResource(self, kind: int, name) -> object:  # noqa: N802 (Qt override)
        return refused_resource(kind)


class PlainMessageBoxes(QObject):
    """Application-wide: every message box shows its text and informative text as plain
    text (error messages quote file names and card fields). Parlor writes no rich box."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Polish and isinstance(watched, QMessageBox):
            watched.setTextFormat(Qt.TextFormat.PlainText)
        return False


def install(app) -> PlainMessageBoxes:
    """Install the message-box filter on `app`; keep the returned object alive."""
    guard = PlainMessageBoxes(app)
    app.installEventFilter(guard)
    return guard
