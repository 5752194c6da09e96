"""An optional background picture behind the bubbles, for one chat or for every chat with a
character, under a scrim of the theme's base colour so the text stays readable.

The image is copied into the data folder (named by its content), so moving or deleting the
original changes nothing. A chat keeps the copy's name in its extra; a character's is in the
settings (`character_backgrounds`, by character id), because the card itself travels to other
apps, where a file name of this data folder means nothing. A chat's own picture comes first,
then its character's. "No background image" clears both, so one action always leaves the chat
plain.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QFileDialog, QListView, QMenu
from shiboken6 import isValid

from app.core.store import StoreError

KEY = "background"  # in the chat's extra
DIM = 0.72  # how much of the base colour is laid over the picture (the scrim)
log = logging.getLogger(__name__)
# a new theme (palette, style or style sheet) may drop the viewport's brush
_THEME_EVENTS = (
    QEvent.Type.ApplicationPaletteChange,
    QEvent.Type.PaletteChange,
    QEvent.Type.StyleChange,
)


class BackgroundError(ValueError):
    pass


class ChatBackground(QObject):
    def __init__(self, view: QListView, ctx, folder: Path, save: Callable[[], None]) -> None:
        super().__init__(view)
        self.view, self.ctx, self.folder = view, ctx, Path(folder)  # ctx.store may be swapped
        self.save_settings = save
        self.image = QImage()
        self.chat_id: int | None = None
        self._painting = False
        view.viewport().installEventFilter(self)

    # --- choosing ---------------------------------------------------------------------
    def _ask(self) -> str:
        path, _ = QFileDialog.getOpenFileName(
            self.view,
            self.tr("Chat background"),
            "",
            self.tr("Images (*.png *.jpg *.jpeg *.webp *.bmp)"),
        )
        return path

    def choose(self, chat_id: int) -> bool:
        return self._chosen(lambda path: self.set_image(chat_id, path))

    def choose_for_character(self, character_id: int) -> bool:
        return self._chosen(lambda path: self.set_character_image(character_id, path))

    def _chosen(self, use: Callable[[str], Path]) -> bool:
        path = self._ask()
        if not path:
            return False
        try:
            use(path)
        except (BackgroundError, StoreError, OSError) as exc:
            self.view.window().statusBar().showMessage(str(exc), 10000)
            return False
        return True

    def _copy(self, path: str) -> Path:
        """The picture, checked, in the data folder under a name taken from its content."""
        source = Path(path)
        data = source.read_bytes() if source.is_file() else b""
        if QImage.fromData(data).isNull():
            raise BackgroundError(
                self.tr("{0} is not an image Parlor can read.").format(source.name)
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        copy = self.folder / (hashlib.sha256(data).hexdigest()[:24] + source.suffix.lower())
        if not copy.exists():
            copy.write_bytes(data)
        log.info("background image copied (%d bytes)", len(data))
        return copy

    def set_image(self, chat_id: int, path: str) -> Path:
        """Copy the picture into the data folder and use it for this chat."""
        copy = self._copy(path)
        store = self.ctx.store
        store.chats.set_extra(chat_id, {**store.chats.extra(chat_id), KEY: copy.name})
        self.show_for(chat_id)
        return copy

    def set_character_image(self, character_id: int, path: str) -> Path:
        """Copy the picture and use it for every chat with the character that has none."""
        copy = self._copy(path)
        chosen = self.ctx.settings.character_backgrounds
        chosen[str(character_id)] = copy.name
        self.save_settings()
        self.show_for(self.chat_id)
        return copy

    def clear(self, chat_id: int) -> None:
        """No picture behind this chat: neither its own nor its character's."""
        extra = dict(self.ctx.store.chats.extra(chat_id))
        if extra.pop(KEY, None) is not None:
            self.ctx.store.chats.set_extra(chat_id, extra)
        self.clear_character(self.ctx.store.chats.character_of(chat_id))

    def clear_character(self, character_id: int | None) -> None:
        if self.ctx.settings.character_backgrounds.pop(str(character_id), None) is not None:
            self.save_settings()
        self.show_for(self.chat_id)

    # --- showing ----------------------------------------------------------------------
    def picture_for(self, chat_id: int | None) -> Path | None:
        """The chat's own picture, else its character's; None when neither is on disk."""
        if chat_id is None:
            return None
        store = self.ctx.store
        name = store.chats.extra(chat_id).get(KEY)
        if not name:
            character = store.chats.character_of(chat_id)
            name = self.ctx.settings.character_backgrounds.get(str(character))
        path = self.folder / Path(str(name)).name if name else None  # never leave the folder
        return path if path is not None and path.is_file() else None

    def show_for(self, chat_id: int | None) -> None:
        self.chat_id = chat_id
        path = self.picture_for(chat_id)
        self.image = QImage(str(path)) if path is not None else QImage()
        self._paint()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if not isValid(self.view):  # events still arrive while the window is torn down
            return False
        kind = event.type()
        if kind == QEvent.Type.Resize and not self.image.isNull():
            self._paint()
        elif kind in _THEME_EVENTS and not self.image.isNull() and not self._painting:
            QTimer.singleShot(0, self, self._repaint)  # the scrim: the new theme's base colour
        return False

    def _repaint(self) -> None:
        if isValid(self.view) and not self.image.isNull():
            self._paint()

    def _paint(self) -> None:
        viewport = self.view.viewport()
        palette = viewport.palette()
        base = self.view.palette().color(QPalette.ColorRole.Base)
        if self.image.isNull():
            palette.setBrush(QPalette.ColorRole.Base, QBrush(base))
        else:
            palette.setBrush(QPalette.ColorRole.Base, QBrush(self._cover(viewport.size(), base)))
        self._painting = True  # setPalette sends PaletteChange at once
        try:
            viewport.setPalette(palette)
        finally:
            self._painting = False
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

    # --- menus ------------------------------------------------------------------------
    def add_character_entries(self, menu: QMenu, character_id: int) -> None:
        """The character library's context menu: a background for all its chats."""
        menu.addAction(
            self.tr("Chat background image…"),
            lambda: self.choose_for_character(character_id),
        )
        if str(character_id) in self.ctx.settings.character_backgrounds:
            menu.addAction(
                self.tr("No chat background image"), lambda: self.clear_character(character_id)
            )


def install_background(window) -> ChatBackground:
    """A picture behind the chat: per chat from the Chat menu, per character from the
    library's menu."""
    background = ChatBackground(
        window.chat_view,
        window.ctx,
        window.ctx.paths.data / "backgrounds",
        window.ctx.save_settings,
    )
    window.controller.chat_opened.connect(background.show_for)
    background.show_for(window.controller.chat_id)
    window.library.menu_extras.append(background.add_character_entries)
    menu = next(
        (
            a.menu()
            for a in window.menuBar().actions()
            if a.menu() is not None and a.text().replace("&", "") == "Chat"
        ),
        None,
    )
    if menu is None:
        return background

    def chat() -> int | None:
        return window.controller.chat_id

    def for_character() -> None:
        if chat() is not None:
            background.choose_for_character(window.ctx.store.chats.character_of(chat()))

    menu.addSeparator()
    menu.addAction(
        window.tr("Background image…"), lambda: chat() is not None and background.choose(chat())
    )
    menu.addAction(window.tr("Background image for this character…"), for_character)
    menu.addAction(
        window.tr("No background image"), lambda: chat() is not None and background.clear(chat())
    )
    return background
