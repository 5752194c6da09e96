"""The library makes each avatar's thumbnail once: a reload (after an import, a save, a
favourite) reuses it until the avatar changes, and an import makes the new cards'
thumbnails in its background job."""

from __future__ import annotations

import threading

from PySide6.QtGui import QColor, QImage

from app.core.cards import new_card, save_card
from app.gui.characters import CharacterLibrary
from app.gui.characters.card_editor import png_bytes


def _png(color: str) -> bytes:
    image = QImage(300, 400, QImage.Format.Format_ARGB32)
    image.fill(QColor(color))
    return png_bytes(image)


def _pixmap_key(library: CharacterLibrary, character_id: int) -> int:
    pixmap = library.avatar_pixmap(character_id)
    assert pixmap is not None and not pixmap.isNull()
    return pixmap.cacheKey()


def test_a_reload_reuses_thumbnails_until_the_avatar_changes(qtbot, store):
    ada = store.characters.add({"name": "Ada"}, _png("#bf616a"))
    bob = store.characters.add({"name": "Bob"}, _png("#5e81ac"))
    library = CharacterLibrary(store)
    qtbot.addWidget(library)
    first = _pixmap_key(library, ada)
    library.reload()
    assert _pixmap_key(library, ada) == first  # the same pixmap: not decoded again
    store.characters.update(ada, store.characters.card(ada), _png("#a3be8c"))
    library.reload()
    changed = library.avatar_pixmap(ada)
    assert changed.cacheKey() != first
    assert changed.toImage().pixelColor(80, 80) == QColor("#a3be8c")
    store.characters.delete(bob)
    library.reload()
    assert len(library.thumbnails) == 1  # Bob's and Ada's old thumbnails are forgotten


def test_an_import_brings_its_thumbnails_made_in_the_background(
    qtbot, store, tmp_path, monkeypatch
):
    from app.gui.characters import card_import, thumbnails

    made_on = []
    real = thumbnails.thumbnail_image

    def recorded(avatar):
        made_on.append(threading.current_thread() is threading.main_thread())
        return real(avatar)

    monkeypatch.setattr(thumbnails, "thumbnail_image", recorded)
    monkeypatch.setattr(card_import, "thumbnail_image", recorded)
    library = CharacterLibrary(store)
    qtbot.addWidget(library)
    card = new_card("Cleo")
    path = tmp_path / "cleo.png"
    save_card(card, path, avatar_png=_png("#ebcb8b"))
    job = library.import_in_background([str(path)])
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    [cleo] = [c.id for c in store.characters.list() if c.name == "Cleo"]
    assert library.avatar_pixmap(cleo).toImage().pixelColor(80, 80) == QColor("#ebcb8b")
    assert made_on == [False]  # once, in the job, never on the GUI thread
