"""ProgressJob's Cancel: at once before a job starts writing, and after that a wait for
the job's own answer, so what the window says about the data is true."""

from __future__ import annotations

import threading

from PySide6.QtWidgets import QPushButton, QWidget

from app.gui.models.progress_job import CANCELLED, SUCCEEDED, ProgressJob


def _job(qtbot, delay_ms: int = 0) -> ProgressJob:
    parent = QWidget()
    qtbot.addWidget(parent)
    parent.show()
    return ProgressJob(parent, "Import", "Working…", delay_ms=delay_ms)


def _cancel(qtbot, job: ProgressJob) -> None:
    qtbot.waitUntil(lambda: job.dialog is not None and job.dialog.isVisible(), timeout=5000)
    job.dialog.findChild(QPushButton).click()


def test_cancel_before_writing_ends_at_once_and_nothing_is_written(qtbot):
    job, go, written = _job(qtbot), threading.Event(), []

    def work(_report, cancel):
        go.wait(5)  # "reading"
        job.start_writing(cancel)
        written.append(1)

    outcomes = []
    job.start(work, on_success=outcomes.append, on_failure=outcomes.append)
    _cancel(qtbot, job)
    assert job.outcome == CANCELLED and job.dialog is None
    go.set()
    assert job.wait(5)
    qtbot.wait(50)
    assert written == [] and outcomes == []


def test_cancel_while_writing_waits_for_the_commit_and_says_it_happened(qtbot):
    job, writing, commit = _job(qtbot), threading.Event(), threading.Event()

    def work(_report, cancel):
        job.start_writing(cancel)
        writing.set()
        commit.wait(5)  # the transaction, which Cancel cannot interrupt
        return "committed"

    results = []
    job.start(work, on_success=results.append, on_failure=results.append)
    assert writing.wait(5)
    _cancel(qtbot, job)
    assert job.running and job.dialog.labelText() == "Cancelling…"
    commit.set()
    qtbot.waitUntil(lambda: not job.running, timeout=5000)
    assert job.outcome == SUCCEEDED and results == ["committed"]


def test_a_quick_job_shows_no_dialog(qtbot):
    job = _job(qtbot, delay_ms=300)
    with qtbot.waitSignal(job.finished, timeout=5000) as done:
        job.start(lambda _r, _c: 42, on_success=lambda _v: None, on_failure=lambda _m: None)
    assert done.args == [SUCCEEDED] and job.dialog is None


def test_a_job_whose_window_closed_delivers_nothing_late(qtbot):
    parent = QWidget()
    job = ProgressJob(parent, "Import", "Working…")
    go, answers = threading.Event(), []
    job.start(lambda _r, _c: go.wait(5), on_success=answers.append, on_failure=answers.append)
    running = job.slot.job
    parent.deleteLater()
    qtbot.waitUntil(lambda: job.slot.job is None, timeout=2000)
    go.set()
    assert running.wait(5)
    qtbot.wait(50)
    assert answers == []
