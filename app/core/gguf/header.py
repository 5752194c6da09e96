"""Read a GGUF header without touching the tensor data.

Pure Python (struct) so it is fast, maps nothing and works on the first bytes of a file fetched
with an HTTP Range request: when those bytes end inside the header, `HeaderIncomplete` says how
many are needed at least, and the caller fetches more. `validate_gguf` is what the app runs
before llama.cpp ever sees a file, because llama.cpp aborts or fails with a bare "Failed to
load model" on a truncated or damaged one.
"""

from __future__ import annotations

import io
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from app.core.gguf.ggml_types import FILE_TYPES, block_info, type_name
from app.core.gguf.memory import estimate_memory
from app.core.gguf.metadata_types import metadata_problem

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# Real files have a few thousand tensors (an old split-expert 8x22B about 2,000) and tens of
# keys; a million tensors took 10 s to read, on the GUI thread when a model is opened.
MAX_TENSORS = 100_000
MAX_KV = 100_000
MAX_DIMS = 4
MAX_ITEM_BYTES = 1 << 32  # no metadata string or array is anywhere near 4 GB
# Budgets for what the header becomes in Python, whatever the file's size: the largest real
# vocabularies (260 K tokens with scores, types and merges) are about a million items and
# tens of MB. A sparse file claiming a 1.9e9-item array would need 30 GB of Python objects.
MAX_METADATA_ITEMS = 4_000_000
MAX_METADATA_STRINGS = 1_000_000  # 0.6 s to read here; the largest real vocabularies
# (tokens and merges) are about 400 K strings
MAX_HEADER_BYTES = 512 << 20

# GGUF metadata value types
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL = range(8)
T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = range(8, 13)
_SCALARS = {
    T_UINT8: "B",
    T_INT8: "b",
    T_UINT16: "H",
    T_INT16: "h",
    T_UINT32: "I",
    T_INT32: "i",
    T_FLOAT32: "f",
    T_BOOL: "?",
    T_UINT64: "Q",
    T_INT64: "q",
    T_FLOAT64: "d",
}

LEGACY_EXPERT = re.compile(r"^blk\.(\d+)\.ffn_(gate|up|down)\.(\d+)\.weight$")
MERGED_EXPERTS = re.compile(r"^blk\.(\d+)\.ffn_(gate|up|down|gate_up)_exps\.weight$")


class GGUFError(Exception):
    """A file that is not a usable GGUF; the message names the file and what is wrong."""


