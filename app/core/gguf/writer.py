"""Write a GGUF header whose metadata is copied byte for byte from another file.

The converter keeps every metadata key exactly as it was (types, order, float bits), so it copies
the raw metadata section instead of re-encoding values; only the tensor table is new.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from app.core.gguf.header import GGUF_MAGIC, GGUFHeader


@dataclass(frozen=True)
class OutTensor:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    nbytes: int


def align(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def layout_offsets(tensors: Sequence[OutTensor], alignment: int) -> list[int]:
    """Each tensor's data offset relative to the data section, each one aligned."""
    offsets, pos = [], 0
    for t in tensors:
        offsets.append(pos)
        pos = align(pos + t.nbytes, alignment)
    return offsets


def encode_header(src: GGUFHeader, raw_kv: bytes, tensors: Sequence[OutTensor]) -> bytes:
    """Magic, counts, the source's metadata verbatim, the new tensor table, padding."""
    bo = src.byteorder
    parts = [
        GGUF_MAGIC,
        struct.pack(bo + "IQQ", src.version, len(tensors), len(src.metadata)),
        raw_kv,
    ]
    for t, off in zip(tensors, layout_offsets(tensors, src.alignment), strict=True):
        name = t.name.encode("utf-8")
        parts.append(struct.pack(bo + "Q", len(name)) + name)
        parts.append(struct.pack(f"{bo}I{len(t.shape)}Q", len(t.shape), *t.shape))
        parts.append(struct.pack(bo + "IQ", t.ggml_type, off))
    head = b"".join(parts)
    return head + b"\0" * (align(len(head), src.alignment) - len(head))
