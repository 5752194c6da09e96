"""Blocking core calls (download, convert, a hub listing) run off the GUI thread.

One helper for all of them (C9): `Job` runs `fn(report, cancel)` on Qt's thread pool,
where `report(value, milestone=False)` sends progress and `cancel` is a threading.Event the
call checks. Results come back as queued signals on the GUI thread, so only that thread ever
touches widgets (C6). `JobSlot` holds the current job of one kind: starting a new one
cancels the old one and drops its late signals (C10), so a header read for a row the
user has already left can never overwrite the row now selected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal

PROGRESS_INTERVAL_S = 0.05  # at most about 20 progress signals a second (C8)

Report = Callable[..., None]  # report(value, milestone=False)
Work = Callable[[Report, threading.Event], Any]


class Job(QObject):
    """One background call. Exactly one of succeeded/failed/cancelled is emitted, once."""

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)

    def __init__(self, fn: Work, name: str = "job", *, result_wins: bool = False) -> None:
        """`result_wins`: a call that returns normally succeeded even if Cancel came late,
        for work that commits as its last step (the data is in; saying "cancelled" would
        be a lie)."""
        super().__init__()
        self.setObjectName(name)
        self._fn = fn
        self._result_wins = result_wins
        self.cancel_event = threading.Event()
        self.done = threading.Event()
        self._last_report = 0.0

    def start(self) -> Job:
        QThreadPool.globalInstance().start(self._run)
        return self

    def cancel(self) -> None:
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the call has returned (for shutdown); True when it has."""
        return self.done.wait(timeout)

    def _report(self, value: Any, milestone: bool = False) -> None:
        """Throttled: a call may report per chunk; the GUI wants a few updates a second.
        A milestone (a new phase, the last chunk) always gets through."""
        now = time.monotonic()
        if milestone or now - self._last_report >= PROGRESS_INTERVAL_S:
            self._last_report = now
            self.progress.emit(value)

    def _run(self) -> None:
        try:
            result = self._fn(self._report, self.cancel_event)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the GUI as text
            message = str(exc) or type(exc).__name__
            if self.cancel_event.is_set():
                self.cancelled.emit(message)
            else:
                self.failed.emit(message)
        else:
            if self.cancel_event.is_set() and not self._result_wins:
                self.cancelled.emit("Cancelled.")
            else:
                self.succeeded.emit(result)
        finally:
            self.done.set()


class JobSlot:
    """The current job of one kind; the latest request wins."""

    def __init__(self) -> None:
        self.job: Job | None = None

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.done.is_set()

    def start(
        self,
        fn: Work,
        *,
        on_success: Callable[[Any], None],
        on_failure: Callable[[str], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_cancel: Callable[[str], None] | None = None,
        name: str = "job",
        result_wins: bool = False,
    ) -> Job:
        self.drop()
        job = Job(fn, name, result_wins=result_wins)
        job.succeeded.connect(self._only_current(job, on_success))
        if on_failure is not None:
            job.failed.connect(self._only_current(job, on_failure))
        if on_progress is not None:
            job.progress.connect(self._only_current(job, on_progress))
        if on_cancel is not None:
            job.cancelled.connect(self._only_current(job, on_cancel))
        self.job = job
        return job.start()

    def _only_current(self, job: Job, slot: Callable[[Any], None]) -> Callable[[Any], None]:
        def deliver(value: Any) -> None:
            if self.job is job:
                slot(value)

        return deliver

    def cancel(self) -> None:
        """Ask the running job to stop; its `cancelled` signal still arrives."""
        if self.job is not None:
            self.job.cancel()

    def drop(self) -> None:
        """Cancel the running job and ignore anything it sends from now on."""
        if self.job is not None:
            self.job.cancel()
            self.job = None

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel and wait for the call to return, so no thread outlives its dialog."""
        job = self.job
        self.drop()
        if job is not None:
            job.wait(timeout)


def time_left(seconds: float | None) -> str:
    """'about 6 min left'; '' while the speed is unknown (a guess would jump about)."""
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    if seconds < 60:
        return f"{max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"about {hours} h {minutes:02d} min left"


def rate(bytes_per_s: float) -> str:
    return f"{bytes_per_s / 1e6:.1f} MB/s" if bytes_per_s > 0 else ""
