"""Portraits for groups: a member's avatar from its stored bytes, and the group's collage.

A group without its own picture shows its first four members' portraits in a 2x2 grid (one
member fills it, two split it), as SillyTavern's `getGroupAvatar` does with its thumbnails.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QPainter, QPixmap

from app.core.store import Store

SIZE = 88


def portrait(data: bytes | None, size: int = SIZE) -> QPixmap | None:
    pix = QPixmap()
    if not data or not pix.loadFromData(data):
        return None
    return pix.scaled(
        size,
        size,
        Qt.AspectRatioMode.KeepAspectRatioByExpanding,
        Qt.TransformationMode.SmoothTransformation,
    )


def _cells(count: int, size: int) -> list[QRect]:
    half = size // 2
    if count <= 1:
        return [QRect(0, 0, size, size)]
    if count == 2:
        return [QRect(0, 0, half, size), QRect(half, 0, size - half, size)]
    return [
        QRect(0, 0, half, half),
        QRect(half, 0, size - half, half),
        QRect(0, half, half, size - half),
        QRect(half, half, size - half, size - half),
    ]


def collage(pixmaps: list[QPixmap | None], size: int = SIZE) -> QPixmap:
    """Up to four portraits in one square; a member without one is a grey cell."""
    out = QPixmap(size, size)
    out.fill(QColor("#777777"))
    painter = QPainter(out)
    try:
        for pix, cell in zip(pixmaps[:4], _cells(len(pixmaps[:4]), size), strict=False):
            if pix is not None and not pix.isNull():
                painter.drawPixmap(
                    cell,
                    pix.scaled(
                        cell.size(),
                        Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                        Qt.TransformationMode.SmoothTransformation,
                    ),
                )
    finally:
        painter.end()
    return out


def member_portraits(store: Store, group_id: int) -> dict[int, QPixmap | None]:
    avatars = {row.id: row.avatar for row in store.characters.list()}
    return {
        m.character_id: portrait(avatars.get(m.character_id))
        for m in store.groups.get(group_id).members
    }


def group_avatar(store: Store, group_id: int, size: int = SIZE) -> QPixmap:
    """The group's own picture, else the collage of its members."""
    own = portrait(store.groups.avatar(group_id), size)
    if own is not None:
        return own
    return collage(list(member_portraits(store, group_id).values()), size)
