"""A data folder that cannot be used, a database another program has locked."""

from __future__ import annotations

import sqlite3

import pytest

from app.core.appdata.paths import default_paths
from app.core.chat.context import AppContext
from app.core.store import StoreError


def test_an_unusable_data_folder_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("PARLOR_HOME", str(blocker / "home"))
    with pytest.raises((StoreError, OSError)) as err:
        AppContext.create()
    assert "not-a-folder" in str(err.value)


def test_a_locked_database_refuses_the_message_and_keeps_it(qtbot, make_window, tiny_llama_path):
    from tests.gui.conftest import load

    window = make_window()
    load(qtbot, window, tiny_llama_path)
    before = [m.text for m in window.chat_model.messages()]
    window.ctx.store._conn.execute("PRAGMA busy_timeout = 200")
    other = sqlite3.connect(default_paths().database, timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    try:
        window.composer.setPlainText("Are you there?")
        window.composer.submit()
    finally:
        other.rollback()
        other.close()
    assert window.composer.toPlainText() == "Are you there?"  # nothing lost
    assert "locked" in window._last_error_box.text()
    assert [m.text for m in window.chat_model.messages()] == before
    assert not window.controller.busy
