"""Issue 21, point 8: a start that fails gets a dialog naming the folder, the traceback goes
to the log, and the newest snapshot can be restored from the dialog."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.core.appdata.logs import LOG_FILE
from app.core.appdata.paths import default_paths
from app.core.chat.context import AppContext
from app.core.store.backup import snapshot
from app.gui import launch


def _answer(qtbot, seen: list, button: str) -> None:
    """Click `button` ("restore" or "quit") on the start-up dialog once it is open."""

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen.append((box.text(), box.informativeText(), box.detailedText()))
        target = box.restore_button if button == "restore" else box.defaultButton()
        target.click()

    QTimer.singleShot(0, click)


def test_a_damaged_database_offers_the_newest_snapshot(qtbot):
    launch.make_application()
    paths = default_paths()
    ctx = AppContext.create(paths)
    ctx.store.characters.add({"name": "Saved"})
    ctx.close()
    snapshot(paths.database, "daily")
    paths.database.write_bytes(b"this is not a database, it was damaged" * 100)
    seen: list = []
    _answer(qtbot, seen, "restore")
    ctx = launch._start(paths)
    assert ctx is not None, "the restored snapshot opens"
    assert [r.name for r in ctx.store.characters.list()] == ["Saved"]
    ctx.close()
    text, informative, details = seen[0]
    assert text == "Parlor cannot start." and str(paths.data) in informative
    assert "Traceback" in details
    assert "Parlor could not start" in (paths.logs / LOG_FILE).read_text(encoding="utf-8")
    kept = [
        p
        for p in paths.data.glob("parlor.sqlite3.failed-start-*")
        if not p.name.endswith(("-wal", "-shm"))
    ]
    assert len(kept) == 1 and b"damaged" in kept[0].read_bytes()  # the damaged file is kept


def test_a_data_folder_that_cannot_be_written_is_a_dialog_not_a_traceback(qtbot):
    launch.make_application()
    paths = default_paths()
    paths.data.parent.mkdir(parents=True, exist_ok=True)
    paths.data.write_text("a file where the data folder should be")
    seen: list = []
    _answer(qtbot, seen, "quit")
    assert launch._start(paths) is None
    text, informative, _ = seen[0]
    assert str(paths.data) in informative


def test_a_damaged_character_row_does_not_stop_the_window(qtbot, make_window):
    """An older, unchecked import could store a card that is a JSON list: listing it
    aborted every start. Now the window opens and says which character is damaged."""
    ctx = AppContext.create()
    bad = ctx.store.characters.add({"name": "Broken"})
    with ctx.store._tx() as c:
        c.execute("UPDATE characters SET card_json = '[1, 2]' WHERE id = ?", (bad,))
    ctx.close()
    window = make_window()
    window.library.select(bad)
    window.library.character_chosen.emit(bad)
    box = window._last_error_box
    assert "is damaged" in box.text() and "JSON list" in box.text()
    good = window.ctx.store.characters.add({"name": "Fine", "first_mes": "Hello"})
    window.library.reload()
    window.library.character_chosen.emit(good)
    assert [m.text for m in window.ctx.store.messages.active_path(window.controller.chat_id)] == [
        "Hello"
    ]
