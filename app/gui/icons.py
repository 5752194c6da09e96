"""Parlor's own monochrome icons (resources/icons/*.svg), drawn in the theme's text colour.

The SVG files stroke with `currentColor`; each use renders them in a colour taken from the
palette, so one set of files serves light and dark. Widgets that show one are remembered by a
property and given fresh pixmaps when the theme changes (`refresh_icons`), because a QIcon's
pixmaps do not follow a new palette by themselves.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QAbstractButton, QApplication

from app.core.appdata.resources import resources_dir

ICON_NAME = "parlor_icon"  # the property naming a widget's icon, for refresh_icons
SIZES = (16, 20, 24, 32, 48)


@lru_cache(maxsize=16)
def _svg(name: str) -> str:
    return (resources_dir() / "icons" / f"{name}.svg").read_text(encoding="utf-8")


@lru_cache(maxsize=256)
def _renderer(name: str, color: str) -> QSvgRenderer:
    return QSvgRenderer(QByteArray(_svg(name).replace("currentColor", color).encode()))


def paint_icon(painter: QPainter, rect: QRectF, name: str, color: QColor) -> None:
    """Draw icon `name` filling `rect` (kept square, centred) in `color`.

    From a pixmap drawn once per name, size and colour: bubbles paint their icons on every
    repaint, and rendering SVG each time costs more than the rest of the header."""
    side = min(rect.width(), rect.height())
    square = QRectF(rect.center().x() - side / 2, rect.center().y() - side / 2, side, side)
    device = painter.device()
    ratio = device.devicePixelRatioF() if device is not None else 1.0
    painter.drawPixmap(square, _cached(name, max(1, round(side)), color.name(), ratio), QRectF())


@lru_cache(maxsize=512)
def _cached(name: str, size: int, color: str, ratio: float) -> QPixmap:
    return pixmap(name, size, QColor(color), ratio)


def pixmap(name: str, size: int, color: QColor, ratio: float = 1.0) -> QPixmap:
    out = QPixmap(QSize(round(size * ratio), round(size * ratio)))
    out.setDevicePixelRatio(ratio)
    out.fill(Qt.GlobalColor.transparent)
    painter = QPainter(out)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    _renderer(name, color.name()).render(painter, QRectF(0, 0, size, size))
    painter.end()
    return out


def icon(name: str, palette: QPalette | None = None) -> QIcon:
    """A QIcon of `name` in the palette's button text colour (and its disabled colour)."""
    palette = palette or QApplication.palette()
    app = QApplication.instance()
    ratio = app.devicePixelRatio() if app is not None else 1.0
    out = QIcon()
    for mode, group in (
        (QIcon.Mode.Normal, QPalette.ColorGroup.Active),
        (QIcon.Mode.Disabled, QPalette.ColorGroup.Disabled),
    ):
        color = palette.color(group, QPalette.ColorRole.ButtonText)
        for size in SIZES:
            out.addPixmap(pixmap(name, size, color, ratio), mode)
    return out


def set_icon(widget: QAbstractButton, name: str) -> None:
    """Give `widget` icon `name` and keep it in the theme's colours."""
    widget.setProperty(ICON_NAME, name)
    widget.setIcon(icon(name, widget.palette()))


def refresh_icons(app: QApplication) -> None:
    """After a theme change: every themed icon again, in the new palette's colours."""
    for widget in app.allWidgets():
        name = widget.property(ICON_NAME)
        if name and isinstance(widget, QAbstractButton):
            widget.setIcon(icon(str(name), app.palette()))
