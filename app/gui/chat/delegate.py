"""Paints each message as a bubble: name, formatted text, swipe counter, status."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QColor, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.core.text_format import to_html
from app.gui.chat.model import Roles

MARGIN, PAD, HEADER = 8, 10, 20
STATUS_NOTES = {"stopped": "stopped", "interrupted": "interrupted — the app closed while "
                "writing", "error": "failed", "streaming": "writing…"}


class MessageDelegate(QStyledItemDelegate):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._docs: dict[tuple, QTextDocument] = {}

    def _document(self, text: str, width: int, font) -> QTextDocument:
        key = (text, width)
        doc = self._docs.get(key)
        if doc is None:
            if len(self._docs) > 2000:
                self._docs.clear()
            doc = QTextDocument()
            doc.setDefaultFont(font)
            doc.setDocumentMargin(0)
            doc.setHtml(to_html(text))
            doc.setTextWidth(width)
            self._docs[key] = doc
        return doc

    def _text_width(self, option: QStyleOptionViewItem) -> int:
        return max(120, int(option.rect.width() * 0.82) - 2 * PAD - 2 * MARGIN)

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:  # noqa: N802
        doc = self._document(index.data(), self._text_width(option), option.font)
        return QSize(option.rect.width(), int(doc.size().height()) + HEADER + 2 * PAD + MARGIN)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        is_user = index.data(Roles.ROLE) == "user"
        doc = self._document(index.data(), self._text_width(option), option.font)
        bubble_w = min(option.rect.width() - 2 * MARGIN,
                       max(doc.idealWidth(), 160) + 2 * PAD)
        x = option.rect.right() - MARGIN - bubble_w if is_user else option.rect.left() + MARGIN
        bubble = QRectF(x, option.rect.top() + MARGIN / 2, bubble_w,
                        option.rect.height() - MARGIN)
        self._paint_bubble(painter, option, bubble, is_user)
        self._paint_header(painter, option, index, bubble)
        painter.translate(bubble.left() + PAD, bubble.top() + PAD + HEADER)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        ctx.palette.setColor(QPalette.ColorRole.Text, option.palette.color(QPalette.ColorRole.Text))
        doc.documentLayout().draw(painter, ctx)
        painter.restore()

    @staticmethod
    def _paint_bubble(painter, option, rect: QRectF, is_user: bool) -> None:
        base = option.palette.color(QPalette.ColorRole.Base)
        accent = option.palette.color(QPalette.ColorRole.Highlight)
        fill = QColor(accent) if is_user else QColor(option.palette.color(
            QPalette.ColorRole.AlternateBase))
        if is_user:
            fill.setAlpha(45)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill if fill.isValid() else base)
        painter.drawRoundedRect(rect, 10, 10)
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(accent)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect, 10, 10)

    @staticmethod
    def _paint_header(painter, option, index, bubble: QRectF) -> None:
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(option.palette.color(QPalette.ColorRole.Text))
        head = QRectF(bubble.left() + PAD, bubble.top() + PAD / 2, bubble.width() - 2 * PAD,
                      HEADER)
        painter.drawText(head, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         index.data(Roles.NAME) or "")
        font.setBold(False)
        painter.setFont(font)
        painter.setPen(option.palette.color(QPalette.ColorRole.PlaceholderText))
        current, count = index.data(Roles.SWIPE)
        notes = [STATUS_NOTES.get(index.data(Roles.STATUS), "")]
        if count > 1:
            notes.append(f"‹ {current}/{count} ›")
        painter.drawText(head, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         "   ".join(n for n in notes if n))