class HeaderIncomplete(GGUFError):
    """The bytes ended inside the header; `needed_bytes` is a lower bound of what it needs."""

    def __init__(self, name: str, needed_bytes: int, have: int):
        super().__init__(
            f"{name}: the data ends inside the GGUF header at byte {have}; "
            f"at least {needed_bytes} bytes are needed (truncated file?)"
        )
        self.needed_bytes = needed_bytes
        self.have = have


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # ggml order: shape[0] is the row length, the fastest-varying
    ggml_type: int
    offset: int  # relative to GGUFHeader.data_offset
    nbytes: int

    @property
    def type_name(self) -> str:
        return type_name(self.ggml_type)

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class GGUFHeader:
    name: str
    version: int
    byteorder: str  # "<" or ">"
    metadata: dict[str, Any]
    metadata_types: dict[str, tuple[int, int | None]]  # key -> (value type, array item type)
    tensors: list[TensorInfo]
    alignment: int
    data_offset: int
    kv_span: tuple[int, int]  # byte range of the raw metadata section, for verbatim copying
    file_size: int | None = None

    def arch_value(self, suffix: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{suffix}", default)

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    @property
    def n_layer(self) -> int:
        return int(self.arch_value("block_count", 0) or 0)

    @property
    def context_length(self) -> int:
        return int(self.arch_value("context_length", 0) or 0)

    @property
    def expert_count(self) -> int:
        return int(self.arch_value("expert_count", 0) or 0)

    @property
    def expert_used_count(self) -> int:
        return int(self.arch_value("expert_used_count", 0) or 0)

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template")

    @property
    def file_type(self) -> str | None:
        ft = self.metadata.get("general.file_type")
        if ft is None:
            return None
        return FILE_TYPES.get(int(ft), f"file_type {ft}")

    @property
    def vocab_size(self) -> int:
        tokens = self.metadata.get("tokenizer.ggml.tokens")
        return len(tokens) if tokens is not None else int(self.arch_value("vocab_size", 0) or 0)

    @property
    def tensor_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def tensor(self, name: str) -> TensorInfo | None:
        for t in self.tensors:
            if t.name == name:
                return t
        return None


class _Reader:
    """A growing buffer over a file-like object; reads ahead in large chunks."""

    def __init__(self, fileobj: BinaryIO, name: str, size_limit: int | None):
        self.f, self.name, self.limit = fileobj, name, size_limit
        self.buf = bytearray()
        self.eof = False
        self.pos = 0
        self.items = 0  # array items read so far, against MAX_METADATA_ITEMS
        self.strings = 0  # of which strings, against MAX_METADATA_STRINGS
        self.set_byteorder("<")

    def set_byteorder(self, bo: str) -> None:
        self.bo = bo
        self._u32, self._u64 = struct.Struct(bo + "I"), struct.Struct(bo + "Q")

    def need(self, n: int) -> None:
        end = self.pos + n
        if end <= len(self.buf):
            return
        if self.limit is not None and end > self.limit:
            raise HeaderIncomplete(self.name, end, self.limit)
        if end > MAX_HEADER_BYTES:
            raise GGUFError(
                f"{self.name}: the header is larger than {MAX_HEADER_BYTES >> 20} MB "
                "(no model's is): the file is damaged or hostile"
            )
        while len(self.buf) < end:
            if self.eof:
                raise HeaderIncomplete(self.name, end, len(self.buf))
            data = self.f.read(max(end - len(self.buf), 1 << 20, len(self.buf)))
            if not data:
                self.eof = True
            self.buf += data

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        s = struct.Struct(self.bo + fmt)
        self.need(s.size)
        out = s.unpack_from(self.buf, self.pos)
        self.pos += s.size
        return out

    def u32(self) -> int:
        self.need(4)
        v: int = self._u32.unpack_from(self.buf, self.pos)[0]
        self.pos += 4
        return v

    def u64(self) -> int:
        self.need(8)
        v: int = self._u64.unpack_from(self.buf, self.pos)[0]
        self.pos += 8
        return v

    def string(self) -> str:
        n = self.u64()
        self.check_count(n, 1, "string")
        self.need(n)
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="surrogateescape")

    def take_items(self, count: int, what: str, strings: bool = False) -> None:
        """Count array items against the budget before any is built."""
        self.items += count
        self.strings += count if strings else 0
        if self.strings > MAX_METADATA_STRINGS:
            raise GGUFError(
                f"{self.name}: a {what} at byte {self.pos} would bring the metadata "
                f"to {self.strings:,} strings, over the limit of "
                f"{MAX_METADATA_STRINGS:,}: the file is damaged or hostile"
            )
        if self.items > MAX_METADATA_ITEMS:
            raise GGUFError(
                f"{self.name}: a {what} at byte {self.pos} would bring the metadata "
                f"to {self.items:,} items, over the limit of {MAX_METADATA_ITEMS:,}"
                ": the file is damaged or hostile"
            )

    def check_count(self, count: int, item_size: int, what: str) -> None:
        """A length that no header could need means damage; one past the end, truncation."""
        end = self.pos + count * item_size
        if count * item_size > MAX_ITEM_BYTES:
            raise GGUFError(
                f"{self.name}: a {what} at byte {self.pos} claims {count} items, "
                "an implausible length: the file is damaged"
            )
        if self.limit is not None and end > self.limit:
            raise HeaderIncomplete(self.name, end, self.limit)


def _read_value(r: _Reader, vtype: int) -> Any:
    if vtype == T_STRING:
        return r.string()
    if vtype == T_ARRAY:
        return _read_array(r)
    fmt = _SCALARS.get(vtype)
    if fmt is None:
        raise GGUFError(f"{r.name}: unknown metadata value type {vtype} at byte {r.pos}")
    return r.unpack(fmt)[0]


