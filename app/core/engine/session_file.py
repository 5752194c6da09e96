"""One chat's saved KV cache on disk: a file of records, appended as the chat grows.

A record holds a range of the cache, copied out of llama.cpp as a sequence state
(kv_state.py), with the token ids it is for and the edit to make to the cache before it is
loaded: keep the first `prefix` tokens, move the runs `chunks` down (a context shift, or the
tail of a changed reply), drop the rest. Replaying the records in order rebuilds the cache
as it was when the last one was written; an ordinary reply appends only its own tokens.

    record = MAGIC | u32 header length | header JSON | u32 CRC-32 of the header | payload

The header names the model it was made with (`identity`), and the payload's length and
SHA-256. It also lists the replies whose generated ids start in its range, each as its cache
position and its ids (`replies`); the edits move or drop them as they do the tokens. The
next prompt spells a reply as the clean-up left it, and only these ids make it match the
restored cache again after a restart (reply_ids.py).

A file is only a hint: a header that does not parse ends the file there (the end of a write
cut short), a payload whose checksum fails rejects the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from app.core.engine.kv_shift import Chunk

MAGIC = b"PARLORKV\x03"  # \x01 (zlib) and \x02 (whole states) files are rejected as foreign
SUFFIX = ".kvsession"
_LEN = struct.Struct("<I")
ReplyAt = tuple[int, tuple[int, ...]]  # a reply's cache position and its generated ids


class SessionError(Exception):
    """A session file is unusable; the text names the file and why."""


@dataclass(frozen=True)
class Record:
    """Where a record's payload is, and what it does to the cache."""

    prefix: int
    chunks: tuple[Chunk, ...]
    start: int  # cache position of the payload's first token
    tokens: tuple[int, ...]
    payload_offset: int
    payload_len: int
    payload_sha256: str
    replies: tuple[ReplyAt, ...] = ()  # the replies starting in this record's range


@dataclass
class FileIndex:
    """A file's records and the tokens its replay leaves in the cache."""

    path: Path
    identity: dict[str, Any]
    records: list[Record] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    size: int = 0  # bytes of the file that are whole records
    damage: str = ""  # why the rest of the file (past `size`) is not usable
    replies: list[ReplyAt] = field(default_factory=list)  # those in `tokens`, front to back

    @property
    def payload_bytes(self) -> int:
        return sum(r.payload_len for r in self.records)

    def bytes_per_token(self) -> float:
        n = sum(len(r.tokens) for r in self.records)
        return self.payload_bytes / n if n else 0.0


def replay_tokens(tokens: list[int], prefix: int, chunks: tuple[Chunk, ...]) -> list[int]:
    """The tokens a cache holding `tokens` keeps after the edit (kv_shift.apply_plan's)."""
    kept = tokens[:prefix]
    for c in chunks:
        kept += tokens[c.src : c.src + c.length]
    return kept


def replay_replies(replies: list[ReplyAt], prefix: int, chunks: tuple[Chunk, ...]) -> list[ReplyAt]:
    """The replies whose start the edit keeps, at their new positions."""
    kept = [r for r in replies if r[0] < prefix]
    for c in chunks:
        kept += [(at - c.src + c.dst, ids) for at, ids in replies if 0 <= at - c.src < c.length]
    return kept


def encode(
    identity: dict[str, Any],
    prefix: int,
    chunks: tuple[Chunk, ...],
    start: int,
    tokens: list[int],
    payload: bytes | bytearray | memoryview,
    replies: Sequence[ReplyAt] = (),
) -> bytes:
    """A record's bytes before its payload (the payload follows as it is)."""
    header = json.dumps(
        {
            "identity": identity,
            "prefix": prefix,
            "chunks": [[c.src, c.dst, c.length] for c in chunks],
            "start": start,
            "tokens": list(tokens),
            "payload_len": len(payload),
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
            "replies": [[at, list(ids)] for at, ids in replies],
        }
    ).encode()
    return MAGIC + _LEN.pack(len(header)) + header + _LEN.pack(zlib.crc32(header))


