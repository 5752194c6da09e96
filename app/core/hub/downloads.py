"""Downloads from a Hugging Face hub that always end in a verified file or a clear message.

huggingface_hub does what it does well here: listing a repository, file metadata (size and
the LFS sha256), resolve URLs, the token and the endpoint. The bytes we move ourselves,
because huggingface_hub 2.x restarts a file from zero in every new process: this module
writes `<name>.part`, resumes it with a Range request (within one call after a dropped
connection, and across restarts), checks free disk first, hashes as it writes, and renames
to the final name only once size and checksum match. Nothing is ever left under the final
name unless verified.

The API is Qt-free and blocking: run `download()` on a worker thread, pass a
`threading.Event` to cancel it and a callback for `Progress`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import HfApi, constants, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

GB = 1_000_000_000
DISK_MARGIN = 64 * 1024 * 1024  # keep a little free space beyond the file itself
RETRIES = 5  # attempts without progress before giving up on a dropped connection
PROGRESS_INTERVAL_S = 0.1
TIMEOUT = httpx2.Timeout(30.0, connect=15.0)

Opener = Callable[[Path, str], BinaryIO]
DiskUsage = Callable[[Path], Any]  # shutil.disk_usage's shape: an object with .free


def human_size(num_bytes: float) -> str:
    """Decimal units, as the hub and the model cards use: '1.23 GB', '45.6 MB', '300 kB'."""
    for unit, scale, digits in (("GB", GB, 2), ("MB", 10**6, 1), ("kB", 10**3, 0)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.{digits}f} {unit}"
    return f"{int(num_bytes)} bytes"


class DownloadError(Exception):
    """Something a person can read and act on; the message says what happened and what next."""


class DownloadCancelled(DownloadError):
    pass


class ChecksumMismatch(DownloadError):
    pass


# ---------------------------------------------------------------------------------------------
# What is on the hub


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None = None  # LFS files: the content's sha256
    git_sha1: str | None = None  # small files kept in git: the blob id

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class GgufModel:
    """One loadable model: a single GGUF, or all the parts of a split one."""

    name: str  # the file's path, or for a split model its path without `-0000N-of-0000M`
    quant: str | None
    files: tuple[RemoteFile, ...]
    split_count: int = 1

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def complete(self) -> bool:
        return len(self.files) == self.split_count

    @property
    def first_file(self) -> str:
        """The file to hand llama.cpp (it finds the other parts next to it)."""
        return self.files[0].name


_QUANT = re.compile(
    r"(?<![A-Za-z0-9])("
    r"IQ[1-4]_(?:XXS|XS|S|M|NL|L)|TQ[12]_0|Q[2-8]_K(?:_(?:XXL|XL|L|M|S))?"
    r"|Q[4-8]_[01](?:_[48]_[48])?|MXFP4(?:_MOE)?|BF16|FP16|FP32|F16|F32"
    r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"^(?P<base>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


def quant_from_filename(name: str) -> str | None:
    """'ggml-model-q4_k_m.gguf' -> 'Q4_K_M'; the last quant-looking token of the file name."""
    stem = name.rsplit("/", 1)[-1]
    found = _QUANT.findall(stem)
    if not found:
        return None
    quant = found[-1].upper()
    return {"FP16": "F16", "FP32": "F32"}.get(quant, quant)


def split_info(name: str) -> tuple[str, int, int] | None:
    """'m-Q4_K_M-00002-of-00003.gguf' -> ('m-Q4_K_M', 2, 3); None for a single file."""
    match = _SPLIT.match(name)
    if not match:
        return None
    return match.group("base"), int(match.group("index")), int(match.group("count"))


def group_gguf(files: Iterable[RemoteFile]) -> list[GgufModel]:
    """GGUF files as models, split parts grouped together, smallest first."""
    singles: list[GgufModel] = []
    splits: dict[tuple[str, int], list[tuple[int, RemoteFile]]] = {}
    for file in files:
        if not file.path.lower().endswith(".gguf"):
            continue
        info = split_info(file.path)
        if info is None:
            singles.append(GgufModel(file.path, quant_from_filename(file.path), (file,)))
        else:
            splits.setdefault((info[0], info[2]), []).append((info[1], file))
    for (base, count), parts in splits.items():
        ordered = tuple(f for _, f in sorted(parts, key=lambda p: p[0]))
        singles.append(GgufModel(f"{base}.gguf", quant_from_filename(base), ordered, count))
    return sorted(singles, key=lambda m: (m.size, m.name))


_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def parse_repo_ref(text: str) -> tuple[str, str | None]:
    """A repo id or a pasted hub URL -> (repo id, file path in the repo or None)."""
    text = text.strip().rstrip("/")
    if _REPO_ID.match(text):
        return text, None
    if "://" not in text and text.split("/", 1)[0].count("."):
        text = "https://" + text  # 'huggingface.co/owner/name'
    parts = [p for p in urlsplit(text).path.split("/") if p]
    if parts[:1] == ["models"]:
        parts = parts[1:]
    if parts[:1] in (["datasets"], ["spaces"]) or not _REPO_ID.match("/".join(parts[:2])):
        raise DownloadError(f"Not a model repository id or URL: {text!r} (expected owner/name)")
    repo_id = "/".join(parts[:2])
    if len(parts) > 4 and parts[2] in ("blob", "resolve"):
        return repo_id, "/".join(parts[4:])
    return repo_id, None


@dataclass(frozen=True)
class Hub:
    """Where and as whom: endpoint (None: HF_ENDPOINT or the default hub), token (None: the
    login or HF_TOKEN; False: anonymous), revision (None: main)."""

    endpoint: str | None = None
    token: str | bool | None = field(default=None, repr=False)  # never in logs or tracebacks
    revision: str | None = None

    @property
    def base_url(self) -> str:
        return (self.endpoint or constants.ENDPOINT).rstrip("/")

    def api(self) -> HfApi:
        return HfApi(endpoint=self.base_url, token=self.token)

    def url(self, repo_id: str, path: str) -> str:
        return hf_hub_url(repo_id, path, revision=self.revision, endpoint=self.base_url)

    def headers(self) -> dict[str, str]:
        headers = build_hf_headers(token=self.token)
        headers["Accept-Encoding"] = "identity"  # sizes and hashes are of the raw bytes
        return headers

    def list_files(self, repo_id: str) -> list[RemoteFile]:
        with hub_errors(self, repo_id):
            tree = self.api().list_repo_tree(repo_id, recursive=True, revision=self.revision)
            return [_remote_file(item) for item in tree if hasattr(item, "size")]

    def list_gguf(self, repo_id: str) -> list[GgufModel]:
        return group_gguf(self.list_files(repo_id))

    def file_info(self, repo_id: str, paths: Sequence[str]) -> list[RemoteFile]:
        """Size and checksum of the given files; a missing file is an error that names it."""
        with hub_errors(self, repo_id):
            infos = self.api().get_paths_info(repo_id, list(paths), revision=self.revision)
        found = {item.path: _remote_file(item) for item in infos if hasattr(item, "size")}
        missing = [p for p in paths if p not in found]
        if missing:
            raise DownloadError(f"{repo_id} has no file {missing[0]!r}.")
        return [found[p] for p in paths]


def _remote_file(item: Any) -> RemoteFile:
    if item.lfs is not None:
        return RemoteFile(item.path, int(item.size), sha256=item.lfs.sha256)
    return RemoteFile(item.path, int(item.size), git_sha1=item.blob_id)


@contextlib.contextmanager
def hub_errors(hub: Hub, repo_id: str, path: str | None = None) -> Iterator[None]:
    """Turn the many ways a hub call fails into one DownloadError a person can act on."""
    what = f"{repo_id}/{path}" if path else repo_id
    login = "log in with `hf auth login` or set HF_TOKEN"
    try:
        yield
    except DownloadError:
        raise
    except OfflineModeIsEnabled as exc:
        raise DownloadError("Offline mode is on (HF_HUB_OFFLINE is set); the hub "
                            "cannot be reached.") from exc
    except GatedRepoError as exc:
        raise DownloadError(f"{repo_id} is gated: accept its terms at {hub.base_url}/{repo_id}, "
                            f"then {login}.") from exc
    except RemoteEntryNotFoundError as exc:
        raise DownloadError(f"{what} was not found on the hub.") from exc
    except RevisionNotFoundError as exc:
        raise DownloadError(f"{repo_id} has no revision {hub.revision!r}.") from exc
    except RepositoryNotFoundError as exc:
        raise DownloadError(f"Repository {repo_id} was not found on {hub.base_url}. "
                            f"If it is private or gated, {login}.") from exc
    except HfHubHTTPError as exc:
        raise DownloadError(_explain_status(exc, what, login, hub)) from exc
    except HFValidationError as exc:
        raise DownloadError(f"Not a valid repository id: {repo_id!r}.") from exc
    except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.ProxyError) as exc:
        raise DownloadError(f"Cannot reach {hub.base_url} ({exc}). Check the connection, or "
                            "use a mirror (HF_ENDPOINT or --endpoint).") from exc
    except httpx2.TransportError as exc:
        raise DownloadError(f"The connection to {hub.base_url} failed: {exc}.") from exc


def _explain_status(exc: HfHubHTTPError, what: str, login: str, hub: Hub) -> str:
    status = exc.response.status_code if exc.response is not None else None
    if status == 401:
        return f"Not authorized to read {what} (401): it may be private or gated; {login}."
    if status == 403:
        return f"Access to {what} is forbidden (403): accept its terms on the hub, then {login}."
    if status == 404:
        return f"{what} was not found on {hub.base_url} (404)."
    if status == 429:
        return "The hub is rate-limiting requests (429); wait a little and try again."
    if status is not None and status >= 500:
        return f"The hub had an error ({status}); try again later."
    return f"The hub refused the request for {what}: {exc}"


# ---------------------------------------------------------------------------------------------
# Progress


@dataclass(frozen=True)
class Progress:
    done: int  # bytes of the whole download on disk (fetched now or kept from before)
    total: int
    speed: float  # bytes per second over the last few seconds
    eta: float | None  # seconds left, None while the speed is unknown
    file: str  # the file being worked on
    phase: str  # "checking" (hashing a kept .part), "downloading", "retrying" (waiting to
    # reconnect after a dropped connection), "verifying", "done"

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass
class _Meter:
    total: int
    callback: Callable[[Progress], None] | None
    done: int = 0
    file: str = ""
    phase: str = "downloading"
    _samples: deque = field(default_factory=lambda: deque(maxlen=64))
    _last_emit: float = 0.0

    def add(self, n: int, *, transferred: bool = True) -> None:
        self.done += n
        now = time.monotonic()
        if transferred and (not self._samples or now - self._samples[-1][0] >= 0.2):
            self._samples.append((now, self.done))
        if now - self._last_emit >= PROGRESS_INTERVAL_S:
            self.emit(now)

    def set(self, *, file: str | None = None, phase: str | None = None) -> None:
        self.file = file if file is not None else self.file
        self.phase = phase if phase is not None else self.phase
        self._samples.clear()
        self.emit()

    def emit(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._last_emit = now
        if self.callback is not None:
            speed = self._speed(now)
            eta = (self.total - self.done) / speed if speed > 0 else None
            self.callback(Progress(self.done, self.total, speed, eta, self.file, self.phase))

    def _speed(self, now: float) -> float:
        while len(self._samples) > 2 and now - self._samples[0][0] > 5.0:
            self._samples.popleft()
        if len(self._samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0


# ---------------------------------------------------------------------------------------------
# The transfer


def part_path(dest: Path, file: RemoteFile) -> Path:
    return Path(dest) / f"{file.name}.part"


def discard_partial(dest: Path, files: Iterable[RemoteFile]) -> None:
    """Remove the `.part` files of a download the user gave up on."""
    for file in files:
        part_path(dest, file).unlink(missing_ok=True)


class _Checksum:
    """The running digest of a `.part` file, reset when the transfer starts over."""

    def __init__(self, file: RemoteFile) -> None:
        if not (file.sha256 or file.git_sha1):
            raise DownloadError(f"The hub gave no checksum for {file.path}; refusing to install "
                                "an unverified file.")
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


def _expected_digest(file: RemoteFile) -> str:
    return (file.sha256 or file.git_sha1 or "").lower()


def _default_opener(path: Path, mode: str) -> BinaryIO:
    return open(path, mode)  # noqa: SIM115 - the caller closes it


@dataclass
class _Job:
    hub: Hub
    repo_id: str
    dest: Path
    meter: _Meter
    cancel: threading.Event
    opener: Opener
    retries: int
    retry_wait: float


def download(
    repo_id: str,
    files: Sequence[RemoteFile] | GgufModel,
    dest: Path | str,
    *,
    hub: Hub | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    disk_usage: DiskUsage = shutil.disk_usage,
    opener: Opener = _default_opener,
    retries: int = RETRIES,
    retry_wait: float = 1.0,
) -> list[Path]:
    """Download `files` (all parts of a split model together) into `dest`; return final paths.

    Raises DownloadError (DownloadCancelled, ChecksumMismatch) with a message for people.
    A cancelled or interrupted download keeps its `.part` files to resume next time.
    """
    hub = hub or Hub()
    files = list(files.files if isinstance(files, GgufModel) else files)
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"Cannot create the folder {dest}: {exc.strerror or exc}.") from exc
    pending = [f for f in files if not _installed(dest, f)]
    for file in pending:
        _Checksum(file)  # refuse before downloading anything we could not verify
    _check_disk(dest, pending, disk_usage)
    meter = _Meter(sum(f.size for f in files), progress)
    meter.done = sum(f.size for f in files if f not in pending)
    job = _Job(hub, repo_id, dest, meter, cancel or threading.Event(), opener, retries, retry_wait)
    for file in pending:
        _download_one(job, file)
    meter.set(phase="done")
    return [dest / f.name for f in files]


def _installed(dest: Path, file: RemoteFile) -> bool:
    final = dest / file.name
    return final.is_file() and final.stat().st_size == file.size


def _check_disk(dest: Path, files: Sequence[RemoteFile], disk_usage: DiskUsage) -> None:
    needed = 0
    for file in files:
        have = _size(part_path(dest, file))
        needed += max(0, file.size - have) if have <= file.size else file.size
    if not needed:
        return
    free = disk_usage(dest).free
    if free < needed + DISK_MARGIN:
        raise DownloadError(
            f"Not enough disk space in {dest}: the download needs {human_size(needed)} more "
            f"and {human_size(free)} are free. Free some space or choose another folder.")


def _download_one(job: _Job, file: RemoteFile) -> None:
    part = part_path(job.dest, file)
    start = job.meter.done
    resumed = part.is_file() and 0 < part.stat().st_size <= file.size
    try:
        checksum = _rehash_part(job, file, part)
        with hub_errors(job.hub, job.repo_id, file.path):
            _transfer(job, file, part, checksum)
        job.meter.set(phase="verifying")
        _verify(file, part, checksum)
    except ChecksumMismatch:
        part.unlink(missing_ok=True)
        if not resumed:
            raise
        # A .part left by an earlier run may belong to an older version of the file.
        job.meter.done = start
        _download_one(job, file)
        return
    _install(part, job.dest / file.name)


def _rehash_part(job: _Job, file: RemoteFile, part: Path) -> _Checksum:
    """Feed the bytes an earlier run left in `.part` to the checksum, so that the end needs
    no second read of the whole file."""
    checksum = _Checksum(file)
    if not part.is_file():
        return checksum
    if part.stat().st_size > file.size:
        part.unlink()
        return checksum
    job.meter.set(file=file.name, phase="checking")
    with open(part, "rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            if job.cancel.is_set():
                raise _cancelled(file, part)
            checksum.update(chunk)
            job.meter.add(len(chunk), transferred=False)
    return checksum


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _transfer(job: _Job, file: RemoteFile, part: Path, checksum: _Checksum) -> None:
    """GET with Range until `.part` holds the whole file, retrying a dropped connection as
    long as each attempt brings more bytes, and giving up after `job.retries` that do not."""
    job.meter.set(file=file.name, phase="downloading")
    failures = 0
    while (offset := _size(part)) < file.size:
        try:
            _stream(job, file, part, offset, checksum)
        except (httpx2.TransportError, _ShortRead) as exc:
            failures = 0 if _size(part) > offset else failures + 1
            if failures > job.retries:
                raise DownloadError(
                    f"The connection to {job.hub.base_url} was lost while downloading "
                    f"{file.name} ({human_size(_size(part))} of {human_size(file.size)} kept in "
                    f"{part}). Run the download again to resume.") from exc
            job.meter.set(phase="retrying")
            if job.cancel.wait(min(job.retry_wait * 2 ** max(failures - 1, 0), 30.0)):
                raise _cancelled(file, part) from None
            job.meter.set(phase="downloading")


class _ShortRead(Exception):
    """The server ended a response before the bytes we were promised."""


def _stream(job: _Job, file: RemoteFile, part: Path, offset: int, checksum: _Checksum) -> None:
    """One GET from `offset`, appended to `.part`."""
    headers = job.hub.headers()
    if offset:
        headers["Range"] = f"bytes={offset}-"
    url = job.hub.url(job.repo_id, file.path)
    with get_session().stream("GET", url, headers=headers, timeout=TIMEOUT) as response:
        status = response.status_code
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


def _check_content_range(response: Any, offset: int) -> None:
    content_range = response.headers.get("Content-Range", "")
    if not content_range.startswith(f"bytes {offset}-"):
        raise DownloadError(f"The server answered a resume request with the wrong range "
                            f"({content_range or 'none'}).")


def _append(job: _Job, file: RemoteFile, part: Path, chunks: Iterable[bytes], offset: int,
            checksum: _Checksum) -> None:
    written = offset
    try:
        with job.opener(part, "ab") as out:
            for chunk in chunks:
                if job.cancel.is_set():
                    raise _cancelled(file, part)
                written += len(chunk)
                if written > file.size:
                    raise ChecksumMismatch(f"The hub sent more than the {file.size} bytes of "
                                           f"{file.name}; the file was discarded.")
                out.write(chunk)
                checksum.update(chunk)
                job.meter.add(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise _write_failed(file, part, exc) from exc
    if written < file.size:
        raise _ShortRead(f"{written} of {file.size} bytes")


def _write_failed(file: RemoteFile, part: Path, exc: OSError) -> DownloadError:
    reason = "the disk is full" if exc.errno == 28 else (exc.strerror or str(exc))  # ENOSPC
    return DownloadError(
        f"Could not write {file.name}: {reason}. The part written so far is kept in {part}; "
        "free some space and run the download again to resume, or delete it.")


def _cancelled(file: RemoteFile, part: Path) -> DownloadCancelled:
    return DownloadCancelled(
        f"Download cancelled. {human_size(_size(part))} of {file.name} are kept in {part} "
        "to resume later.")


def _verify(file: RemoteFile, part: Path, checksum: _Checksum) -> None:
    size = _size(part)
    digest = checksum.hexdigest()
    if size != file.size or digest != _expected_digest(file):
        kind = "sha256" if file.sha256 else "git blob id"
        raise ChecksumMismatch(
            f"{file.name} did not match the hub's {kind} ({size} bytes, {digest[:12]}… "
            f"instead of {file.size} bytes, {_expected_digest(file)[:12]}…); the file was "
            "discarded. Try again; if it happens again, the mirror or the connection is "
            "corrupting data.")


def _install(part: Path, final: Path) -> None:
    os.replace(part, final)  # atomic on one file system: the final name appears complete