def _read_array(r: _Reader) -> list[Any]:
    itype, count = r.u32(), r.u64()
    r.take_items(count, "metadata array", strings=itype == T_STRING)
    if itype == T_STRING:
        r.check_count(count, 8, "string array")
        return _read_strings(r, count)
    if itype == T_ARRAY:
        r.check_count(count, 12, "nested array")
        return [_read_array(r) for _ in range(count)]
    fmt = _SCALARS.get(itype)
    if fmt is None:
        raise GGUFError(f"{r.name}: unknown array item type {itype} at byte {r.pos}")
    size = struct.calcsize(fmt)
    r.check_count(count, size, "array")
    return list(r.unpack(f"{count}{fmt}")) if count else []


def _read_strings(r: _Reader, count: int) -> list[str]:
    """`r.string()` `count` times, with the bookkeeping hoisted out of the loop: a
    vocabulary is hundreds of thousands of strings, read while the user waits."""
    out: list[str] = []
    append, unpack, buf, pos = out.append, r._u64.unpack_from, r.buf, r.pos
    for _ in range(count):
        if pos + 8 > len(buf):
            r.pos = pos
            r.need(8)
        n = unpack(buf, pos)[0]
        pos += 8
        if pos + n > len(buf):
            r.pos = pos
            r.check_count(n, 1, "string")
            r.need(n)
        append(buf[pos : pos + n].decode("utf-8", errors="surrogateescape"))
        pos += n
    r.pos = pos
    return out


def _array_item_type(r: _Reader, vtype: int, start: int) -> int | None:
    if vtype != T_ARRAY:
        return None
    item_type: int = struct.unpack_from(r.bo + "I", r.buf, start)[0]
    return item_type


def _read_preamble(r: _Reader) -> tuple[int, int, int]:
    try:
        r.need(4)
    except HeaderIncomplete:
        if r.buf and not GGUF_MAGIC.startswith(bytes(r.buf)):
            raise GGUFError(f"{r.name} is not a GGUF file") from None
        raise
    if bytes(r.buf[:4]) != GGUF_MAGIC:
        raise GGUFError(f"{r.name} is not a GGUF file (it starts with {bytes(r.buf[:4])!r})")
    r.pos = 4
    version = r.u32()
    if version & 0xFFFF == 0 and version >> 16:  # written on a big-endian machine
        r.set_byteorder(">")
        version = struct.unpack(">I", bytes(r.buf[4:8]))[0]
    if version == 1:
        raise GGUFError(f"{r.name} is GGUF version 1, which llama.cpp no longer reads")
    if version not in (2, 3):
        raise GGUFError(f"{r.name} has GGUF version {version}; this app reads versions 2 and 3")
    n_tensors, n_kv = r.u64(), r.u64()
    if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
        raise GGUFError(
            f"{r.name}: implausible header ({n_tensors} tensors, {n_kv} metadata "
            "keys): the file is damaged"
        )
    return version, n_tensors, n_kv


def _read_tensor_info(r: _Reader) -> tuple[str, tuple[int, ...], int, int, int]:
    name = r.string()
    n_dims = r.u32()
    if not 1 <= n_dims <= MAX_DIMS:
        raise GGUFError(f"{r.name}: tensor {name!r} has {n_dims} dimensions")
    shape = r.unpack(f"{n_dims}Q")
    ggml_type, offset = r.u32(), r.u64()
    info = block_info(ggml_type)
    if info is None:
        raise GGUFError(
            f"{r.name}: tensor {name!r} has unknown type {ggml_type} "
            "(the file needs a newer llama.cpp)"
        )
    block, size = info
    if any(d == 0 for d in shape) or shape[0] % block:
        raise GGUFError(
            f"{r.name}: tensor {name!r} has shape {list(shape)}, which type "
            f"{type_name(ggml_type)} cannot store (rows must be whole blocks of "
            f"{block})"
        )
    n = 1
    for d in shape:
        n *= d
    return name, tuple(shape), ggml_type, offset, n // block * size


