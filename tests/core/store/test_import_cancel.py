"""A Cancel that reaches "export everything"'s import before its commit leaves nothing."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from app.core.appdata.paths import default_paths
from app.core.chat.context import AppContext
from app.core.store.export_all import ExportError, export_everything, import_everything


def _rows(db_path) -> dict[str, int]:
    conn = sqlite3.connect(db_path)
    try:
        return {
            t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("characters", "chats", "messages")
        }
    finally:
        conn.close()


def test_a_cancelled_import_rolls_back_everything(tmp_path, monkeypatch):
    ctx = AppContext.create()
    ada = ctx.store.characters.add({"name": "Ada", "first_mes": "Hello"})
    chat = ctx.store.chats.new(ada, ["Hello"])
    ctx.store.messages.append(chat, ctx.store.messages.active_leaf(chat), "user", "hi")
    target = export_everything(ctx.paths, tmp_path / "export.zip", [])
    ctx.close()

    monkeypatch.setenv("PARLOR_HOME", str(tmp_path / "other"))
    paths = default_paths()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ExportError, match="cancelled; nothing was added"):
        import_everything(target, paths, cancel)
    before = _rows(paths.database)
    assert before["chats"] == 0 and before["messages"] == 0
    counts = import_everything(target, paths)  # the same file, not cancelled, goes in whole
    assert counts["chats"] == 1 and _rows(paths.database)["messages"] == counts["messages"]
