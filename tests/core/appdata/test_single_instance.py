"""One instance per data folder: the OS lock (no Qt), then the focus request (pytest-qt)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from app.core.appdata.single_instance import AlreadyRunning, InstanceLock, server_name

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from app.core.appdata.single_instance import InstanceLock
    lock = InstanceLock(Path(sys.argv[1]))
    print("held" if lock.acquire() else "busy", flush=True)
    time.sleep(60)
""")


def _start_holder(folder) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_lock_in_the_same_process_is_refused(tmp_path):
    first = InstanceLock(tmp_path)
    assert first.acquire() and first.held
    second = InstanceLock(tmp_path)
    try:
        assert not second.acquire()
        with pytest.raises(AlreadyRunning, match=str(os.getpid())):
            second.acquire_or_raise()
    finally:
        first.release()
    assert second.acquire()
    second.release()


def test_lock_held_by_another_process_then_freed_when_it_is_killed(tmp_path):
    holder = _start_holder(tmp_path)
    try:
        lock = InstanceLock(tmp_path)
        assert not lock.acquire()
        assert lock.holder_pid() == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # A crash leaves the lock file but never a held lock.
    assert (tmp_path / "parlor.lock").exists()
    with InstanceLock(tmp_path) as lock:
        assert lock.held and lock.holder_pid() == os.getpid()


def test_different_folders_do_not_block_each_other(tmp_path):
    a, b = InstanceLock(tmp_path / "a"), InstanceLock(tmp_path / "b")
    assert a.acquire() and b.acquire()
    a.release()
    b.release()
    assert server_name(tmp_path / "a") != server_name(tmp_path / "b")
    assert server_name(tmp_path / "a") == server_name(tmp_path / "x" / ".." / "a")


def test_focus_request_reaches_the_first_instance(qtbot, tmp_path):
    from PySide6.QtWidgets import QWidget

    from app.gui.single_instance import FocusServer, ask_running_instance_to_focus

    window = QWidget()
    qtbot.addWidget(window)
    window.showMinimized()
    server = FocusServer(tmp_path, window)
    try:
        with qtbot.waitSignal(server.focus_requested, timeout=5000):
            # The second start runs in another process, as it would for real.
            assert _ask_from_subprocess(tmp_path, qtbot)
        assert not window.isMinimized()
    finally:
        server.close()
    assert not ask_running_instance_to_focus(tmp_path)  # nobody listening now


def _ask_from_subprocess(folder, qtbot) -> bool:
    code = (
        "import sys; from pathlib import Path; from PySide6.QtCore import QCoreApplication;"
        "from app.gui.single_instance import ask_running_instance_to_focus as ask;"
        "app = QCoreApplication([]); print(ask(Path(sys.argv[1])))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True
    )
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=10000)  # serve while it asks
    return proc.stdout.read().strip() == "True"


def test_claim_data_folder_focuses_the_holder_instead_of_starting(qtbot, tmp_path):
    from PySide6.QtWidgets import QWidget

    from app.gui.single_instance import FocusServer, claim_data_folder

    first = claim_data_folder(tmp_path)
    assert first is not None and first.held
    holder = FocusServer(tmp_path, QWidget())
    try:
        # Same process: the answer needs the event loop, so the focus request cannot be
        # served here; without an answer the second start is refused with a reason.
        holder.server.close()
        with pytest.raises(AlreadyRunning, match="already running"):
            claim_data_folder(tmp_path)
    finally:
        first.release()
