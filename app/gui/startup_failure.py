"""When Parlor cannot start: say which folder and why, log the traceback, offer a snapshot.

A start that fails the same way every time (a damaged database, a data folder that became
read-only, a full disk) must not end in a traceback on a terminal nobody sees. The dialog
names the data folder, keeps the details one click away, and, when `backups/` holds a
snapshot, offers to restore the newest one (the current database is snapshotted first, so
that can be undone from Settings → Data).
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.core.appdata.logs import setup_logging
from app.core.appdata.paths import Paths
from app.core.store.backup import BackupError, Snapshot, list_snapshots, restore_snapshot

log = logging.getLogger(__name__)


def offer_recovery(paths: Paths, exc: BaseException) -> bool:
    """Show the failure; True when a snapshot was restored (start again), else False."""
    details = "".join(traceback.format_exception(exc))
    _log_failure(paths, details)
    box = failure_box(paths, exc, details)
    box.exec()
    snapshot = getattr(box, "snapshot", None)
    if snapshot is None or box.clickedButton() is not box.restore_button:
        return False
    return _restore(paths, snapshot)


def failure_box(paths: Paths, exc: BaseException, details: str) -> QMessageBox:
    """The dialog, not yet shown (tests click its buttons)."""
    box = QMessageBox(QMessageBox.Icon.Critical, "Parlor", "Parlor cannot start.")
    box.setTextFormat(Qt.TextFormat.PlainText)  # the reason may quote file contents
    box.setInformativeText(
        f"{_reason(exc)}\n\nThe data folder is {paths.data}.\n"
        f"The details are in the log, in {paths.logs}."
    )
    box.setDetailedText(details)
    box.snapshot = _newest(paths)
    box.restore_button = None
    if box.snapshot is not None:
        box.restore_button = box.addButton(
            f"Restore the snapshot of {box.snapshot.label}", QMessageBox.ButtonRole.AcceptRole
        )
    box.setDefaultButton(box.addButton("Quit", QMessageBox.ButtonRole.RejectRole))
    return box


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, PermissionError) or "readonly" in text or "read-only" in text:
        text += "\nParlor needs to write to its data folder: check that it is writable."
    elif "disk is full" in text or getattr(exc, "errno", None) == 28:
        text += "\nThe disk is full: free some space, then start Parlor again."
    return text


def _newest(paths: Paths) -> Snapshot | None:
    try:
        snapshots = list_snapshots(paths.database)
    except OSError:
        return None
    return snapshots[0] if snapshots else None


def _log_failure(paths: Paths, details: str) -> None:
    try:
        setup_logging(paths.logs)
        log.error("Parlor could not start:\n%s", details)
    except OSError:  # the log folder itself cannot be written: the terminal is all there is
        print(details, file=sys.stderr)


def _restore(paths: Paths, snapshot: Snapshot) -> bool:
    try:
        kept = _set_aside(paths.database)
        restore_snapshot(snapshot.path, paths.database)
    except (BackupError, OSError) as exc:
        log.error("restoring %s failed: %s", snapshot.path, exc)
        box = QMessageBox(
            QMessageBox.Icon.Critical, "Parlor", f"The snapshot could not be restored:\n{exc}"
        )
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.exec()
        return False
    log.info(
        "restored %s after a failed start; the old database is kept as %s", snapshot.path, kept
    )
    return True


def _set_aside(db: Path) -> Path | None:
    """Rename the database (and its -wal, -shm) out of the way, keeping it: a damaged file
    cannot be snapshotted, so `restore_snapshot` could not make its usual undo copy."""
    if not db.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kept = db.with_name(f"{db.name}.failed-start-{stamp}")
    for suffix in ("", "-wal", "-shm", "-journal"):
        part = Path(f"{db}{suffix}")
        if part.exists():
            part.rename(Path(f"{kept}{suffix}"))
    return kept
