"""Paints each message as a bubble: avatar, name, time, formatted text, swipe arrows, status."""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, QObject, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QColor,
    QPainter,
    QPainterPath,
    QPalette,
    QPixmap,
    QTextDocument,
)
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.core.chat.display import to_html
from app.gui.chat.model import Roles

MARGIN, PAD, HEADER, AVATAR, ARROW_W = 8, 10, 22, 36, 18
STATUS_NOTES = {"stopped": "stopped", "interrupted": "interrupted — the app closed while "
                "writing", "error": "failed", "streaming": "writing…"}


class MessageDelegate(QStyledItemDelegate):
    swipe_clicked = Signal(int, int)   # row, step (-1 or +1)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._docs: dict[tuple, QTextDocument] = {}
        self.avatars: dict[str, QPixmap] = {}
        self.book = False   # book-like layout: every message full width, on the left

    # --- layout ------------------------------------------------------------------------
    def _document(self, text: str, width: int, font) -> QTextDocument:
        key = (text, width, font.pointSizeF())
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

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:  # noqa: N802
        doc = self._document(index.data(), self._text_width(option), option.font)
        return QSize(option.rect.width(),
                     max(int(doc.size().height()) + HEADER + 2 * PAD, AVATAR) + MARGIN)

    def _text_width(self, option: QStyleOptionViewItem) -> int:
        usable = option.rect.width() - AVATAR - 3 * MARGIN
        return max(120, (usable if self.book else int(usable * 0.86)) - 2 * PAD)

    def _is_right(self, index) -> bool:
        return not self.book and index.data(Roles.ROLE) == "user"

    def _bubble(self, option: QStyleOptionViewItem, index, doc: QTextDocument) -> QRectF:
        is_user = self._is_right(index)
        width = option.rect.width() - AVATAR - 3 * MARGIN
        if not self.book:
            width = min(width, max(doc.idealWidth(), 220) + 2 * PAD)
        if is_user:
            x = option.rect.right() - 2 * MARGIN - AVATAR - width
        else:
            x = option.rect.left() + 2 * MARGIN + AVATAR
        return QRectF(x, option.rect.top() + MARGIN / 2, width, option.rect.height() - MARGIN)

    def _arrow_rects(self, bubble: QRectF) -> tuple[QRectF, QRectF]:
        top = bubble.top() + PAD / 2
        right = QRectF(bubble.right() - PAD - ARROW_W, top, ARROW_W, HEADER)
        left = QRectF(right.left() - 52, top, ARROW_W, HEADER)
        return left, right

    # --- painting ----------------------------------------------------------------------
    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        doc = self._document(index.data(), self._text_width(option), option.font)
        bubble = self._bubble(option, index, doc)
        is_user = index.data(Roles.ROLE) == "user"
        self._paint_avatar(painter, option, bubble, is_user, self._is_right(index),
                           index.data(Roles.NAME) or "?")
        self._paint_bubble(painter, option, bubble, is_user)
        self._paint_header(painter, option, index, bubble)
        painter.translate(bubble.left() + PAD, bubble.top() + PAD + HEADER)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        ctx.palette.setColor(QPalette.ColorRole.Text, option.palette.color(QPalette.ColorRole.Text))
        doc.documentLayout().draw(painter, ctx)
        painter.restore()

    def _paint_avatar(self, painter, option, bubble: QRectF, is_user: bool, right: bool,
                      name: str) -> None:
        x = bubble.right() + MARGIN if right else bubble.left() - MARGIN - AVATAR
        rect = QRectF(x, bubble.top(), AVATAR, AVATAR)
        clip = QPainterPath()
        clip.addEllipse(rect)
        painter.save()
        painter.setClipPath(clip)
        pix = self.avatars.get("user" if is_user else "assistant")
        if pix is not None and not pix.isNull():
            painter.drawPixmap(rect.toRect(), pix)
        else:
            painter.fillRect(rect, option.palette.color(QPalette.ColorRole.Mid))
            painter.setPen(option.palette.color(QPalette.ColorRole.Base))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, name[:1].upper())
        painter.restore()

    @staticmethod
    def _paint_bubble(painter, option, rect: QRectF, is_user: bool) -> None:
        accent = option.palette.color(QPalette.ColorRole.Highlight)
        fill = QColor(accent) if is_user else QColor(
            option.palette.color(QPalette.ColorRole.AlternateBase))
        if is_user:
            fill.setAlpha(45)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, 10, 10)
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(accent)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect, 10, 10)

    def _paint_header(self, painter, option, index, bubble: QRectF) -> None:
        msg = index.data(Roles.MESSAGE)
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(option.palette.color(QPalette.ColorRole.Text))
        head = QRectF(bubble.left() + PAD, bubble.top() + PAD / 2, bubble.width() - 2 * PAD,
                      HEADER)
        align = Qt.AlignmentFlag.AlignVCenter
        painter.drawText(head, Qt.AlignmentFlag.AlignLeft | align, index.data(Roles.NAME) or "")
        name_w = painter.fontMetrics().horizontalAdvance(index.data(Roles.NAME) or "")
        font.setBold(False)
        painter.setFont(font)
        painter.setPen(option.palette.color(QPalette.ColorRole.PlaceholderText))
        stamp = time.strftime("%H:%M", time.localtime(msg.created_at)) if msg else ""
        note = STATUS_NOTES.get(index.data(Roles.STATUS), "")
        if index.data(Roles.OUT_OF_CONTEXT):
            note = "not in the model's context any more"
        painter.drawText(head.adjusted(name_w + 10, 0, 0, 0), Qt.AlignmentFlag.AlignLeft | align,
                         "  ·  ".join(t for t in (stamp, note) if t))
        current, count = index.data(Roles.SWIPE)
        if count > 1 or index.data(Roles.ROLE) == "assistant":
            self._paint_swipes(painter, bubble, current, count)

    def _paint_swipes(self, painter, bubble: QRectF, current: int, count: int) -> None:
        left, right = self._arrow_rects(bubble)
        center = Qt.AlignmentFlag.AlignCenter
        painter.drawText(left, center, "‹")
        painter.drawText(QRectF(left.right(), left.top(), right.left() - left.right(),
                                HEADER), center, f"{current}/{count}")
        painter.drawText(right, center, "›")

    # --- clicks on the swipe arrows ----------------------------------------------------
    def editorEvent(self, event, model, option, index) -> bool:  # noqa: N802
        if event.type() != QEvent.Type.MouseButtonRelease:
            return False
        doc = self._document(index.data(), self._text_width(option), option.font)
        left, right = self._arrow_rects(self._bubble(option, index, doc))
        pos = event.position()
        for rect, step in ((left, -1), (right, +1)):
            if rect.adjusted(-4, -4, 4, 4).contains(pos):
                self.swipe_clicked.emit(index.row(), step)
                return True
        return False
