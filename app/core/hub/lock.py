"""One writer per `.part`: a file lock (filelock) next to it, held for the whole transfer.

Two downloads of one file (the window and the CLI, two CLIs) would otherwise append to the
same `.part`. The lock file is removed by its holder before releasing, so none is left
behind; a waiter that then gets the lock on the removed file notices (the path names
another file, or none) and locks again.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from app.core.hub.errors import AlreadyDownloading, DownloadCancelled

POLL_S = 0.2


def lock_path(part: Path) -> Path:
    return part.with_name(part.name + ".lock")


def busy_message(name: str) -> str:
    return (
        f"{name} is already downloading in another window or command. Let it finish "
        "there (or cancel it there), then try again."
    )


@contextlib.contextmanager
def part_lock(
    part: Path,
    *,
    wait: bool = False,
    cancel: threading.Event | None = None,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold the lock of `part`. Busy: AlreadyDownloading, or with `wait` wait (calling
    `on_wait` once) until it is free or `cancel` is set."""
    name = part.name.removesuffix(".part")
    lock = _acquire(lock_path(part), name, wait, cancel, on_wait)
    try:
        yield
    finally:
        lock_path(part).unlink(missing_ok=True)  # before the release: nobody else holds it
        lock.release()


def _acquire(
    path: Path,
    name: str,
    wait: bool,
    cancel: threading.Event | None,
    on_wait: Callable[[], None] | None,
) -> FileLock:
    told = False
    while True:
        fds: list[int] = []
        lock = FileLock(path, timeout=0, thread_local=False, on_acquired=fds.append)
        try:
            lock.acquire()
        except Timeout:
            if not wait:
                raise AlreadyDownloading(busy_message(name)) from None
            if not told and on_wait is not None:
                on_wait()
                told = True
            if cancel is not None and cancel.wait(POLL_S):
                raise DownloadCancelled(
                    f"Stopped waiting for the other download of {name}."
                ) from None
            if cancel is None:
                threading.Event().wait(POLL_S)
            continue
        if _same_file(path, fds):
            return lock
        lock.release()  # we locked a file its last holder had already removed


def _same_file(path: Path, fds: list[int]) -> bool:
    if not fds:  # a soft lock (no flock on this file system) has no descriptor to compare
        return True
    try:
        return os.fstat(fds[0]).st_ino == os.stat(path).st_ino
    except OSError:
        return False
