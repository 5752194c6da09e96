"""Moving the bytes: GET with Range into `<name>.part`, hashing as it writes.

A dropped connection, a stall (no byte for `stall_s`), a 5xx or a 429 is retried with
exponential backoff (a 429's Retry-After is honoured) for as long as attempts bring new
bytes; without progress it gives up after `attempts` tries or `budget_s` seconds of waiting,
whichever comes first, and says so. The `.part` is kept to resume from.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import httpx2
from huggingface_hub.utils import get_session, hf_raise_for_status

from app.core.hub.errors import ChecksumMismatch, DownloadCancelled, DownloadError
from app.core.hub.progress import Meter
from app.core.hub.remote import Hub, RemoteFile
from app.core.hub.units import human_seconds, human_size
from app.core.hub.verify import Checksum

Opener = Callable[[Path, str], BinaryIO]
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_STATUS_WORDS = {429: "too many requests", 503: "service unavailable"}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries in a row that bring no new bytes before giving up
    first_wait: float = 1.0  # then doubled each time, up to max_wait
    max_wait: float = 30.0
    budget_s: float = 300.0  # seconds of waiting without progress before giving up
    stall_s: float = 30.0  # no byte for this long is a stalled connection

    def wait(self, failures: int, retry_after: float | None) -> float:
        backoff = min(self.first_wait * 2 ** max(failures - 1, 0), self.max_wait)
        return float(min(max(backoff, retry_after or 0.0), self.max_wait))


def default_opener(path: Path, mode: str) -> BinaryIO:
    return cast(BinaryIO, open(path, mode))  # noqa: SIM115 - the caller closes it


@dataclass
class Job:
    hub: Hub
    repo_id: str
    dest: Path
    meter: Meter
    cancel: threading.Event
    opener: Opener
    policy: RetryPolicy


class Retryable(Exception):
    """A failure worth another attempt: what happened, and the server's Retry-After."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def size_of(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def cancelled(file: RemoteFile, part: Path) -> DownloadCancelled:
    return DownloadCancelled(
        f"Download cancelled. {human_size(size_of(part))} of {file.name} are kept in {part} "
        "to resume later, or to discard."
    )


def transfer(job: Job, file: RemoteFile, part: Path, checksum: Checksum) -> None:
    """GET with Range until `.part` holds the whole file, retrying as the policy says."""
    job.meter.set(file=file.name, phase="downloading")
    failures, waited = 0, 0.0
    while (offset := size_of(part)) < file.size:
        try:
            _stream(job, file, part, offset, checksum)
            continue
        except (httpx2.TransportError, Retryable) as exc:
            reason, retry_after = _reason(exc), getattr(exc, "retry_after", None)
        failures = 0 if size_of(part) > offset else failures + 1
        waited = 0.0 if not failures else waited
        pause = job.policy.wait(max(failures, 1), retry_after)
        if failures > job.policy.attempts or waited + pause > job.policy.budget_s:
            raise _gave_up(job, file, part, reason, max(failures - 1, 0), waited)
        job.meter.set(phase="retrying", note=_retry_note(job.policy, reason, pause, failures))
        if job.cancel.wait(pause):
            raise cancelled(file, part) from None
        waited += pause
        job.meter.set(phase="downloading")


def _reason(exc: Exception) -> str:
    if isinstance(exc, Retryable):
        return str(exc)
    if isinstance(exc, httpx2.ReadTimeout):
        return "the connection stalled"
    return "the connection was lost"


def _retry_note(policy: RetryPolicy, reason: str, pause: float, failures: int) -> str:
    tries = f"retry {failures} of {policy.attempts} without progress" if failures else "retry 1"
    return (
        f"{reason[:1].upper()}{reason[1:]}; retrying in {human_seconds(pause)} ({tries}; "
        f"Parlor gives up after {policy.attempts} retries or "
        f"{human_seconds(policy.budget_s)} of waiting without progress)"
    )


def _gave_up(
    job: Job, file: RemoteFile, part: Path, reason: str, retries: int, waited: float
) -> DownloadError:
    tries = f"{retries} retr{'y' if retries == 1 else 'ies'} over {human_seconds(waited)}"
    kept = (
        f"{human_size(size_of(part))} of {human_size(file.size)} are kept in {part}. "
        "Run the download again to resume."
        if size_of(part)
        else "Nothing was downloaded yet. Try again later."
    )
    return DownloadError(
        f"Downloading {file.name} from {job.hub.base_url} failed: {reason}, "
        f"and {tries} brought nothing more. {kept}"
    )


def _stream(job: Job, file: RemoteFile, part: Path, offset: int, checksum: Checksum) -> None:
    """One GET from `offset`, appended to `.part`."""
    headers = job.hub.headers()
    if offset:
        headers["Range"] = f"bytes={offset}-"
    url = job.hub.url(job.repo_id, file.path)
    timeout = httpx2.Timeout(job.policy.stall_s, connect=min(15.0, job.policy.stall_s))
    with get_session().stream("GET", url, headers=headers, timeout=timeout) as response:
        status = response.status_code
        if status in RETRY_STATUSES:
            words = _STATUS_WORDS.get(status, "a server error")
            raise Retryable(f"the hub answered {status} ({words})", _retry_after(response))
        if offset and status in (200, 416):
            # The server ignored the Range header, or has no such range: start over.
            part.unlink()
            job.meter.done -= offset
            offset = 0
            checksum.reset()
            if status == 416:
                return
        elif status == 206:
            _check_content_range(response, offset)
        elif status >= 400:
            response.read()
            hf_raise_for_status(response)
        _append(job, file, part, response.iter_bytes(), offset, checksum)


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def _check_content_range(response: Any, offset: int) -> None:
    content_range = response.headers.get("Content-Range", "")
    if not content_range.startswith(f"bytes {offset}-"):
        raise DownloadError(
            f"The server answered a resume request with the wrong range "
            f"({content_range or 'none'})."
        )


def _append(
    job: Job, file: RemoteFile, part: Path, chunks: Iterable[bytes], offset: int, checksum: Checksum
) -> None:
    written = offset
    try:
        with job.opener(part, "ab") as out:
            for chunk in chunks:
                if job.cancel.is_set():
                    raise cancelled(file, part)
                written += len(chunk)
                if written > file.size:
                    raise ChecksumMismatch(
                        f"The hub sent more than the {file.size} bytes of "
                        f"{file.name}; the file was discarded."
                    )
                out.write(chunk)
                checksum.update(chunk)
                job.meter.add(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise _write_failed(file, part, exc) from exc
    if written < file.size:
        raise Retryable("the connection was lost")


def _write_failed(file: RemoteFile, part: Path, exc: OSError) -> DownloadError:
    reason = "the disk is full" if exc.errno == 28 else (exc.strerror or str(exc))  # ENOSPC
    return DownloadError(
        f"Could not write {file.name}: {reason}. The part written so far is kept in {part}; "
        "free some space and run the download again to resume, or discard it."
    )
