"""Deleted messages removed for good in the background (core/store/purge.py).

When a delete's Undo offer ends, the controller hides the messages in the store at once (one
row, on the GUI thread) and the purger removes the rows on Qt's thread pool (C9), on a
connection of its own and a short transaction per batch, so a 100,000-message branch never
stalls the window. What is left when the app quits is still hidden; the next start, or the
next chat opened, finishes it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject

from app.core.store.purge import purge
from app.gui.models.jobs import JobSlot

log = logging.getLogger(__name__)


class Purger(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._slot = JobSlot()
        app = QCoreApplication.instance()
        if app is not None:  # quitting waits for the step under way, not the whole purge
            app.aboutToQuit.connect(self.shutdown)

    @property
    def busy(self) -> bool:
        return self._slot.busy

    def start(self, db_path: Path) -> None:
        """Purge what the database at `db_path` lists. A purge already running stops after
        its step; this one goes on from the list (each step reads it afresh)."""
        self._slot.start(
            lambda _report, cancel: purge(db_path, cancel),
            on_success=self._on_done,
            on_failure=self._on_failed,
            name="purge deleted messages",
        )

    def shutdown(self, timeout: float = 5.0) -> None:
        self._slot.shutdown(timeout)

    def _on_done(self, removed: int) -> None:
        if removed:
            log.info("purged %d deleted messages", removed)

    def _on_failed(self, message: str) -> None:
        # the messages stay hidden and listed: the next start tries again
        log.warning("deleted messages not purged yet: %s", message)
