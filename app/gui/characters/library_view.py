"""How the character library is shown: a list or a grid of portraits, sorted by name,
most recent chat or date added, favourites first (SillyTavern's `data.extensions.fav`, so
a favourite stays one through export and import)."""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPalette, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QToolButton,
    QWidget,
)

from app.gui.icons import set_icon

TILE_W, TILE_H, TILE_PAD = 124, 176, 6
STAR = "★"


class SortKey(Enum):
    NAME = "name"
    RECENT = "recent chat"
    ADDED = "date added"


class ViewMode(Enum):
    LIST = "list"
    GRID = "grid"


def is_favourite(card_data: dict) -> bool:
    """SillyTavern writes `true` or the string "true" (its form posts strings)."""
    fav = (card_data.get("extensions") or {}).get("fav")
    return fav is True or fav == "true"


def with_favourite(card_data: dict, favourite: bool) -> dict:
    data = dict(card_data)
    data["extensions"] = {**(data.get("extensions") or {}), "fav": favourite}
    return data


class GridDelegate(QStyledItemDelegate):
    """A tile: the portrait cropped to the top (where faces are), the name below it and a
    star on favourites."""

    def __init__(self, roles, parent=None) -> None:
        super().__init__(parent)
        self.roles = roles

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        return QSize(TILE_W, TILE_H)

    def paint(self, painter: QPainter, option, index) -> None:
        self.initStyleOption(option, index)
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawPrimitive(
            QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, option.widget
        )
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect.adjusted(TILE_PAD, TILE_PAD, -TILE_PAD, -TILE_PAD)
        metrics = QFontMetrics(option.font)
        image = QRect(rect.left(), rect.top(), rect.width(), rect.height() - metrics.height() - 6)
        self._paint_image(painter, image, index, option)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.setPen(
            option.palette.color(
                QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
            )
        )
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        name_rect = QRect(rect.left(), image.bottom() + 4, rect.width(), metrics.height())
        name = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        painter.drawText(
            name_rect,
            Qt.AlignmentFlag.AlignCenter,
            QFontMetrics(bold).elidedText(name, Qt.TextElideMode.ElideRight, name_rect.width()),
        )
        if index.data(self.roles.FAV):
            painter.setPen(QColor("#f2c94c"))
            painter.drawText(
                image.adjusted(4, 2, -4, 0),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
                STAR,
            )
        painter.restore()

    def _paint_image(self, painter: QPainter, rect: QRect, index, option) -> None:
        path = QPainterPath()
        path.addRoundedRect(QRectF(rect), 8, 8)
        painter.setClipPath(path)
        raw = index.data(self.roles.AVATAR)
        pixmap = QPixmap()
        if raw and pixmap.loadFromData(raw):
            scaled = pixmap.scaled(
                rect.size(),
                Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                Qt.TransformationMode.SmoothTransformation,
            )
            x = (scaled.width() - rect.width()) // 2
            painter.drawPixmap(rect, scaled, QRect(x, 0, rect.width(), rect.height()))
        else:
            painter.fillRect(rect, option.palette.color(QPalette.ColorRole.Mid))
            painter.setPen(option.palette.color(QPalette.ColorRole.Base))
            font = QFont(option.font)
            font.setPixelSize(rect.width() // 3)
            painter.setFont(font)
            name = str(index.data(Qt.ItemDataRole.DisplayRole) or "?").strip() or "?"
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, name[0].upper())
        painter.setClipping(False)


class LibraryControls(QWidget):
    """List or grid, the sort order, favourites only."""

    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.modes = QButtonGroup(self)
        for mode, name, tip in ((ViewMode.LIST, "list", "List"), (ViewMode.GRID, "grid", "Grid")):
            button = QToolButton()
            set_icon(button, name)  # drawn in the theme's text colour
            button.setCheckable(True)
            button.setToolTip(self.tr(tip))
            button.setAccessibleName(self.tr(tip))
            button.setProperty("mode", mode.value)
            self.modes.addButton(button)
            lay.addWidget(button)
        self.modes.buttons()[0].setChecked(True)
        self.sort = QComboBox()
        self.sort.setAccessibleName(self.tr("Sort characters by"))
        self.sort.setMinimumContentsLength(5)  # the library may be narrow
        self.sort.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        for key in SortKey:
            self.sort.addItem(self.tr(key.value.capitalize()), key.value)
        self.favourites = QCheckBox(STAR)
        self.favourites.setToolTip(self.tr("Favourites only"))
        self.favourites.setAccessibleName(self.tr("Favourites only"))
        lay.addWidget(self.sort, 1)
        lay.addWidget(self.favourites)
        self.modes.buttonToggled.connect(lambda _b, on: on and self.changed.emit())
        self.sort.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.favourites.toggled.connect(lambda _on: self.changed.emit())

    def mode(self) -> ViewMode:
        return ViewMode(self.modes.checkedButton().property("mode"))

    def set_mode(self, mode: ViewMode) -> None:
        for button in self.modes.buttons():
            button.setChecked(button.property("mode") == mode.value)

    def sort_key(self) -> SortKey:
        return SortKey(self.sort.currentData())

    def set_sort_key(self, key: SortKey) -> None:
        self.sort.setCurrentIndex(self.sort.findData(key.value))


def apply_mode(view: QListView, mode: ViewMode, list_delegate, grid_delegate) -> None:
    grid = mode == ViewMode.GRID
    view.setViewMode(QListView.ViewMode.IconMode if grid else QListView.ViewMode.ListMode)
    view.setItemDelegate(grid_delegate if grid else list_delegate)
    view.setResizeMode(QListView.ResizeMode.Adjust)
    view.setMovement(QListView.Movement.Static)
    view.setWrapping(grid)
    view.setSpacing(4 if grid else 0)
    view.setGridSize(QSize(TILE_W + 8, TILE_H + 8) if grid else QSize())
    view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
