"""Imports and header reads run off the GUI thread: the window keeps turning, Cancel leaves
the store as it was, and a bad file still gets its clear message.

A FIFO stands in for the slow file: reading it blocks until the test writes to it, so the
job is "slow" for exactly as long as the test wants, on any machine.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QPushButton

from app.core.cards import new_card, save_card
from app.gui.characters import CharacterLibrary
from app.gui.models.progress_job import CANCELLED, SUCCEEDED

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


class Heartbeat:
    """Counts event-loop turns: a frozen GUI thread counts none."""

    def __init__(self, interval_ms: int = 20) -> None:
        self.ticks = 0
        self.timer = QTimer(interval=interval_ms)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        self.ticks += 1


def fifo(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def release(path: Path) -> threading.Thread:
    """Let a reader blocked on the FIFO go on (it reads an empty file)."""

    def write() -> None:
        with open(path, "wb"):
            pass

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def press_cancel(dialog) -> None:
    button = dialog.findChild(QPushButton)
    assert button is not None and button.isVisible()
    button.click()


def card_file(folder: Path, name: str) -> Path:
    path = folder / f"{name.lower()}.json"
    save_card(new_card(name), path)
    return path


@pytest.fixture
def library(qtbot, store):
    widget = CharacterLibrary(store)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_a_blocked_card_import_keeps_the_window_turning_and_cancel_adds_nothing(
    qtbot, library, store, tmp_path
):
    before = [row.id for row in store.characters.list()]
    slow = fifo(tmp_path, "slow.png")
    beat = Heartbeat()
    job = library.import_in_background([str(card_file(tmp_path, "Alice")), str(slow)])
    qtbot.waitUntil(lambda: job.dialog is not None and job.dialog.isVisible(), timeout=5000)
    ticks = beat.ticks
    qtbot.wait(400)
    assert beat.ticks - ticks >= 5  # the event loop kept turning while the file blocked
    assert "slow.png" in job.dialog.labelText()
    with qtbot.waitSignal(library.status_message) as said:
        press_cancel(job.dialog)
    assert job.outcome == CANCELLED
    assert "nothing was added" in said.args[0]
    release(slow).join(5)
    assert job.wait(5)
    qtbot.wait(50)  # a late result, if any, would arrive now
    assert [row.id for row in store.characters.list()] == before
    assert library.last_report is None


def test_a_quick_import_shows_no_dialog_and_adds_the_cards(qtbot, library, store, tmp_path):
    job = library.import_in_background([str(card_file(tmp_path, "Bea"))])
    with qtbot.waitSignal(job.finished, timeout=5000) as done:
        pass
    assert done.args == [SUCCEEDED]
    assert job.dialog is None
    assert "Bea" in [row.name for row in store.characters.list()]


def test_a_broken_card_in_a_background_import_gets_its_message(qtbot, library, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"spec": "chara_card_v2", "data": [1, 2]}')
    good = card_file(tmp_path, "Cleo")
    job = library.import_in_background([str(bad), str(good)])
    with qtbot.waitSignal(job.finished, timeout=5000):
        pass
    box = library.last_report
    assert box is not None and box.isVisible()
    assert "broken.json" in box.informativeText()
    assert "Cleo" in [library.proxy.index(r, 0).data() for r in range(library.proxy.rowCount())]


# --- SillyTavern chats in the Chats dialog ----------------------------------------------------
CHATS = Path(__file__).parents[1] / "fixtures" / "chats"


@pytest.fixture
def chats_dialog(qtbot, store):
    from app.gui.chat.chats_dialog import ChatsDialog

    alice = store.characters.add({"name": "Alice", "first_mes": "Hello!"})
    dialog = ChatsDialog(store, alice)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def chat_count(store) -> int:
    with store._tx() as c:
        return c.execute("SELECT COUNT(*) FROM chats").fetchone()[0]


def test_a_blocked_chat_import_keeps_the_dialog_turning_and_cancel_adds_nothing(
    qtbot, chats_dialog, store, tmp_path
):
    from app.gui.chat.chat_import_job import start_chat_import

    before = chat_count(store)
    slow = fifo(tmp_path, "endless.jsonl")
    beat = Heartbeat()
    job = start_chat_import(chats_dialog, str(slow))
    qtbot.waitUntil(lambda: job.dialog is not None and job.dialog.isVisible(), timeout=5000)
    ticks = beat.ticks
    qtbot.wait(400)
    assert beat.ticks - ticks >= 5
    press_cancel(job.dialog)
    assert job.outcome == CANCELLED
    assert "cancelled; nothing was added" in chats_dialog.status.text()
    release(slow).join(5)
    assert job.wait(5)
    qtbot.wait(50)
    assert chat_count(store) == before


def test_a_big_chat_is_read_and_written_while_the_dialog_keeps_turning(
    qtbot, chats_dialog, store, tmp_path
):
    """4,000 messages: reading and the one-transaction write both run off the GUI thread."""
    import json

    from app.gui.chat.chat_import_job import start_chat_import

    rows = [{"user_name": "U", "character_name": "Alice", "create_date": "2024-01-01"}]
    rows += [
        {"name": "U" if i % 2 == 0 else "Alice", "is_user": i % 2 == 0, "mes": f"{i} " + "w " * 200}
        for i in range(4000)
    ]
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(json.dumps(r) for r in rows))
    beat = Heartbeat()
    job = start_chat_import(chats_dialog, str(big))
    with qtbot.waitSignal(job.finished, timeout=60000) as done:
        pass
    assert done.args == [SUCCEEDED]
    assert beat.ticks >= 5  # the event loop turned while it read and wrote
    chat = chats_dialog.chat_ids()[0]
    assert len(store.messages.active_path(chat)) == 4000
    assert "Imported big.jsonl (4000 messages)" in chats_dialog.status.text()


def test_a_chat_read_in_the_background_is_imported(qtbot, chats_dialog, store):
    from app.gui.chat.chat_import_job import start_chat_import

    before = len(chats_dialog.chat_ids())
    job = start_chat_import(chats_dialog, str(CHATS / "old_style.jsonl"))
    with qtbot.waitSignal(job.finished, timeout=5000):
        pass
    assert len(chats_dialog.chat_ids()) == before + 1
    assert "Imported old_style.jsonl" in chats_dialog.status.text()


def test_an_unreadable_chat_says_why_and_adds_nothing(qtbot, chats_dialog, store, tmp_path):
    from app.gui.chat.chat_import_job import start_chat_import

    bad = tmp_path / "deep.jsonl"
    bad.write_text('{"user_name": "U"}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    before = chat_count(store)
    job = start_chat_import(chats_dialog, str(bad))
    with qtbot.waitSignal(job.finished, timeout=10000):
        pass
    assert "deep.jsonl: not imported (1 malformed line(s))" in chats_dialog.status.text()
    assert "nested too deeply" in chats_dialog.last_box.informativeText()
    assert chat_count(store) == before


def test_a_chat_that_is_not_a_file_says_why(qtbot, chats_dialog, tmp_path):
    from app.gui.chat.chat_import_job import start_chat_import

    job = start_chat_import(chats_dialog, str(tmp_path))  # a folder
    with qtbot.waitSignal(job.finished, timeout=5000) as done:
        pass
    assert done.args == ["failed"]
    assert chats_dialog.status.text().startswith(str(tmp_path))


# --- "Export everything" zips in Settings → Data ----------------------------------------------
@pytest.fixture
def data_page(qtbot, monkeypatch, tmp_path):
    from app.core.chat.context import AppContext
    from app.gui.settings_pages import DataPage

    monkeypatch.setenv("PARLOR_HOME", str(tmp_path / "fresh"))
    ctx = AppContext.create()
    page = DataPage(ctx)
    qtbot.addWidget(page)
    page.show()
    yield page
    ctx.close()


def test_a_blocked_export_import_keeps_turning_and_cancel_adds_nothing(qtbot, data_page, tmp_path):
    from app.gui.data_import_job import start_import_everything

    before = chat_count(data_page.ctx.store)
    slow = fifo(tmp_path, "export.zip")
    beat = Heartbeat()
    job = start_import_everything(data_page, slow)
    qtbot.waitUntil(lambda: job.dialog is not None and job.dialog.isVisible(), timeout=5000)
    ticks = beat.ticks
    qtbot.wait(400)
    assert beat.ticks - ticks >= 5
    press_cancel(job.dialog)
    assert job.running  # it writes in a transaction of its own: Cancel waits for its answer
    assert job.dialog.labelText() == "Cancelling…"
    release(slow)
    qtbot.waitUntil(lambda: not job.running, timeout=5000)
    assert job.outcome == CANCELLED
    assert "cancelled; nothing was added" in data_page.last_error
    assert chat_count(data_page.ctx.store) == before  # and the store is open again


def test_an_export_imported_in_the_background_is_all_there(qtbot, data_page, tmp_path, monkeypatch):
    from app.core.chat.context import AppContext
    from app.core.store.export_all import export_everything
    from app.gui.data_import_job import start_import_everything

    monkeypatch.setenv("PARLOR_HOME", str(tmp_path / "first-machine"))
    first = AppContext.create()
    ada = first.store.characters.add({"name": "Ada", "first_mes": "Hello"})
    first.store.chats.new(ada, ["Hello"])
    target = export_everything(first.paths, tmp_path / "export.zip", [])
    first.close()
    with qtbot.waitSignal(data_page.data_replaced, timeout=10000):
        job = start_import_everything(data_page, target)
    assert job.outcome == SUCCEEDED and data_page.import_counts["chats"] == 1
    assert "Ada" in [c.name for c in data_page.ctx.store.characters.list()]


# --- File → Open GGUF: the header read --------------------------------------------------------
def test_a_blocked_header_read_keeps_the_window_turning_and_cancel_opens_nothing(qtbot, tmp_path):
    from PySide6.QtWidgets import QWidget

    from app.gui.models.convert_dialog import open_gguf

    parent = QWidget()
    qtbot.addWidget(parent)
    parent.show()
    slow = fifo(tmp_path, "model.gguf")
    beat = Heartbeat()
    opener = open_gguf(slow, parent)
    ready: list[str] = []
    opener.ready.connect(ready.append)
    qtbot.waitUntil(
        lambda: opener.job.dialog is not None and opener.job.dialog.isVisible(), timeout=5000
    )
    ticks = beat.ticks
    qtbot.wait(400)
    assert beat.ticks - ticks >= 5
    assert "model.gguf" in opener.job.dialog.labelText()
    with qtbot.waitSignal(opener.cancelled, timeout=2000):
        press_cancel(opener.job.dialog)
    release(slow).join(5)
    assert opener.job.wait(5)
    qtbot.wait(50)
    assert ready == [] and opener.dialog is None


def test_a_header_with_a_wrong_typed_value_fails_with_the_key(qtbot, tmp_path):
    from PySide6.QtWidgets import QWidget

    from app.gui.models.convert_dialog import open_gguf
    from tests.tiny_models import write_tiny_llama

    parent = QWidget()
    qtbot.addWidget(parent)
    path = write_tiny_llama(
        tmp_path / "odd.gguf", n_layer=1, extra_metadata={"llama.context_length": "abc"}
    )
    opener = open_gguf(path, parent)
    with qtbot.waitSignal(opener.failed, timeout=10000) as failed:
        pass
    assert "odd.gguf" in failed.args[0] and "context_length" in failed.args[0]


def test_a_malformed_export_says_why_and_leaves_the_store_open(qtbot, data_page, tmp_path):
    import zipfile

    from app.gui.data_import_job import start_import_everything

    bad = tmp_path / "bad-export.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("library.json", '{"characters": [{"id": 1, "card_json": [1, 2]}]}')
    before = chat_count(data_page.ctx.store)
    job = start_import_everything(data_page, bad)
    with qtbot.waitSignal(job.finished, timeout=10000) as done:
        pass
    assert done.args == ["failed"]
    assert "bad-export.zip" in data_page.last_error
    assert chat_count(data_page.ctx.store) == before
