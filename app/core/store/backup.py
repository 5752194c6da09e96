"""Snapshots of the chat database: one a day kept for N days, one before each schema migration.

Snapshots are taken with SQLite's online backup API, which copies a consistent state even
while the app is writing (WAL), so a snapshot is never torn. Restoring copies a snapshot back
with the same API inside one write transaction: a crash during a restore leaves the old
database, not a mix. The current database is itself snapshotted before it is replaced, so a
restore can be undone.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

KEEP_DAYS = 7
BACKUP_FOLDER = "backups"
_NAME = re.compile(
    r"^parlor-(daily|before-migration|before-restore|manual)-"
    r"(\d{8}-\d{6})(?:-\d+)?\.sqlite3$"
)


class BackupError(Exception):
    """A snapshot could not be made or restored; the message names the file and why."""


@dataclass(frozen=True)
class Snapshot:
    path: Path
    kind: str  # daily, before-migration, before-restore, manual
    taken: dt.datetime  # local time, from the file name

    @property
    def label(self) -> str:
        """What the Data settings list shows for it."""
        kind = self.kind.replace("-", " ")
        return f"{self.taken:%Y-%m-%d %H:%M} ({kind}, {self.path.stat().st_size // 1024} KB)"


def backup_dir(db_path: Path) -> Path:
    """Snapshots live beside the database, in `backups/`."""
    return db_path.parent / BACKUP_FOLDER


def snapshot(db_path: Path, kind: str = "manual", now: dt.datetime | None = None) -> Path:
    """Copy the database to a new snapshot file and return its path."""
    now = now or dt.datetime.now()
    folder = backup_dir(db_path)
    target = folder / f"parlor-{kind}-{now:%Y%m%d-%H%M%S}.sqlite3"
    n = 1
    while target.exists():
        target = folder / f"parlor-{kind}-{now:%Y%m%d-%H%M%S}-{n}.sqlite3"
        n += 1
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _copy(db_path, target)
    except (sqlite3.Error, OSError) as exc:
        _discard(target)
        raise BackupError(f"Could not back up {db_path} to {target}: {exc}") from exc
    return target


def _discard(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _copy(source: Path, target: Path) -> None:
    # Open the source read-only through a URI so a missing file is an error, not a new db.
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        # A snapshot is a single file: no -wal beside it to lose when it is copied around.
        dst.execute("PRAGMA journal_mode = DELETE")
    finally:
        dst.close()
        src.close()


def list_snapshots(db_path: Path) -> list[Snapshot]:
    """Every snapshot of this database, newest first."""
    found = []
    folder = backup_dir(db_path)
    for path in folder.glob("parlor-*.sqlite3") if folder.is_dir() else ():
        match = _NAME.match(path.name)
        if match:
            taken = dt.datetime.strptime(match.group(2), "%Y%m%d-%H%M%S")
            found.append(Snapshot(path, match.group(1), taken))
    return sorted(found, key=lambda s: (s.taken, s.path.name), reverse=True)


def daily_snapshot(
    db_path: Path, keep_days: int = KEEP_DAYS, now: dt.datetime | None = None
) -> Path | None:
    """Take today's snapshot unless there is one; drop daily ones older than `keep_days`.

    Call it at start (and, for an app left open for days, once a day). Returns the new
    snapshot, or None when today's already exists or there is no database yet.
    """
    now = now or dt.datetime.now()
    if not db_path.exists():
        return None
    daily = [s for s in list_snapshots(db_path) if s.kind == "daily"]
    made = None
    if not any(s.taken.date() == now.date() for s in daily):
        made = snapshot(db_path, "daily", now)
    oldest_kept = now.date() - dt.timedelta(days=keep_days - 1)
    for old in daily:
        if old.taken.date() < oldest_kept:
            old.path.unlink(missing_ok=True)
    return made


def snapshot_before_migration(db_path: Path) -> Path | None:
    """Snapshot an existing database whose schema is about to be migrated; else do nothing.

    Called by `open_database` before it connects. A new database (version 0) has nothing to
    lose; a current one needs no migration.
    """
    from app.core.store.db import MIGRATIONS  # here: the store imports this module

    if not db_path.exists():
        return None
    try:
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"Could not read the schema version of {db_path}: {exc}") from exc
    if 0 < version < len(MIGRATIONS):
        return snapshot(db_path, "before-migration")
    return None


def check_snapshot(path: Path) -> None:
    """Raise BackupError unless `path` is a sound Parlor database."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            conn.execute("SELECT count(*) FROM messages").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is not a Parlor database: {exc}") from exc
    if result != "ok":
        raise BackupError(f"{path} is damaged: {result}")


def restore_snapshot(snapshot_path: Path, db_path: Path) -> Path | None:
    """Replace the database's content with the snapshot's. Close the Store first.

    Returns the snapshot taken of the current database before it was replaced (None when
    there was no database). Reopen the Store (a new AppContext) afterwards.
    """
    check_snapshot(snapshot_path)
    undo = snapshot(db_path, "before-restore") if db_path.exists() else None
    try:
        src = sqlite3.connect(f"{snapshot_path.resolve().as_uri()}?mode=ro", uri=True)
        dst = sqlite3.connect(db_path, timeout=5)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    except (sqlite3.Error, OSError) as exc:
        raise BackupError(f"Could not restore {db_path} from {snapshot_path}: {exc}") from exc
    return undo
