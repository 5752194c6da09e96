"""Screenshots for the README: a chat in progress (light and dark) and the library grid.

Run from the repository root: `.venv/bin/python docs/make_screenshots.py docs`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["PARLOR_HOME"] = tempfile.mkdtemp()

import numpy as np  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter, QPixmap  # noqa: E402

from app.core.chat.context import AppContext  # noqa: E402
from app.gui.characters.library_view import ViewMode  # noqa: E402
from app.gui.launch import make_application, open_main_window  # noqa: E402
from app.gui.theme import apply_theme  # noqa: E402

CARDS = Path("tests/fixtures/cards")
LINES = [
    ("user", "*shakes the rain off my coat* Any room left for the night?"),
    (
        "assistant",
        '*Wren glances at the key board, then back at you.* "One, under the eaves. '
        'It leaks a little when the wind is from the east."\n\n*She slides a brass key across '
        'the bar.* "Supper is fish stew, or fish stew. What brings you out in this?"\n\n'
        "__Another one asking about the harbour, I'd wager.__",
    ),
    ("user", "I'm looking for a ship called the **Gull's Wake**. Have you heard of it?"),
    (
        "assistant",
        '*Her hand stops over the ledger.* "Heard of it? I wrote it down." '
        "*She turns the book toward you.*\n\n> Gull's Wake — out on the spring tide,\n"
        '> not returned.\n\n"Three asked after her this month:"\n1. a one-eyed bosun\n'
        "2. a girl with a harpoon\n3. *you*, it seems.\n\n__Four. Something is wrong out "
        "there.__",
    ),
]


def save_small(pixmap: QPixmap, path: Path) -> None:
    """The 256 commonest colours (a window is mostly flat colour) and full compression:
    the README's pictures stay small."""
    image = pixmap.toImage().convertToFormat(QImage.Format.Format_RGB32)
    pixels = np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), -1)
    buckets = (pixels >> 3) & 0x1F1F1F  # 5 bits a channel
    keys, counts = np.unique(buckets, return_counts=True)
    table = [int(0xFF000000 | (k << 3) | 0x040404) for k in keys[np.argsort(-counts)][:256]]
    small = image.convertToFormat(
        QImage.Format.Format_Indexed8, table, Qt.ImageConversionFlag.ThresholdDither
    )
    assert small.save(str(path), "PNG", 0)


def night_sky(folder: Path) -> Path:
    """A painted picture for the background (no photo is shipped): dusk over the sea."""
    image = QImage(1200, 800, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    sky = QLinearGradient(0, 0, 0, 800)
    for at, colour in ((0, "#0b1733"), (0.6, "#3a4f7a"), (0.62, "#1c2b45"), (1, "#0a1220")):
        sky.setColorAt(at, QColor(colour))
    painter.fillRect(image.rect(), sky)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("#f3e6b0"))
    painter.drawEllipse(1040, 40, 70, 70)
    painter.end()
    path = folder / "night-sky.png"
    image.save(str(path))
    return path


def settle(app, rounds: int = 10) -> None:
    for _ in range(rounds):
        app.processEvents()


def main(out: Path) -> None:
    app = make_application()
    ctx = AppContext.create()
    window = open_main_window(ctx)
    window.library.import_files(
        [str(CARDS / n) for n in ("v2_full.json", "v3_full.json", "v1_tavern.json")]
    )
    window.library.select(window.library.ids()[-1])  # Wren
    store, chat = ctx.store, window.controller.chat_id
    for role, text in LINES:
        store.messages.append(chat, store.messages.active_leaf(chat), role, text)
    window.controller.reload()
    for theme, name in (("light", "screenshot.png"), ("dark", "screenshot-dark.png")):
        ctx.settings.theme = theme
        apply_theme(app, theme, 0)
        if theme == "dark":  # the dark one shows a chat background under its scrim
            window.chat_background.set_image(chat, str(night_sky(Path(ctx.paths.data))))
        window.resize(1400, 860)
        window.show()
        settle(app)
        window.chat_view.scrollToBottom()
        window.message_ops._set_hover(window.chat_model.rowCount() - 1)
        settle(app, 5)
        save_small(window.grab(), out / name)
    window.chat_background.clear(chat)
    apply_theme(app, "light", 0)
    window.library.controls.set_mode(ViewMode.GRID)
    window.centralWidget().setSizes([430, 690, 280])
    settle(app)
    save_small(window.grab(), out / "character-library.png")
    window.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
