"""Snapshots with the SQLite backup API: daily, kept N days, before migrations; restore."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from app.core.store import Store, backup
from app.core.store.backup import BackupError
from app.core.store.db import MIGRATIONS


def _store_with_chat(db_path, text="hello"):
    store = Store(db_path)
    cid = store.characters.add({"name": "Ada"})
    chat = store.chats.new(cid, ["Hi!"])
    mid = store.messages.append(chat, store.messages.active_leaf(chat), "user", text)
    return store, chat, mid


def _texts(db_path) -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        return [r[0] for r in conn.execute("SELECT text FROM messages ORDER BY id")]
    finally:
        conn.close()


def test_snapshot_of_a_live_wal_database_holds_committed_rows(tmp_path):
    db = tmp_path / "parlor.sqlite3"
    store, _, _ = _store_with_chat(db, "written while open")
    snap = backup.snapshot(db)  # the store is still open, the WAL not checkpointed
    store.close()
    assert snap.parent == tmp_path / "backups"
    assert _texts(snap) == ["Hi!", "written while open"]
    backup.check_snapshot(snap)
    assert not snap.with_name(snap.name + "-wal").exists()


def test_daily_snapshot_once_a_day_and_old_ones_pruned(tmp_path):
    db = tmp_path / "parlor.sqlite3"
    _store_with_chat(db)[0].close()
    start = dt.datetime(2025, 3, 1, 9, 0, 0)
    made = [
        backup.daily_snapshot(db, keep_days=3, now=start + dt.timedelta(days=d)) for d in range(5)
    ]
    again = backup.daily_snapshot(db, keep_days=3, now=start + dt.timedelta(days=4, hours=5))
    assert all(made) and again is None
    kept = sorted(s.taken.date().day for s in backup.list_snapshots(db))
    assert kept == [3, 4, 5]  # March 3..5: three days


def test_no_daily_snapshot_without_a_database(tmp_path):
    assert backup.daily_snapshot(tmp_path / "none.sqlite3") is None
    assert not (tmp_path / "none.sqlite3").exists()


def test_snapshot_before_migration_only_when_a_migration_is_due(tmp_path, monkeypatch):
    db = tmp_path / "parlor.sqlite3"
    assert backup.snapshot_before_migration(db) is None  # no database yet
    _store_with_chat(db, "from the old schema")[0].close()
    assert backup.snapshot_before_migration(db) is None  # already current
    # A newer Parlor with one more migration opens this database.
    monkeypatch.setattr(
        "app.core.store.db.MIGRATIONS", [*MIGRATIONS, "CREATE TABLE later_feature (x);"]
    )
    snap = backup.snapshot_before_migration(db)
    assert snap is not None and backup.list_snapshots(db)[0].kind == "before-migration"
    conn = sqlite3.connect(snap)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()
    assert _texts(snap)[-1] == "from the old schema"


def test_restore_brings_back_the_snapshot_and_keeps_an_undo(tmp_path):
    db = tmp_path / "parlor.sqlite3"
    store, chat, _ = _store_with_chat(db, "before")
    snap = backup.snapshot(db)
    store.messages.append(chat, store.messages.active_leaf(chat), "assistant", "after the snapshot")
    store.close()
    undo = backup.restore_snapshot(snap, db)
    assert _texts(db) == ["Hi!", "before"]
    assert "after the snapshot" in _texts(undo)
    reopened = Store(db)
    assert [m.text for m in reopened.messages.active_path(chat)] == ["Hi!", "before"]
    assert reopened._query("PRAGMA integrity_check")[0][0] == "ok"
    reopened.close()


def test_restore_refuses_a_damaged_or_foreign_file(tmp_path):
    db = tmp_path / "parlor.sqlite3"
    _store_with_chat(db)[0].close()
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database" * 100)
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    for bad in (junk, other):
        with pytest.raises(BackupError, match=bad.name):
            backup.restore_snapshot(bad, db)
    assert _texts(db) == ["Hi!", "hello"]


def test_snapshot_into_an_unwritable_place_fails_clearly(tmp_path):
    db = tmp_path / "parlor.sqlite3"
    _store_with_chat(db)[0].close()
    (tmp_path / "backups").write_text("a file where the folder should be")
    with pytest.raises(BackupError, match="Could not back up"):
        backup.snapshot(db)
