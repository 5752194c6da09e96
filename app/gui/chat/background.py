"""An optional background picture for a chat, behind the bubbles, dimmed so text stays
readable. The image is copied into the data folder (named by its content), so moving or
deleting the original changes nothing; the chat keeps only the copy's name."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QFileDialog, QListView

from app.core.store import StoreError

KEY = "background"  # in the chat's extra
DIM = 0.72  # how much of the base colour is laid over the picture
log = logging.getLogger(__name__)


class BackgroundError(ValueError):
    pass


class ChatBackground(QObject):
    def __init__(self, view: QListView, ctx, folder: Path) -> None:
        super().__init__(view)
        self.view, self.ctx, self.folder = view, ctx, Path(folder)  # ctx.store may be swapped
        self.image = QImage()
        view.viewport().installEventFilter(self)

    # --- choosing ---------------------------------------------------------------------
    def choose(self, chat_id: int) -> bool:
        path, _ = QFileDialog.getOpenFileName(
            self.view,
            self.tr("Chat background"),
            "",
            self.tr("Images (*.png *.jpg *.jpeg *.webp *.bmp)"),
        )
        if not path:
            return False
        try:
            self.set_image(chat_id, path)
        except (BackgroundError, StoreError) as exc:
            self.view.window().statusBar().showMessage(str(exc), 10000)
            return False
        return True

    def set_image(self, chat_id: int, path: str) -> Path:
        """Copy the picture into the data folder and use it for this chat."""
        data = Path(path).read_bytes() if Path(path).is_file() else b""
        if QImage.fromData(data).isNull():
            raise BackgroundError(
                self.tr("{0} is not an image Parlor can read.").format(Path(path).name)
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        copy = self.folder / (hashlib.sha256(data).hexdigest()[:24] + Path(path).suffix.lower())
        if not copy.exists():
            copy.write_bytes(data)
        store = self.ctx.store
        store.chats.set_extra(chat_id, {**store.chats.extra(chat_id), KEY: copy.name})
        log.info("chat %s has a background image (%d bytes)", chat_id, len(data))
        self.show_for(chat_id)
        return copy

    def clear(self, chat_id: int) -> None:
        extra = dict(self.ctx.store.chats.extra(chat_id))
        if extra.pop(KEY, None) is not None:
            self.ctx.store.chats.set_extra(chat_id, extra)
        self.show_for(chat_id)

    # --- showing ----------------------------------------------------------------------
    def show_for(self, chat_id: int | None) -> None:
        name = self.ctx.store.chats.extra(chat_id).get(KEY) if chat_id is not None else None
        path = self.folder / Path(str(name)).name if name else None  # never leave the folder
        self.image = QImage(str(path)) if path is not None and path.is_file() else QImage()
        self._paint()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Resize and not self.image.isNull():
            self._paint()
        return False

    def _paint(self) -> None:
        viewport = self.view.viewport()
        palette = viewport.palette()
        base = self.view.palette().color(QPalette.ColorRole.Base)
        if self.image.isNull():
            palette.setBrush(QPalette.ColorRole.Base, QBrush(base))
        else:
            palette.setBrush(QPalette.ColorRole.Base, QBrush(self._cover(viewport.size(), base)))
        viewport.setPalette(palette)
        viewport.setAutoFillBackground(True)
        viewport.update()

    def _cover(self, size, base: QColor) -> QPixmap:
        """The picture scaled to cover the view, centred, under a veil of the base colour."""
        scaled = self.image.scaled(
            size,
            Qt.AspectRatioMode.KeepAspectRatioByExpanding,
            Qt.TransformationMode.SmoothTransformation,
        )
        out = QPixmap(size)
        painter = QPainter(out)
        painter.drawImage(
            0,
            0,
            scaled,
            (scaled.width() - size.width()) // 2,
            (scaled.height() - size.height()) // 2,
        )
        veil = QColor(base)
        veil.setAlphaF(DIM)
        painter.fillRect(out.rect(), veil)
        painter.end()
        return out

    def has_image(self) -> bool:
        return not self.image.isNull()
