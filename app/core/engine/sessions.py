"""Saved KV sessions: llama.cpp's state, kept on disk so a reopened chat is not read again.

Reopening a long chat after a restart would otherwise re-read the whole history. The engine
child writes the KV state with the token ids it holds, at moments that cost the chat
nothing: when it has been idle a while, and when the model is unloaded or the app quits;
never after every reply. The first request on a freshly loaded model restores the file
that covers most of the new prompt (its prefix, and after that what a context shift can
move), and llama.cpp evaluates only the rest.

A save is skipped when the files on disk already cover all but a small part of what the
cache holds: a state is only rewritten once the chat has grown by a good part of it (so an
ordinary reply writes nothing), and a file that would be larger than the folder's cap is
not written at all. The state is stored as it is: zlib at its fastest saved 14% of the
bytes of an f16 cache at 25 MB/s of one core, while the disk wrote 81 MB/s, so compressing
cost more time than the write it saved (measured here, see docs/benchmarks.md).

A file is only ever a hint. It is used when its header names the same model file (path,
size, modification time), context size, KV type, flash attention and llama-cpp-python
version, its header checksum and payload SHA-256 match, and its tokens cover a long enough
part of the prompt; anything else is rejected with a note for the log (and a damaged file
deleted). Layout:

    MAGIC | u32 header length | header JSON | u32 CRC-32 of the header | state bytes

Files live in one folder under a size cap; the least recently used go first. A file whose
tokens a newer one of the same chat mostly holds (the chat some turns earlier, also past a
context shift) is deleted when the newer one is written, so a chat keeps about one file
per branch.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from app.core.engine.kv_shift import plan_reuse

MAGIC = b"PARLORKV\x02"  # \x01 files were zlib-compressed; they are rejected as foreign
SUFFIX = ".kvsession"
MIN_SAVE_TOKENS = 128  # shorter prompts re-evaluate faster than a file round trip
MIN_GAIN_TOKENS = 64  # restore only when the file saves at least this many tokens
# A new file is written only when the files on disk leave more than this part of the cache
# uncovered (at unload and exit: more than MIN_GAIN_TOKENS), so a save rewrites the state
# about once every REWRITE_FRACTION of growth, not once a reply.
REWRITE_FRACTION = 0.25


class SessionError(Exception):
    """A session file is unusable; the text names the file and why."""


@dataclass
class Header:
    identity: dict
    tokens: list[int]
    payload_len: int
    payload_sha256: str


def model_identity(
    model_path: str, n_ctx: int, kv_type: str, flash_attn: bool, version: str
) -> dict:
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
    }


def covered(saved: list[int], tokens: list[int], shift: bool = True) -> int:
    """Tokens of `tokens` a cache holding `saved` provides: the common prefix, and with
    `shift` the runs a context shift can move down."""
    return plan_reuse(saved, tokens + [-1], shift_off="" if shift else "off").reused


def _header_bytes(identity: dict, tokens: list[int], state: bytes) -> bytes:
    return json.dumps(
        {
            "identity": identity,
            "tokens": tokens,
            "payload_len": len(state),
            "payload_sha256": hashlib.sha256(state).hexdigest(),
        }
    ).encode()


def write_file(path: Path, identity: dict, tokens: list[int], state: bytes) -> int:
    """Write atomically (a reader sees the old file, the new one, or nothing); the size."""
    header = _header_bytes(identity, tokens, state)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<I", len(header)) + header)
        f.write(struct.pack("<I", zlib.crc32(header)))
        f.write(state)
    os.replace(tmp, path)
    return len(MAGIC) + 8 + len(header) + len(state)


def read_header(path: Path) -> tuple[Header, int]:
    """The header and the payload's offset; SessionError if the file is not one of ours."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + 4)
            if len(head) < len(MAGIC) + 4 or not head.startswith(MAGIC):
                raise SessionError(f"{path.name}: not a Parlor session file of this version")
            (size,) = struct.unpack("<I", head[len(MAGIC) :])
            raw = f.read(size)
            crc = f.read(4)
        if len(raw) != size or len(crc) != 4 or struct.unpack("<I", crc)[0] != zlib.crc32(raw):
            raise SessionError(f"{path.name}: the header is truncated or damaged")
        data = json.loads(raw)
        header = Header(
            data["identity"],
            [int(t) for t in data["tokens"]],
            int(data["payload_len"]),
            str(data["payload_sha256"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SessionError(f"{path.name}: unreadable ({exc})") from exc
    return header, len(MAGIC) + 4 + size + 4


def read_state(path: Path) -> tuple[Header, bytes]:
    """The verified header and the state; SessionError on any mismatch."""
    header, offset = read_header(path)
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            payload = f.read(header.payload_len + 1)
    except OSError as exc:
        raise SessionError(f"{path.name}: unreadable ({exc})") from exc
    if len(payload) != header.payload_len:
        raise SessionError(f"{path.name}: truncated ({len(payload)} of {header.payload_len} bytes)")
    if hashlib.sha256(payload).hexdigest() != header.payload_sha256:
        raise SessionError(f"{path.name}: checksum mismatch")
    return header, payload


class SessionStore:
    """The session folder for one loaded model. Writes run on a background thread.

    `notes` collects what the log should say (files rejected, saves skipped or failed);
    the engine child hands them to the parent with the next reply.
    """

    def __init__(self, folder: str | Path, identity: dict, cap_bytes: int) -> None:
        self.folder = Path(folder)
        self.identity = identity
        self.cap_bytes = cap_bytes
        self.prefix = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()
        self.notes: list[str] = []
        self._writes: list[tuple[int, float]] = []  # (bytes, seconds) since take_writes
        self.last_error = ""
        self.last_write_bytes = 0

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

    def _mine(self) -> list[Path]:
        return sorted(self.folder.glob(f"{self.prefix}-*{SUFFIX}"))

    def _headers(self):
        """Headers of this model's files; damaged files are deleted, with a note."""
        for path in self._mine():
            try:
                header, _ = read_header(path)
            except SessionError as exc:
                self.note(f"Removed a damaged saved session: {exc}")
                path.unlink(missing_ok=True)
                continue
            if header.identity == self.identity:
                yield path, header

    def best_match(
        self, tokens: list[int], at_least: int, shift: bool = True
    ) -> tuple[Path, int] | None:
        """The file covering most of `tokens`, if more than `at_least` of them.

        Never waits for a write in progress: the file being written is the cache's own
        content, not needed to answer the request at hand."""
        best = None
        for path, header in self._headers():
            n = covered(header.tokens, tokens, shift)
            if n > at_least and (best is None or n > best[1]):
                best = (path, n)
        return best

    def load(self, path: Path) -> tuple[list[int], bytes]:
        """Tokens and state of a file best_match chose; a bad file is deleted, then raised."""
        try:
            header, state = read_state(path)
            if header.identity != self.identity:
                raise SessionError(f"{path.name}: made for another model or setting")
        except SessionError as exc:
            self.note(f"Rejected a saved session: {exc}")
            path.unlink(missing_ok=True)
            raise
        os.utime(path)  # least recently *used*: reading counts
        return header.tokens, state

    def needs_save(self, tokens: list[int], final: bool = False, shift: bool = True) -> bool:
        """Whether the files on disk leave enough of `tokens` uncovered to write again."""
        if len(tokens) < MIN_SAVE_TOKENS or self.busy:
            return False
        best = max((covered(h.tokens, tokens, shift) for _, h in self._headers()), default=0)
        missing = len(tokens) - best
        return missing > (MIN_GAIN_TOKENS if final else REWRITE_FRACTION * len(tokens))

    @property
    def busy(self) -> bool:
        return self._writer is not None and self._writer.is_alive()

    def save(self, tokens: list[int], state: bytes | memoryview) -> bool:
        """Write on a thread; False (nothing started) while another write is running."""
        if self.busy:
            return False
        self._writer = threading.Thread(
            target=self._save, args=(list(tokens), state), name="parlor-session-writer", daemon=True
        )
        self._writer.start()
        return True

    def wait(self) -> None:
        if self._writer is not None:
            self._writer.join()
            self._writer = None

    def _save(self, tokens: list[int], state: bytes) -> None:
        size = len(MAGIC) + 8 + len(_header_bytes(self.identity, tokens, b"")) + len(state)
        if size > self.cap_bytes:
            self.note(
                f"Not saved: the session of {len(tokens)} tokens would take "
                f"{size / 2**20:.0f} MB, more than the {self.cap_bytes / 2**20:.0f} MB "
                "cap for saved sessions (Settings → Model)."
            )
            return
        try:
            t0 = time.perf_counter()
            self.folder.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256(struct.pack(f"<{len(tokens)}i", *tokens)).hexdigest()[:16]
            path = self.folder / f"{self.prefix}-{digest}{SUFFIX}"
            self.last_write_bytes = write_file(path, self.identity, tokens, state)
            with self._lock:
                self._writes.append((self.last_write_bytes, time.perf_counter() - t0))
            for old, header in list(self._headers()):
                if old != path and _superseded(header.tokens, tokens):
                    old.unlink(missing_ok=True)
            enforce_cap(self.folder, self.cap_bytes)
        except OSError as exc:  # a full disk must not break the chat; the file is a hint
            self.last_error = f"Could not save the session: {exc}"
            self.note(self.last_error)


def _superseded(old: list[int], new: list[int]) -> bool:
    """The same chat earlier: the new file holds all but a fifth of the old one's tokens.

    Not only an exact prefix: the app re-tokenizes a reply from its text (and templates
    trim it), and past the context limit old messages leave the front, so the new file
    holds the old one's tokens partly moved. What is lost is at most a fifth of the old
    file, re-read if the user goes back to that branch.
    """
    return covered(old, new) >= 0.8 * len(old)


def enforce_cap(folder: Path, cap_bytes: int) -> None:
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
        path.unlink(missing_ok=True)
        total -= size
