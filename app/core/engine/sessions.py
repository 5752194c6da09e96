"""Saved KV sessions: llama.cpp's cache kept on disk so a reopened chat is not read again.

Reopening a long chat after a restart would otherwise re-read its whole history. The engine
child saves at moments that cost the chat nothing: when it has been idle a while, and when
the model is unloaded or the app quits; never after a reply, and never so that a request
waits (the copy goes range by range and stops when a request comes in; the write runs on
a thread).

Each chat has one file of records (session_file.py), appended as the chat grows: a save
writes only the tokens the file does not hold yet, with the edit that turns the file's
cache into the live one (a reply re-tokenized, old messages dropped in a context shift),
and the generated ids of the replies starting in the new part, so a restart splices the
replies into the next prompt as the live engine did (reply_ids.py).
Files are found by their tokens, not by chat: the live cache is appended to the file it
continues (the file's tokens are mostly in it), otherwise it starts a new file. A file that
has grown past twice the state it rebuilds (dropped messages, old swipes) is written anew
and the old one deleted, so the bytes a reply costs stay about its own tokens' share.

States are stored as llama.cpp gives them: zlib at its fastest saved 14% of an f16 state at
25 MB/s of one core while the disk wrote 81 MB/s, so compression cost more time than the
write it saved (docs/benchmarks.md). A file that would take the folder past its cap is not
written at all, and says so in the log and in the folder's notice (Settings → Model); the
cap holds for the whole folder, the least recently used files going first.

A file is only ever a hint: it is used when every record names this model file (path, size,
modification time), context size, KV type, flash attention and llama-cpp-python version,
and each payload's SHA-256 matches; anything else is rejected with a note for the log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.engine import session_file as sf
from app.core.engine.kv_shift import Chunk, ReusePlan, plan_reuse
from app.core.engine.session_file import SUFFIX, FileIndex, SessionError

MIN_SAVE_TOKENS = 128  # shorter prompts re-evaluate faster than a file round trip
MIN_GAIN_TOKENS = 64  # restore only when the file saves at least this many tokens
SUPERSEDE = 0.8  # a cache that keeps a file's tokens up to this part of it continues it,
KEPT = 0.5  # if it keeps at least this part of them
COMPACT = 2.0  # a file this many times the size of the state it rebuilds is written anew
# The most one copy out of llama.cpp takes: 4 ms at the 1.1 GB/s of a quiet machine here, 44 ms
# at the slowest copy seen (90 MB/s under load), so a request waits under 50 ms even when
# the load jumps between two pieces (16 MiB pieces took up to 62 ms then).
CHUNK_BYTES = 4 * 2**20
BACKLOG_BYTES = 96 * 2**20  # copied but not yet written: the save's extra memory
_Pending = tuple[int, tuple[Chunk, ...], int, tuple[int, ...], tuple[sf.ReplyAt, ...]]
NOTICE = "notice.json"  # what the folder's last save could not do, for Settings → Model


def model_identity(
    model_path: str, n_ctx: int, kv_type: str, flash_attn: bool, version: str
) -> dict[str, Any]:
    """What a saved state depends on; a change to any of it makes old files useless.

    Flash attention is part of it because it changes how the V cache is laid out: llama.cpp
    refuses a state saved with the other setting (seen with llama-cpp-python 0.3.36).
    """
    st = os.stat(model_path)
    return {
        "model": os.path.abspath(model_path),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "n_ctx": n_ctx,
        "kv_type": kv_type,
        "flash_attn": bool(flash_attn),
        "llama_cpp": version,
        "format": "seq-ranges",
    }


def covered(saved: list[int], tokens: list[int], shift: bool = True) -> int:
    """Tokens of `tokens` a cache holding `saved` provides: the common prefix, and with
    `shift` the runs a context shift can move down."""
    return plan_reuse(saved, tokens + [-1], shift_off="" if shift else "off").reused


def continues(saved: list[int], tokens: list[int], shift: bool = True) -> bool:
    """Whether a cache holding `tokens` is the chat of a file holding `saved`, later on.

    It is when it keeps at least half of the file's tokens, up to near the file's end: what
    the file holds after the last of them (an old swipe, a reply re-tokenized) is at most a
    fifth of it. Tokens dropped before that are messages that left the prompt at the front
    of the history, for good. A branch from an earlier message loses the file's whole later
    part, and another chat with the same card keeps little more than the card: each keeps
    its own file."""
    plan = plan_reuse(saved, tokens + [-1], shift_off="" if shift else "off")
    last = plan.chunks[-1] if plan.chunks else None
    end = last.src + last.length if last else plan.prefix
    lost_at_end = len(saved) - end
    return plan.reused >= KEPT * len(saved) and lost_at_end <= (1 - SUPERSEDE) * len(saved)


@dataclass
class SaveJob:
    """One save: the edit and the live tokens to append to `path`, range by range."""

    path: Path
    prefix: int
    chunks: tuple[Chunk, ...]
    tokens: list[int]  # the live cache's tokens
    ranges: list[tuple[int, int]]  # cache positions to copy, each one record
    size: int = 0  # bytes the records will take
    replaces: Path | None = None  # the file this one is a compacted copy of
    done: list[tuple[int, int]] = field(default_factory=list)  # ranges queued so far
    replies: tuple[sf.ReplyAt, ...] = ()  # where `tokens` hold replies, with their ids


def split(start: int, end: int, total_bytes: int) -> list[tuple[int, int]]:
    """[start, end) in ranges of about CHUNK_BYTES each."""
    if end <= start:
        return []
    per = max(total_bytes / (end - start), 1.0)
    step = max(int(CHUNK_BYTES // per), 16)
    return [(a, min(a + step, end)) for a in range(start, end, step)]


class SessionStore:
    """The session folder for one loaded model. Appends run on one background thread.

    `notes` collects what the log should say (files rejected, saves skipped or failed);
    the engine child hands them to the parent with the next reply.
    """

    def __init__(self, folder: str | Path, identity: dict[str, Any], cap_bytes: int) -> None:
        self.folder = Path(folder)
        self.identity = identity
        self.cap_bytes = cap_bytes
        self.prefix = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        self.prefix = self.prefix[:16]
        self._lock = threading.Lock()
        self._index: dict[Path, FileIndex] = {}
        self._pending: dict[Path, int] = {}  # records queued and not yet written, per file
        self._backlog = 0  # their payload bytes
        self._queue: queue.Queue[tuple[SaveJob, _Pending | None, bytes | bytearray]]
        self._queue = queue.Queue()
        self._writer: threading.Thread | None = None
        self._failed: set[Path] = set()  # files whose queued records are dropped (disk error)
        self.write_record = sf.append  # (path, head, payload) -> bytes; on the writer thread
        self.notes: list[str] = []
        self._writes: list[tuple[int, float]] = []  # (bytes, seconds) since take_writes
        self.last_error = ""

    # --- notes for the log ---------------------------------------------------------------
    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    def take_notes(self) -> list[str]:
        with self._lock:
            notes, self.notes = self.notes, []
        return notes

    def take_writes(self) -> tuple[int, float]:
        """Bytes written and seconds spent writing since the last call."""
        with self._lock:
            writes, self._writes = self._writes, []
        return sum(b for b, _ in writes), sum(s for _, s in writes)

    # --- reading the folder --------------------------------------------------------------
    def files(self) -> Iterator[FileIndex]:
        """This model's files; damaged or foreign ones are removed, with a note."""
        for path in sorted(self.folder.glob(f"{self.prefix}-*{SUFFIX}")):
            index = self._indexed(path)
            if index is not None:
                yield index

    def _indexed(self, path: Path) -> FileIndex | None:
        with self._lock:
            known = self._index.get(path)
            if known is not None and (self._pending.get(path) or _size(path) == known.size):
                return known
        try:
            index = sf.scan(path)
            if index.identity != self.identity:
                raise SessionError(f"{path.name}: made for another model or setting")
        except SessionError as exc:
            self.reject(path, exc)
            return None
        if index.damage:  # a write cut short (a crash): the records before it are whole
            self.note(f"Cut a damaged end off a saved session: {path.name}: {index.damage}")
            sf.truncate(path, index.size)
        with self._lock:
            self._index[path] = index
        return index

    def reject(self, path: Path, exc: Exception) -> None:
        self.note(f"Rejected a saved session: {exc}")
        path.unlink(missing_ok=True)
        with self._lock:
            self._index.pop(path, None)

    def best_match(
        self, tokens: list[int], at_least: int, shift: bool = True
    ) -> tuple[FileIndex, int] | None:
        """The file covering most of `tokens`, if more than `at_least` of them."""
        best = None
        for index in self.files():
            n = covered(index.tokens, tokens, shift)
            if n > at_least and (best is None or n > best[1]):
                best = (index, n)
        return best

    def settled(self, index: FileIndex) -> FileIndex | None:
        """The file as it is on disk, once the writes queued for it are done (a restore of
        a file being written waits for it: the file is what the request needs)."""
        with self._lock:
            pending = self._pending.get(index.path, 0)
        if not pending:
            return index
        self.wait()
        return self._indexed(index.path) if index.path.exists() else None

    def payload(self, index: FileIndex, record: sf.Record) -> bytes:
        """A record's checked payload; a bad one rejects (deletes) the file, then raises."""
        try:
            return sf.read_payload(index.path, record)
        except SessionError as exc:
            self.reject(index.path, exc)
            raise

    def used(self, index: FileIndex) -> None:
        with contextlib.suppress(OSError):  # least recently *used*: reading counts for the cap
            os.utime(index.path)

    # --- planning a save -----------------------------------------------------------------
    def plan(
        self,
        tokens: list[int],
        size_of: Callable[[int, int], int],
        keep: int = 0,
        final: bool = False,
        shift: bool = True,
    ) -> SaveJob | None:
        """What to write so the folder holds the live cache `tokens`, or None.

        `size_of(start, end)` is the byte size of the cache range (llama.cpp's count)."""
        if len(tokens) < MIN_SAVE_TOKENS or self.busy:
            return None
        target = self._target(tokens, shift)
        edit = (
            plan_reuse(target.tokens, tokens + [-1], keep, "" if shift else "off")
            if target
            else None
        )
        start = edit.reused if edit else 0
        if len(tokens) - start <= (MIN_GAIN_TOKENS if final else 0):
            return None
        job = self._job(target, edit, tokens, start, size_of)
        return job if self._fits(job, tokens) else None

    def _target(self, tokens: list[int], shift: bool) -> FileIndex | None:
        """The file the live cache continues (the one covering most of it, if several)."""
        best = None
        for index in self.files():
            if continues(index.tokens, tokens, shift):
                n = covered(index.tokens, tokens, shift)
                best = (index, n) if best is None or n > best[1] else best
        return best[0] if best else None

    def _job(
        self,
        target: FileIndex | None,
        edit: ReusePlan | None,
        tokens: list[int],
        start: int,
        size_of: Callable[[int, int], int],
    ) -> SaveJob:
        new_path = self.folder / f"{self.prefix}-{uuid.uuid4().hex[:16]}{SUFFIX}"
        n = len(tokens)
        tail = size_of(start, n)
        if target is None or edit is None:
            return _job(new_path, 0, (), tokens, 0, tail)
        state = target.bytes_per_token() * n
        if start > 0 and target.size + tail > COMPACT * state:  # mostly dropped tokens: anew
            job = _job(new_path, 0, (), tokens, 0, size_of(0, n))
            job.replaces = target.path
            return job
        return _job(target.path, edit.prefix, tuple(edit.chunks), tokens, start, tail)

    def _fits(self, job: SaveJob, tokens: list[int]) -> bool:
        """Whether the file after this save stays under the folder's cap; if not, say so."""
        with self._lock:
            known = self._index.get(job.path)
        size = (known.size if known is not None else 0) + job.size
        if size <= self.cap_bytes:
            return True
        text = (
            f"Not saved: the session of {len(tokens)} tokens would take "
            f"{size / 2**20:.0f} MB, more than the {self.cap_bytes / 2**20:.0f} MB "
            "cap for saved sessions (Settings → Model)."
        )
        self.note(text)
        write_notice(self.folder, text)
        return False

    # --- writing -------------------------------------------------------------------------
    def put(self, job: SaveJob, start: int, end: int, payload: bytes | bytearray) -> None:
        """Queue the record for cache range [start, end) of `job` (copied on the engine's
        thread); the writer hashes and appends it. The first record carries the edit; each
        lists the replies that start in its range."""
        first = not job.done
        prefix, chunks = (job.prefix, job.chunks) if first else (start, ())
        tokens = tuple(job.tokens[start:end])
        with self._lock:  # what the file will hold, for the next plan (read again once written)
            index = self._index.get(job.path) or FileIndex(job.path, self.identity)
            replies = tuple(r for r in job.replies if start <= r[0] < end)
            kept = sf.replay_tokens(index.tokens, prefix, chunks)
            record = sf.Record(prefix, chunks, start, tokens, -1, len(payload), "", replies)
            index.records.append(record)
            index.tokens = kept + list(tokens)
            index.replies = sf.replay_replies(index.replies, prefix, chunks) + list(replies)
            index.size += len(payload) + 600 + 8 * (len(tokens) + sum(len(r[1]) for r in replies))
            self._index[job.path] = index
            self._pending[job.path] = self._pending.get(job.path, 0) + 1
            self._backlog += len(payload)
        job.done.append((start, end))
        self._start_writer()
        self._queue.put((job, (prefix, chunks, start, tokens, replies), payload))

    def finish(self, job: SaveJob) -> None:
        """After the last record of a job: supersede old files and keep the cap."""
        self._queue.put((job, None, b""))

    @property
    def backlog(self) -> int:
        with self._lock:
            return self._backlog

    @property
    def busy(self) -> bool:
        """Records are queued or being written."""
        with self._lock:
            return any(self._pending.values())

    def wait(self) -> None:
        """Until everything queued is on disk."""
        self._queue.join()

    def _start_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(
                target=self._write_loop, name="parlor-session-writer", daemon=True
            )
            self._writer.start()

    def _write_loop(self) -> None:
        while True:
            job, record, payload = self._queue.get()
            try:
                if record is None:
                    self._finished(job)
                else:
                    self._append(job, record, payload)
            finally:
                self._queue.task_done()

    def _append(self, job: SaveJob, record: _Pending, payload: bytes | bytearray) -> None:
        try:
            if job.path not in self._failed:
                t0 = time.perf_counter()
                prefix, chunks, start, tokens, replies = record
                head = sf.encode(
                    self.identity, prefix, chunks, start, list(tokens), payload, replies
                )
                self.folder.mkdir(parents=True, exist_ok=True)
                n = self.write_record(job.path, head, payload)
                with self._lock:
                    self._writes.append((n, time.perf_counter() - t0))
        except OSError as exc:  # a full disk must not break the chat; the file is a hint
            self.last_error = f"Could not save the session: {exc}"
            self.note(self.last_error)
            self._failed.add(job.path)
        finally:
            with self._lock:
                self._pending[job.path] -= 1
                self._backlog -= len(payload)
                if not self._pending[job.path]:
                    # read again from the disk: real offsets, and only what reached it
                    self._index.pop(job.path, None)
                    self._failed.discard(job.path)

    def _finished(self, job: SaveJob) -> None:
        mine = self._indexed(job.path) if job.path.exists() else None
        if mine is None:  # the writes failed
            return
        clear_notice(self.folder)
        if job.replaces is not None:  # even when the copy was cut short: it is the chat now
            job.replaces.unlink(missing_ok=True)
            with self._lock:
                self._index.pop(job.replaces, None)
        for other in list(self.files()):
            if other.path != job.path and continues(other.tokens, mine.tokens):
                other.path.unlink(missing_ok=True)
                with self._lock:
                    self._index.pop(other.path, None)
        enforce_cap(self.folder, self.cap_bytes, keep=job.path)


