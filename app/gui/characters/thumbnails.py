"""The library's avatar thumbnails: made once per avatar, not on every reload.

Decoding a 768×1024 PNG avatar and scaling it took about 50 ms here, so a library of 60
characters spent 3 s on the GUI thread each time it reloaded (after an import, a save, a
favourite). `ThumbnailCache` keeps each character's thumbnail until its avatar changes;
`thumbnail_image` only uses QImage, which works on any thread, so an import makes the new
cards' thumbnails in its background job and the GUI thread only wraps them.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap

from app.gui.characters.card_editor import AvatarError, read_image
from app.gui.characters.library_items import AVATAR_SIZE

Key = tuple[int, int]  # character id, hash of the avatar's bytes


def thumbnail_image(avatar: bytes | None) -> QImage | None:
    """A small copy of the avatar (twice the list's size, for high-DPI screens); None for
    no avatar or one that cannot be read. Safe off the GUI thread."""
    if not avatar:
        return None
    try:
        image = read_image(bytes(avatar))
    except AvatarError:
        return None
    return image.scaled(
        AVATAR_SIZE * 2,
        AVATAR_SIZE * 2,
        Qt.AspectRatioMode.KeepAspectRatioByExpanding,
        Qt.TransformationMode.SmoothTransformation,
    )


class ThumbnailCache:
    """Thumbnails by character and avatar; `sweep` forgets the ones a reload did not use."""

    def __init__(self) -> None:
        self._pixmaps: dict[Key, QPixmap | None] = {}
        self._used: set[Key] = set()

    @staticmethod
    def key(character_id: int, avatar: bytes) -> Key:
        return character_id, hash(bytes(avatar))

    def get(self, character_id: int, avatar: bytes | None) -> QPixmap | None:
        if not avatar:
            return None
        key = self.key(character_id, avatar)
        self._used.add(key)
        if key not in self._pixmaps:
            image = thumbnail_image(avatar)
            self._pixmaps[key] = QPixmap.fromImage(image) if image is not None else None
        return self._pixmaps[key]

    def put(self, character_id: int, avatar: bytes | None, image: QImage | None) -> None:
        """A thumbnail made elsewhere (an import's background job)."""
        if avatar:
            key = self.key(character_id, avatar)
            self._pixmaps[key] = QPixmap.fromImage(image) if image is not None else None

    def sweep(self) -> None:
        self._pixmaps = {k: v for k, v in self._pixmaps.items() if k in self._used}
        self._used = set()

    def __len__(self) -> int:
        return len(self._pixmaps)
