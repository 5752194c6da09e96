"""One Parlor per data folder.

Two instances writing one database and one settings file would each overwrite the other's
view. The first start takes an exclusive OS lock on `parlor.lock` in the data folder
(fcntl.flock on POSIX, msvcrt.locking on Windows). The OS drops the lock when the process
ends, however it ends, so a crash never leaves a stale lock behind. A second start that
fails to take the lock asks the first to come to the front through a local socket named
by `server_name` (the Qt side is in app/gui/single_instance.py).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

LOCK_FILE = "parlor.lock"


class AlreadyRunning(Exception):
    """Another Parlor holds this data folder; the message names the folder and its pid."""


def server_name(data_dir: Path) -> str:
    """The local-socket name for this data folder: short, stable, no path characters."""
    digest = hashlib.sha256(str(Path(data_dir).resolve()).encode("utf-8")).hexdigest()
    return f"parlor-{digest[:16]}"


class InstanceLock:
    """An exclusive lock on a data folder, held until `release()` or the process ends."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock; False if another process holds it. Raises OSError if unwritable."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def acquire_or_raise(self) -> InstanceLock:
        if not self.acquire():
            pid = self.holder_pid()
            raise AlreadyRunning(
                f"Parlor is already running with the data folder "
                f"{self.path.parent}" + (f" (process {pid})" if pid else "")
            )
        return self

    def holder_pid(self) -> int | None:
        """The pid the holder wrote, for the message; None if unreadable."""
        try:
            return int(self.path.read_text().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self._fd is None:
            return
        _unlock(self._fd)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> InstanceLock:
        return self.acquire_or_raise()

    def __exit__(self, *exc: object) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover - Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