def _parse(raw: bytes, offset: int) -> tuple[dict[str, Any], Record]:
    data = json.loads(raw)
    chunks = tuple(Chunk(int(s), int(d), int(n)) for s, d, n in data["chunks"])
    record = Record(
        int(data["prefix"]),
        chunks,
        int(data["start"]),
        tuple(int(t) for t in data["tokens"]),
        offset,
        int(data["payload_len"]),
        str(data["payload_sha256"]),
        tuple((int(at), tuple(map(int, ids))) for at, ids in data.get("replies", ())),
    )
    return data["identity"], record


def _read_record(f: BinaryIO, offset: int, file_size: int) -> tuple[dict[str, Any], Record] | str:
    """The record at `offset`, or why there is none."""
    head = f.read(len(MAGIC) + 4)
    if len(head) < len(MAGIC) + 4 or not head.startswith(MAGIC):
        return "not a Parlor session record of this version"
    (size,) = _LEN.unpack(head[len(MAGIC) :])
    raw, crc = f.read(size), f.read(4)
    if len(raw) != size or len(crc) != 4 or _LEN.unpack(crc)[0] != zlib.crc32(raw):
        return "a header is truncated or damaged"
    payload_at = offset + len(MAGIC) + 8 + size
    try:
        identity, record = _parse(raw, payload_at)
    except (ValueError, KeyError, TypeError) as exc:
        return f"a header is unreadable ({exc})"
    if payload_at + record.payload_len > file_size:
        return "the last record is cut short"
    f.seek(payload_at + record.payload_len)
    return identity, record


def scan(path: Path) -> FileIndex:
    """Read the headers (never the payloads); stop at the first record that is not whole.

    SessionError when not even the first record is usable, or when records disagree on the
    model or on where the cache ends."""
    try:
        file_size = path.stat().st_size
        with open(path, "rb") as f:
            index: FileIndex | None = None
            offset = 0
            while offset < file_size:
                got = _read_record(f, offset, file_size)
                if isinstance(got, str):
                    if index is None:
                        raise SessionError(f"{path.name}: {got}")
                    index.damage = got
                    break
                identity, record = got
                index = index or FileIndex(path, identity)
                _add(index, identity, record)
                offset = index.size = record.payload_offset + record.payload_len
    except OSError as exc:
        raise SessionError(f"{path.name}: unreadable ({exc})") from exc
    if index is None:
        raise SessionError(f"{path.name}: empty")
    return index


def _add(index: FileIndex, identity: dict[str, Any], record: Record) -> None:
    if identity != index.identity:
        raise SessionError(f"{index.path.name}: its records were made for different models")
    tokens = replay_tokens(index.tokens, record.prefix, record.chunks)
    if record.start != len(tokens) or any(c.dst > c.src for c in record.chunks):
        raise SessionError(f"{index.path.name}: a record does not continue the one before")
    index.records.append(record)
    index.tokens = tokens + list(record.tokens)
    index.replies = replay_replies(index.replies, record.prefix, record.chunks)
    index.replies += record.replies


def read_payload(path: Path, record: Record) -> bytes:
    """A record's payload, checked against its SHA-256."""
    try:
        with open(path, "rb") as f:
            f.seek(record.payload_offset)
            payload = f.read(record.payload_len)
    except OSError as exc:
        raise SessionError(f"{path.name}: unreadable ({exc})") from exc
    if len(payload) != record.payload_len:
        raise SessionError(f"{path.name}: truncated")
    if hashlib.sha256(payload).hexdigest() != record.payload_sha256:
        raise SessionError(f"{path.name}: checksum mismatch")
    return payload


def append(path: Path, head: bytes, payload: bytes | bytearray | memoryview) -> int:
    """Append one record; on failure the file is cut back to where it was, then raised."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            for part in (memoryview(head), memoryview(payload).cast("B")):
                while part:
                    part = part[os.write(fd, part) :]
        except OSError:
            os.ftruncate(fd, end)  # a half record would end the file for every reader
            raise
    finally:
        os.close(fd)
    return len(head) + len(payload)


def truncate(path: Path, size: int) -> None:
    """Cut a damaged end off (a write interrupted by a crash), keeping the whole records."""
    with open(path, "r+b") as f:
        f.truncate(size)
    os.utime(path)
