"""Downloads from a Hugging Face hub that always end in a verified file or a clear message.

huggingface_hub does what it does well here: listing a repository, file metadata (size and
the LFS sha256), resolve URLs, the token, the endpoint and the HTTP session. The bytes we
move ourselves, because huggingface_hub 2.x restarts a file from zero in every new process.
The steps have their own modules: `plan` (what is installed already, disk space), `lock`
(one writer per `.part`), `transfer` (Range requests, retries), `verify` (checksums, the
atomic rename) and `manifest` (what each installed file came from). Nothing is ever left
under the final name unless verified, and nothing is fetched twice.

The API is Qt-free and blocking: run `download()` on a worker thread, pass a
`threading.Event` to cancel it and a callback for `Progress`. The names callers use are all
importable from here.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from app.core.hub.errors import (
    AlreadyDownloading,
    ChecksumMismatch,
    DownloadCancelled,
    DownloadError,
    hub_errors,
)
from app.core.hub.lock import busy_message, part_lock
from app.core.hub.manifest import write_manifest
from app.core.hub.plan import DISK_MARGIN, DiskNeed, DiskUsage, Source, check_disk, installed
from app.core.hub.plan import part_path as part_path
from app.core.hub.progress import Meter, Progress
from app.core.hub.remote import (
    GgufModel,
    Hub,
    RemoteFile,
    group_gguf,
    parse_repo_ref,
    quant_from_filename,
    split_info,
)
from app.core.hub.transfer import Job, Opener, RetryPolicy, cancelled, default_opener, transfer
from app.core.hub.units import GB, human_size
from app.core.hub.verify import Checksum, hash_file, install, verify

log = logging.getLogger(__name__)

__all__ = [
    "DISK_MARGIN",
    "GB",
    "AlreadyDownloading",
    "ChecksumMismatch",
    "DiskNeed",
    "DownloadCancelled",
    "DownloadError",
    "GgufModel",
    "Hub",
    "Progress",
    "RemoteFile",
    "RetryPolicy",
    "discard_partial",
    "download",
    "group_gguf",
    "human_size",
    "parse_repo_ref",
    "part_path",
    "partial_bytes",
    "quant_from_filename",
    "split_info",
]


def download(
    repo_id: str,
    files: Sequence[RemoteFile] | GgufModel,
    dest: Path | str,
    *,
    hub: Hub | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    disk_usage: DiskUsage = shutil.disk_usage,
    opener: Opener = default_opener,
    policy: RetryPolicy | None = None,
    wait_for_other: bool = False,
) -> list[Path]:
    """Download `files` (all parts of a split model together) into `dest`; return final paths.

    A file already installed (by its manifest, or by its bytes) is not fetched again. A file
    another window or command is downloading raises AlreadyDownloading, or with
    `wait_for_other` is waited for. Raises DownloadError (DownloadCancelled,
    ChecksumMismatch) with a message for people; a cancelled or interrupted download keeps
    its `.part` files to resume next time.
    """
    hub = hub or Hub()
    files = list(files.files if isinstance(files, GgufModel) else files)
    dest = _folder(Path(dest))
    cancel = cancel or threading.Event()
    meter = Meter(sum(f.size for f in files), progress)
    sources = [Source(repo_id, hub.revision_name, f) for f in files]
    pending = [s for s in sources if not _installed(dest, s, meter, cancel)]
    for source in pending:
        Checksum(source.file)  # refuse before downloading anything we could not verify
    check_disk(dest, [s.file for s in pending], disk_usage)
    meter.done = sum(s.file.size for s in sources if s not in pending)
    job = Job(hub, repo_id, dest, meter, cancel, opener, policy or RetryPolicy())
    started = time.monotonic()
    log.info(
        "download from %s: %s (%d already here)",
        repo_id,
        ", ".join(f"{s.file.name} {human_size(s.file.size)}" for s in pending) or "-",
        len(sources) - len(pending),
    )
    try:
        for source in pending:
            _locked_download(job, source, wait_for_other)
    except DownloadError as exc:
        log.warning("download from %s stopped: %s: %s", repo_id, type(exc).__name__, exc)
        raise
    if pending:
        log.info(
            "downloaded and verified %d file(s) from %s in %.0f s",
            len(pending),
            repo_id,
            time.monotonic() - started,
        )
    meter.set(phase="done")
    return [dest / f.name for f in files]


def _folder(dest: Path) -> Path:
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"Cannot create the folder {dest}: {exc.strerror or exc}.") from exc
    return dest


def _installed(dest: Path, source: Source, meter: Meter, cancel: threading.Event) -> bool:
    return installed(
        dest, source, cancel, on_hash=lambda: meter.set(file=source.file.name, phase="identifying")
    )


def _locked_download(job: Job, source: Source, wait: bool) -> None:
    part = part_path(job.dest, source.file)
    note = busy_message(source.file.name) + " Waiting for it…"
    with part_lock(
        part,
        wait=wait,
        cancel=job.cancel,
        on_wait=lambda: job.meter.set(file=source.file.name, phase="waiting", note=note),
    ):
        if installed(job.dest, source, job.cancel):  # the other download just finished it
            job.meter.add(source.file.size, transferred=False)
            return
        _download_one(job, source.file)
        write_manifest(job.dest / source.file.name, source.manifest())


def _download_one(job: Job, file: RemoteFile) -> None:
    part = part_path(job.dest, file)
    start = job.meter.done
    resumed = part.is_file() and 0 < part.stat().st_size <= file.size
    try:
        checksum = _rehash_part(job, file, part)
        with hub_errors(job.hub, job.repo_id, file.path):
            transfer(job, file, part, checksum)
        job.meter.set(phase="verifying")
        verify(file, part, checksum)
    except ChecksumMismatch:
        part.unlink(missing_ok=True)
        if not resumed:
            raise
        # A .part left by an earlier run may belong to an older version of the file.
        job.meter.done = start
        _download_one(job, file)
        return
    install(part, job.dest / file.name)


def _rehash_part(job: Job, file: RemoteFile, part: Path) -> Checksum:
    """Feed the bytes an earlier run left in `.part` to the checksum, so that the end needs
    no second read of the whole file."""
    checksum = Checksum(file)
    if not part.is_file():
        return checksum
    if part.stat().st_size > file.size:
        part.unlink()
        return checksum
    job.meter.set(file=file.name, phase="checking")
    try:
        hash_file(
            part,
            checksum,
            cancel=job.cancel,
            on_chunk=lambda n: job.meter.add(n, transferred=False),
        )
    except DownloadCancelled:
        raise cancelled(file, part) from None
    return checksum


def partial_bytes(dest: Path | str, files: Iterable[RemoteFile]) -> int:
    """How much of these files earlier attempts left in `.part` files (0: nothing to discard)."""
    return sum(p.stat().st_size for f in files if (p := part_path(Path(dest), f)).is_file())


def discard_partial(dest: Path | str, files: Iterable[RemoteFile]) -> int:
    """Remove the `.part` files of a download the user gave up on; the bytes freed. A part
    that another window or command is writing is left alone (AlreadyDownloading)."""
    freed = 0
    for file in files:
        part = part_path(Path(dest), file)
        if not part.is_file():
            continue
        with part_lock(part):
            freed += part.stat().st_size
            part.unlink(missing_ok=True)
    return freed
