"""A background call the user can watch and cancel, while the window keeps turning.

Imports and header reads take seconds on a big file and can block on a strange one (a
FIFO, a slow network share). `ProgressJob` runs the call through `JobSlot` (C9) and shows
a window-modal progress dialog with Cancel only when the call is still running after
`DELAY_MS`, so a quick import flashes nothing.

What Cancel means depends on where the writing happens:
- work that only *reads* and leaves the writing to `on_success` on the GUI thread (card
  files, a GGUF header): Cancel ends the job at once and any late result is dropped, so a
  cancelled import writes nothing;
- work that reads, then writes in one transaction (a chat file): it calls
  `start_writing(cancel)` between the two. Before that point Cancel ends the job at once
  (the call stops there instead of writing); after it, as below;
- work that writes in one transaction of its own from the start (`commits=True`, the
  export-everything zip): Cancel asks it to roll back and the dialog waits, saying so, for
  the call to return, since only the call knows whether it committed before it looked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QProgressDialog, QWidget

from app.gui.models.jobs import Job, JobSlot, Work

DELAY_MS = 300  # under this a job shows no dialog at all

SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"


@dataclass(frozen=True)
class Step:
    """What the call reports: `done` of `total` (0: unknown, a busy bar) and a line."""

    done: int
    total: int = 0
    text: str = ""


class Cancelled(Exception):
    """Raised by `start_writing` when Cancel came first."""


class ProgressJob(QObject):
    """One watched call. `finished(outcome)` comes once, after the matching callback."""

    finished = Signal(str)

    def __init__(self, parent: QWidget, title: str, text: str, *, delay_ms: int = DELAY_MS) -> None:
        super().__init__(parent)
        self._parent, self.title, self.text = parent, title, text
        self.slot = slot = JobSlot()
        # Closed with its window mid-job: the late answer has no widgets left to go to.
        self.destroyed.connect(lambda *_args: slot.drop())
        self._job: Job | None = None
        self.dialog: QProgressDialog | None = None
        self.outcome: str | None = None
        self._commits = False
        self._writing = False  # past `start_writing`: Cancel must wait for the answer
        self._gate = threading.Lock()  # makes "cancelled?" and "writing now" one step
        self._step = Step(0)
        self._callbacks: dict[str, Callable[[Any], None]] = {}
        self._timer = QTimer(self, singleShot=True, interval=delay_ms)
        self._timer.timeout.connect(self._show)

    def start(
        self,
        work: Work,
        *,
        on_success: Callable[[Any], None],
        on_failure: Callable[[str], None],
        on_cancel: Callable[[str], None] | None = None,
        commits: bool = False,
        name: str = "job",
    ) -> ProgressJob:
        self._commits = commits
        self._callbacks = {SUCCEEDED: on_success, FAILED: on_failure}
        if on_cancel is not None:
            self._callbacks[CANCELLED] = on_cancel
        self._job = self.slot.start(
            work,
            on_success=lambda value: self._finish(SUCCEEDED, value),
            on_failure=lambda message: self._finish(FAILED, message),
            on_progress=self._on_progress,
            on_cancel=lambda message: self._finish(CANCELLED, message),
            name=name,
            result_wins=True,  # a call that returned has done its work; say so
        )
        self._timer.start()
        return self

    @property
    def running(self) -> bool:
        return self.outcome is None

    def cancel(self) -> None:
        """What the Cancel button does."""
        if self.outcome is not None:
            return
        with self._gate:
            self.slot.cancel()
            waiting = self._commits or self._writing
        if waiting:  # only the call knows whether it committed: wait for its answer
            if self.dialog is not None:
                self.dialog.setLabelText(self.tr("Cancelling…"))
                self.dialog.setCancelButton(None)
            return
        self.slot.drop()  # a result already on its way is ignored: nothing gets written
        self._finish(CANCELLED, self.tr("Cancelled."))

    def start_writing(self, cancel: threading.Event) -> None:
        """Called by the work (on its thread) just before it writes: raises `Cancelled` if
        Cancel came first; from now on Cancel waits for the call's answer."""
        with self._gate:
            if cancel.is_set():
                raise Cancelled("Cancelled.")
            self._writing = True

    def wait(self, timeout: float = 5.0) -> bool:
        """Block until the call itself has returned (tests, shutdown)."""
        return self._job is None or self._job.wait(timeout)

    # --- the dialog ---------------------------------------------------------------------
    def _show(self) -> None:
        if self.outcome is not None:
            return
        dialog = QProgressDialog(self._parent)
        label = QLabel()
        label.setTextFormat(Qt.TextFormat.PlainText)  # lines name files from strangers
        label.setWordWrap(True)
        dialog.setLabel(label)
        dialog.setWindowTitle(self.title)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setMinimumDuration(0)
        dialog.setMinimumWidth(420)
        dialog.canceled.connect(self.cancel)
        self.dialog = dialog
        self._apply(self._step)
        dialog.show()

    def _on_progress(self, step: Any) -> None:
        if isinstance(step, Step):
            self._step = step
            if self.dialog is not None:
                self._apply(step)

    def _apply(self, step: Step) -> None:
        assert self.dialog is not None
        self.dialog.setLabelText(step.text or self.text)
        self.dialog.setRange(0, max(0, step.total))
        if step.total:
            self.dialog.setValue(min(step.done, step.total))

    def _finish(self, outcome: str, value: Any) -> None:
        if self.outcome is not None:
            return
        self.outcome = outcome
        self._timer.stop()
        if self.dialog is not None:
            self.dialog.canceled.disconnect(self.cancel)
            self.dialog.hide()
            self.dialog.deleteLater()
            self.dialog = None
        callback = self._callbacks.get(outcome)
        if callback is not None:
            callback(value)
        self.finished.emit(outcome)
