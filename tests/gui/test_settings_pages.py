"""Data and Server pages: backups restored, everything exported and imported, a server used."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication


def _texts(window):
    return [m.text for m in window.chat_model.messages()]


def test_restore_a_backup_brings_back_the_chat_as_it_was(qtbot, make_window):
    window = make_window()
    page = window.show_settings() and window.settings_ui.data_page
    page.back_up_now()
    assert page.snapshots.count() >= 1
    chat = window.controller.chat_id
    leaf = window.ctx.store.messages.active_leaf(chat)
    window.ctx.store.messages.append(chat, leaf, "user", "written after the backup")
    page.snapshots.setCurrentRow(0)
    assert "manual" in page.snapshots.currentItem().text().lower()
    page._restore_selected()
    assert "written after the backup" not in _texts(window)
    assert window.ctx.store.messages.active_path(chat)  # the store works after the swap


def test_export_everything_then_import_on_another_machine(
    qtbot, make_window, tmp_path, monkeypatch
):
    window = make_window()
    chat = window.controller.chat_id
    window.ctx.store.messages.append(
        chat, window.ctx.store.messages.active_leaf(chat), "user", "a line worth keeping"
    )
    window.show_settings()
    target = tmp_path / "export.zip"
    window.settings_ui.data_page.export_to(target)
    assert target.exists()
    window.close()
    monkeypatch.setenv("PARLOR_HOME", str(tmp_path / "other-machine"))
    other = make_window()
    other.show_settings()
    counts = other.settings_ui.data_page.import_from(target)
    assert counts, other.settings_ui.data_page.last_error
    assert counts.get("messages", 0) >= 2
    found = [m.text for m in other.ctx.store.messages.search("worth keeping")]
    assert found == ["a line worth keeping"]


def test_copy_diagnostics_puts_a_report_without_secrets_on_the_clipboard(qtbot, make_window):
    window = make_window()
    window.show_settings()
    window.ctx.secrets.set("hub_token", "hf_supersecretvalue123")
    text = window.settings_ui.data_page.copy_diagnostics()
    assert "Parlor" in text and QApplication.clipboard().text() == text
    assert "hf_supersecretvalue123" not in text


@pytest.mark.slow
def test_server_page_switches_to_a_server_and_back(qtbot, make_window, monkeypatch):
    window = make_window()
    window.show_settings()
    page = window.settings_ui.server_page
    page.url.setText("http://127.0.0.1:9")  # nothing listens there
    with qtbot.waitSignal(window.model_failed, timeout=30000) as failed:
        page._connect()
    assert "127.0.0.1:9" in failed.args[0]
    assert window.banner.isVisible()
    # The swap runs on the worker's thread, the engine's only owner: wait for it there.
    with qtbot.waitSignal(window.worker.worker.engine_swapped, timeout=10000):
        page.local_requested.emit()
    assert type(window.worker.worker.engine).__name__ == "LocalEngine"
