"""Checksums: the running digest of a `.part`, the check before a file gets its final name,
and the atomic rename that gives it that name."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from app.core.hub.errors import ChecksumMismatch, DownloadCancelled, DownloadError
from app.core.hub.remote import RemoteFile

CHUNK = 4 * 1024 * 1024


class Checksum:
    """The running digest of a `.part` file, reset when the transfer starts over."""

    def __init__(self, file: RemoteFile) -> None:
        if not file.digest:
            raise DownloadError(
                f"The hub gave no checksum for {file.path}; refusing to install an unverified file."
            )
        self.file = file
        self.reset()

    def reset(self) -> None:
        if self.file.sha256:
            self._hash = hashlib.sha256()
        else:
            self._hash = hashlib.sha1()  # noqa: S324 - git's blob id, as the hub gives it
            self._hash.update(f"blob {self.file.size}\0".encode())

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def hash_file(
    path: Path,
    checksum: Checksum | None = None,
    *,
    cancel: threading.Event | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> str:
    """Feed a whole file to `checksum` (a plain sha256 without one); cancellable."""
    digest = checksum or hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled(f"Checking {path.name} was cancelled.")
            digest.update(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
    return digest.hexdigest()


def matches(path: Path, file: RemoteFile) -> bool:
    """Whether the file on disk holds exactly the hub's bytes (size first: it is free)."""
    if not path.is_file() or path.stat().st_size != file.size:
        return False
    return hash_file(path, Checksum(file)) == file.digest


def verify(file: RemoteFile, part: Path, checksum: Checksum) -> None:
    size = part.stat().st_size if part.is_file() else 0
    digest = checksum.hexdigest()
    if size != file.size or digest != file.digest:
        kind = "sha256" if file.sha256 else "git blob id"
        raise ChecksumMismatch(
            f"{file.name} did not match the hub's {kind} ({size} bytes, {digest[:12]}… "
            f"instead of {file.size} bytes, {file.digest[:12]}…); the file was "
            "discarded. Try again; if it happens again, the mirror or the connection is "
            "corrupting data."
        )


def install(part: Path, final: Path) -> None:
    os.replace(part, final)  # atomic on one file system: the final name appears complete
