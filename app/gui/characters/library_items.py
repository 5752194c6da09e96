"""One character in the library list: its roles (what each item holds) and the row
delegate (round avatar, name, tags)."""

from __future__ import annotations

from enum import IntEnum

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate

AVATAR_SIZE = 44
_PALETTE = ("#5e81ac", "#a3be8c", "#d08770", "#b48ead", "#88c0d0", "#bf616a", "#8fbcbb")


class Roles(IntEnum):
    ID = Qt.ItemDataRole.UserRole + 1
    TAGS = Qt.ItemDataRole.UserRole + 2
    AVATAR = Qt.ItemDataRole.UserRole + 3
    FAV = Qt.ItemDataRole.UserRole + 4
    RECENT = Qt.ItemDataRole.UserRole + 5  # when its newest chat was last used
    ADDED = Qt.ItemDataRole.UserRole + 6  # its id: ids grow as characters are added


class CharacterDelegate(QStyledItemDelegate):
    """A row: the round avatar (or an initial on a colour from the name), the name in bold,
    the tags below it in a quieter colour."""

    def sizeHint(self, option, index) -> QSize:  # noqa: N802 - Qt override
        return QSize(200, AVATAR_SIZE + 12)

    def paint(self, painter: QPainter, option, index) -> None:
        self.initStyleOption(option, index)
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawPrimitive(
            QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, option.widget
        )
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect.adjusted(6, 6, -6, -6)
        self._paint_avatar(painter, QRect(rect.left(), rect.top(), AVATAR_SIZE, AVATAR_SIZE), index)
        text_rect = rect.adjusted(AVATAR_SIZE + 10, 0, 0, 0)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        palette = option.palette
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(palette.color(role))
        metrics = QFontMetrics(bold)
        name_rect = QRect(
            text_rect.left(), text_rect.top() + 3, text_rect.width(), metrics.height()
        )
        painter.drawText(
            name_rect,
            Qt.AlignmentFlag.AlignLeft,
            metrics.elidedText(
                str(index.data(Qt.ItemDataRole.DisplayRole) or ""),
                Qt.TextElideMode.ElideRight,
                name_rect.width(),
            ),
        )
        self._paint_tags(painter, option, index, text_rect, name_rect.bottom() + 2, selected)
        painter.restore()

    def _paint_avatar(self, painter: QPainter, rect: QRect, index) -> None:
        path = QPainterPath()
        path.addEllipse(QRectF(rect))
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        name = str(index.data(Qt.ItemDataRole.DisplayRole) or "?")
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            painter.setClipPath(path)
            scaled = pixmap.scaled(
                rect.size() * 2,
                Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                Qt.TransformationMode.SmoothTransformation,
            )
            source = QRect(0, 0, scaled.width(), scaled.height())
            side = min(source.width(), source.height())
            source = QRect((source.width() - side) // 2, 0, side, side)  # keep the face (top)
            painter.drawPixmap(rect, scaled, source)
            painter.setClipping(False)
            return
        painter.fillPath(path, QColor(_PALETTE[sum(map(ord, name)) % len(_PALETTE)]))
        painter.setPen(Qt.GlobalColor.white)
        font = painter.font()
        font.setBold(True)
        font.setPixelSize(AVATAR_SIZE // 2)
        painter.setFont(font)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, (name.strip() or "?")[0].upper())

    def _paint_tags(
        self, painter: QPainter, option, index, rect: QRect, top: int, selected: bool
    ) -> None:
        tags = index.data(Roles.TAGS) or []
        if not tags:
            return
        font = QFont(option.font)
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        metrics = QFontMetrics(font)
        color = option.palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.PlaceholderText
        )
        painter.setPen(color)
        line = QRect(rect.left(), top, rect.width(), metrics.height())
        painter.drawText(
            line,
            Qt.AlignmentFlag.AlignLeft,
            metrics.elidedText(" · ".join(tags), Qt.TextElideMode.ElideRight, line.width()),
        )