def _parse(fileobj: BinaryIO, name: str, size_limit: int | None) -> GGUFHeader:
    r = _Reader(fileobj, name, size_limit)
    version, n_tensors, n_kv = _read_preamble(r)
    kv_start = r.pos
    metadata: dict[str, Any] = {}
    types: dict[str, tuple[int, int | None]] = {}
    for _ in range(n_kv):
        key = r.string()
        vtype = r.u32()
        start = r.pos
        metadata[key] = _read_value(r, vtype)
        types[key] = (vtype, _array_item_type(r, vtype, start))
    kv_end = r.pos
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GGUFError(f"{name}: general.alignment is {alignment!r}, not a power of two")
    problem = metadata_problem(metadata)
    if problem:
        raise GGUFError(f"{name}: {problem}")
    tensors = [TensorInfo(*_read_tensor_info(r)) for _ in range(n_tensors)]
    data_offset = -(-r.pos // alignment) * alignment
    return GGUFHeader(
        name=name,
        version=version,
        byteorder=r.bo,
        metadata=metadata,
        metadata_types=types,
        tensors=tensors,
        alignment=alignment,
        data_offset=data_offset,
        kv_span=(kv_start, kv_end),
        file_size=size_limit,
    )


def read_header(
    path_or_fileobj: str | os.PathLike[str] | BinaryIO | bytes,
    *,
    name: str | None = None,
    file_size: int | None = None,
) -> GGUFHeader:
    """Parse the header of a GGUF file, a file-like object or a bytes prefix.

    `file_size`, when known (a path, or Content-Range), bounds lengths read from the header so
    that a damaged count fails at once instead of asking for terabytes.
    """
    if isinstance(path_or_fileobj, (bytes, bytearray, memoryview)):
        return _parse(io.BytesIO(bytes(path_or_fileobj)), name or "<bytes>", file_size)
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        path = Path(path_or_fileobj)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                return _parse(f, name or path.name, size if file_size is None else file_size)
        except OSError as e:
            raise GGUFError(f"{name or path.name}: cannot read it ({e.strerror or e})") from e
    label = name or str(getattr(path_or_fileobj, "name", "<stream>"))
    return _parse(path_or_fileobj, label, file_size)


def validate_gguf(path: str | os.PathLike[str]) -> GGUFHeader:
    """Check that llama.cpp can at least map the file: header, counts, every tensor's extent."""
    path = Path(path)
    try:
        header = read_header(path)
    except HeaderIncomplete as e:
        raise GGUFError(
            f"{path.name} is truncated: it ends inside the GGUF header "
            f"(byte {e.have}); the download is incomplete or the file damaged"
        ) from e
    size = header.file_size or 0
    if not header.tensors:
        raise GGUFError(f"{path.name} holds no tensors")
    seen: set[str] = set()
    for t in header.tensors:
        if t.name in seen:
            raise GGUFError(f"{path.name}: tensor {t.name!r} appears twice")
        seen.add(t.name)
        if t.offset % header.alignment:
            raise GGUFError(
                f"{path.name}: tensor {t.name!r} is not aligned to "
                f"{header.alignment} bytes (offset {t.offset})"
            )
        end = header.data_offset + t.offset + t.nbytes
        if end > size:
            raise GGUFError(
                f"{path.name} is truncated: tensor {t.name!r} ends at byte {end} "
                f"but the file has only {size} bytes; the download is incomplete "
                "or the file damaged"
            )
    return header


def moe_layout(header: GGUFHeader) -> str:
    """'legacy' (one tensor per expert, pre-April 2024), 'merged' (3-D *_exps), or 'dense'."""
    names = [t.name for t in header.tensors]
    if any(LEGACY_EXPERT.match(n) for n in names):
        return "legacy"
    if any(MERGED_EXPERTS.match(n) for n in names):
        return "merged"
    return "dense"


__all__ = [
    "GGUFError",
    "GGUFHeader",
    "HeaderIncomplete",
    "TensorInfo",
    "estimate_memory",
    "moe_layout",
    "read_header",
    "validate_gguf",
]