def _job(
    path: Path, prefix: int, chunks: tuple[Chunk, ...], tokens: list[int], start: int, size: int
) -> SaveJob:
    ranges = split(start, len(tokens), size)
    return SaveJob(path, prefix, chunks, tokens, ranges, size=size + 512 * len(ranges))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def enforce_cap(folder: Path, cap_bytes: int, keep: Path | None = None) -> None:
    """Delete least recently used session files (any model) until the folder fits."""
    files = []
    for path in folder.glob(f"*{SUFFIX}"):
        try:
            st = path.stat()
        except OSError:
            continue
        files.append((st.st_mtime_ns, st.st_size, path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= cap_bytes:
            break
        if path == keep:
            continue
        path.unlink(missing_ok=True)
        total -= size


def write_notice(folder: Path, text: str) -> None:
    """What the last save could not do, where Settings → Model reads it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / NOTICE).write_text(json.dumps({"text": text, "time": time.time()}))
    except OSError:
        pass  # the log has it too


def clear_notice(folder: Path) -> None:
    (folder / NOTICE).unlink(missing_ok=True)


def read_notice(folder: str | Path) -> str:
    """The folder's notice ("" when the last save went through)."""
    try:
        return str(json.loads((Path(folder) / NOTICE).read_text())["text"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
