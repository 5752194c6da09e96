"""Saved KV sessions: llama.cpp's state after a reply, kept on disk for the next start.

Reopening a long chat after a restart would otherwise re-read the whole history. After each
reply the engine child writes the KV state with the token ids it holds; the first request on
a freshly loaded model restores the file whose tokens share the longest prefix with the new
prompt, and llama.cpp evaluates only the rest.

A file is only ever a hint. It is used when its header names the same model file (path,
size, modification time), context size, KV type, flash attention and llama-cpp-python
version, its header
checksum and payload SHA-256 match, and its token list shares a long enough prefix with the
prompt; anything else is ignored (and a damaged file deleted). Layout:

    MAGIC | u32 header length | header JSON | u32 CRC-32 of the header | zlib(state bytes)

Files live in one folder under a size cap; the least recently used go first. A file that
shares most of its tokens with a newer, longer one (the same chat a turn earlier) is deleted
when the newer one is written, so a chat keeps about one file per branch.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"PARLORKV\x01"
SUFFIX = ".kvsession"
LEVEL = 1  # zlib's fastest: the state is mostly f16 noise, higher levels gain little
MIN_SAVE_TOKENS = 128  # shorter prompts re-evaluate faster than a file round trip
MIN_GAIN_TOKENS = 64  # restore only when the file saves at least this many tokens


class SessionError(Exception):
    """A session file is unusable; the text names the file and why."""


@dataclass
class Header:
    identity: dict
    tokens: list[int]
    payload_len: int
    payload_sha256: str


def model_identity(model_path: str, n_ctx: int, kv_type: str, flash_attn: bool,
                   version: str) -> dict:
    """What a saved state depends on; a change to any of it makes old files useless.

    Flash attention is part of it because it changes how the V cache is laid out: llama.cpp
    refuses a state saved with the other setting (seen with llama-cpp-python 0.3.36).
    """
    st = os.stat(model_path)
    return {"model": os.path.abspath(model_path), "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "n_ctx": n_ctx, "kv_type": kv_type,
            "flash_attn": bool(flash_attn), "llama_cpp": version}


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):  # stops at the shorter one, as meant
        if x != y:
            break
        n += 1
    return n


def write_file(path: Path, identity: dict, tokens: list[int], state: bytes) -> None:
    """Write atomically: a reader sees the old file, the new one, or nothing."""
    payload = zlib.compress(state, LEVEL)
    header = json.dumps({"identity": identity, "tokens": tokens, "payload_len": len(payload),
                         "payload_sha256": hashlib.sha256(payload).hexdigest()}).encode()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<I", len(header)) + header)
        f.write(struct.pack("<I", zlib.crc32(header)) + payload)
    os.replace(tmp, path)


def read_header(path: Path) -> tuple[Header, int]:
    """The header and the payload's offset; SessionError if the file is not one of ours."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + 4)
            if len(head) < len(MAGIC) + 4 or not head.startswith(MAGIC):
                raise SessionError(f"{path.name}: not a Parlor session file")
            (size,) = struct.unpack("<I", head[len(MAGIC):])
            raw = f.read(size)
            crc = f.read(4)
        if len(raw) != size or len(crc) != 4 or struct.unpack("<I", crc)[0] != zlib.crc32(raw):
            raise SessionError(f"{path.name}: the header is truncated or damaged")
        data = json.loads(raw)
        header = Header(data["identity"], [int(t) for t in data["tokens"]],
                        int(data["payload_len"]), str(data["payload_sha256"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SessionError(f"{path.name}: unreadable ({exc})") from exc
    return header, len(MAGIC) + 4 + size + 4


def read_state(path: Path) -> tuple[Header, bytes]:
    """The verified header and the decompressed state; SessionError on any mismatch."""
    header, offset = read_header(path)
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            payload = f.read(header.payload_len + 1)
        if len(payload) != header.payload_len:
            raise SessionError(f"{path.name}: truncated ({len(payload)} of "
                               f"{header.payload_len} bytes)")
        if hashlib.sha256(payload).hexdigest() != header.payload_sha256:
            raise SessionError(f"{path.name}: checksum mismatch")
        return header, zlib.decompress(payload)
    except (OSError, zlib.error) as exc:
        raise SessionError(f"{path.name}: unreadable ({exc})") from exc


class SessionStore:
    """The session folder for one loaded model. Writes run on a background thread."""

    def __init__(self, folder: str | Path, identity: dict, cap_bytes: int) -> None:
        self.folder = Path(folder)
        self.identity = identity
        self.cap_bytes = cap_bytes
        self.prefix = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()) \
            .hexdigest()[:16]
        self._writer: threading.Thread | None = None
        self.last_error = ""

    def _mine(self) -> list[Path]:
        return sorted(self.folder.glob(f"{self.prefix}-*{SUFFIX}"))

    def _headers(self):
        """Headers of this model's files; damaged files are deleted on the way."""
        for path in self._mine():
            try:
                header, _ = read_header(path)
            except SessionError:
                path.unlink(missing_ok=True)
                continue
            if header.identity == self.identity:
                yield path, header

    def best_match(self, tokens: list[int], at_least: int) -> tuple[Path, int] | None:
        """The file sharing the longest prefix with `tokens`, if longer than `at_least`."""
        self.wait()
        best = None
        for path, header in self._headers():
            n = common_prefix(header.tokens, tokens)
            if n > at_least and (best is None or n > best[1]):
                best = (path, n)
        return best

    def load(self, path: Path) -> tuple[list[int], bytes]:
        """Tokens and state of a file best_match chose; a bad file is deleted, then raised."""
        try:
            header, state = read_state(path)
            if header.identity != self.identity:
                raise SessionError(f"{path.name}: made for another model or setting")
        except SessionError:
            path.unlink(missing_ok=True)
            raise
        os.utime(path)  # least recently *used*: reading counts
        return header.tokens, state

    def save(self, tokens: list[int], state: bytes) -> None:
        """Compress and write on a thread; the next save or load waits for this one."""
        self.wait()
        self._writer = threading.Thread(target=self._save, args=(list(tokens), state),
                                        name="parlor-session-writer", daemon=True)
        self._writer.start()

    def wait(self) -> None:
        if self._writer is not None:
            self._writer.join()
            self._writer = None

    def _save(self, tokens: list[int], state: bytes) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256(struct.pack(f"<{len(tokens)}i", *tokens)).hexdigest()[:16]
            path = self.folder / f"{self.prefix}-{digest}{SUFFIX}"
            for old, header in list(self._headers()):
                if old != path and _superseded(header.tokens, tokens):
                    old.unlink(missing_ok=True)
            write_file(path, self.identity, tokens, state)
            enforce_cap(self.folder, self.cap_bytes)
        except OSError as exc:  # a full disk must not break the chat; the file is a hint
            self.last_error = f"Could not save the session: {exc}"


def _superseded(old: list[int], new: list[int]) -> bool:
    """The same chat a turn or more earlier: the new file holds all but the old one's tail.

    Not only an exact prefix: the app re-tokenizes a reply from its text (and templates
    trim it), so the tokens a reply was generated as rarely come back identical, and every
    turn would otherwise leave a file behind. What is lost is at most a fifth of the old
    file, re-read if the user goes back to that branch.
    """
    return len(new) >= len(old) and common_prefix(old, new) >= 0.8 * len(old)


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
