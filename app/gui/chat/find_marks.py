"""Highlights the text Find is looking for inside one message's document."""

from __future__ import annotations

from PySide6.QtGui import QColor, QTextCharFormat, QTextDocument

MARK_COLOR = "#f2c94c"  # a highlighter yellow, readable under dark and light text


def mark_matches(doc: QTextDocument, needle: str) -> int:
    """Give every case-insensitive occurrence of `needle` a highlight; returns how many."""
    fmt = QTextCharFormat()
    fmt.setBackground(QColor(MARK_COLOR))
    fmt.setForeground(QColor("#1b1b1b"))
    count = 0
    cursor = doc.find(needle)
    while not cursor.isNull() and needle:
        cursor.mergeCharFormat(fmt)
        count += 1
        cursor = doc.find(needle, cursor)
    return count
