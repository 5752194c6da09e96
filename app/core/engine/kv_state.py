"""A range of llama.cpp's KV cache, copied out and loaded back, for saved sessions.

llama.cpp serializes the cache only by sequence (`llama_state_seq_get_data` copies every
cell of one sequence). To copy a range of positions, the range is also tagged with a
second, scratch sequence (`llama_memory_seq_cp`, which in a unified cache only marks the
cells) and that sequence is copied; the tag is removed at once. Loading goes the other way:
the record is read into the scratch sequence, whose cells then join sequence 0. So a save
copies only the tokens that are new since the last one, and the engine thread is busy for
the size of that range, not of the whole state.

This needs a context with two sequences in one unified cache (`two_sequences`): the same
memory and speed as one, and every request of the engine still uses sequence 0 only.
Checked on llama-cpp-python 0.3.36: a cache restored range by range gives bit-identical
logits to the live one, with flash attention on and off, and after context shifts replayed
between the ranges (tests/engine/test_session_records.py).
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from typing import Any

SCRATCH = 1  # the scratch sequence; the engine's own is 0


@contextlib.contextmanager
def two_sequences() -> Iterator[None]:
    """Make the `Llama` built inside this block have a scratch sequence.

    `Llama` fills its context parameters inside `__init__`; the context wrapper it builds
    them into is swapped for this one load, as child.py does for the progress callback."""
    from llama_cpp import _internals

    original = _internals.LlamaContext

    class TwoSequenceContext(original):  # type: ignore[misc, valid-type]
        def __init__(self, *, model: Any, params: Any, verbose: bool = True) -> None:
            params.n_seq_max = max(params.n_seq_max, SCRATCH + 1)
            params.kv_unified = True  # one stream: the whole context stays sequence 0's
            super().__init__(model=model, params=params, verbose=verbose)

    _internals.LlamaContext = TwoSequenceContext  # type: ignore[misc]
    try:
        yield
    finally:
        _internals.LlamaContext = original  # type: ignore[misc]


def has_ranges(llm: Any) -> bool:
    import llama_cpp

    return int(llama_cpp.llama_n_seq_max(llm._ctx.ctx)) > SCRATCH


def range_size(llm: Any, start: int, end: int) -> int:
    """Bytes `copy_range(llm, start, end)` will return (llama.cpp counts, copies nothing)."""
    import llama_cpp

    mem = llama_cpp.llama_get_memory(llm._ctx.ctx)
    llama_cpp.llama_memory_seq_cp(mem, 0, SCRATCH, start, end)
    try:
        return int(llama_cpp.llama_state_seq_get_size(llm._ctx.ctx, SCRATCH))
    finally:
        llama_cpp.llama_memory_seq_rm(mem, SCRATCH, -1, -1)


def copy_range(llm: Any, start: int, end: int) -> bytearray:
    """The sequence state of cache positions [start, end)."""
    import llama_cpp

    ctx = llm._ctx.ctx
    mem = llama_cpp.llama_get_memory(ctx)
    llama_cpp.llama_memory_seq_cp(mem, 0, SCRATCH, start, end)
    try:
        size = int(llama_cpp.llama_state_seq_get_size(ctx, SCRATCH))
        buf = bytearray(size)
        view = (ctypes.c_uint8 * size).from_buffer(buf)
        n = int(llama_cpp.llama_state_seq_get_data(ctx, view, size, SCRATCH))
        del view  # a buffer exported to ctypes cannot be resized
    finally:
        llama_cpp.llama_memory_seq_rm(mem, SCRATCH, -1, -1)
    del buf[n:]
    return buf


def load_range(llm: Any, payload: bytes, start: int, tokens: tuple[int, ...]) -> None:
    """Add a range copied by `copy_range` after the first `start` tokens of the cache.

    RuntimeError when llama.cpp refuses it (no room in one piece, another layout); then
    the cache holds what it held before."""
    import llama_cpp

    ctx = llm._ctx.ctx
    mem = llama_cpp.llama_get_memory(ctx)
    buf = (ctypes.c_uint8 * len(payload)).from_buffer_copy(payload)
    if llama_cpp.llama_state_seq_set_data(ctx, buf, len(payload), SCRATCH) != len(payload):
        llama_cpp.llama_memory_seq_rm(mem, SCRATCH, -1, -1)
        raise RuntimeError("llama.cpp refused a saved range of the cache")
    first = llama_cpp.llama_memory_seq_pos_min(mem, SCRATCH)
    last = llama_cpp.llama_memory_seq_pos_max(mem, SCRATCH)
    if (first, last) != (start, start + len(tokens) - 1):
        llama_cpp.llama_memory_seq_rm(mem, SCRATCH, -1, -1)
        raise RuntimeError(f"a saved range holds positions {first}-{last}, not from {start}")
    llama_cpp.llama_memory_seq_cp(mem, SCRATCH, 0, -1, -1)
    llama_cpp.llama_memory_seq_rm(mem, SCRATCH, -1, -1)
    llm.input_ids[start : start + len(tokens)] = tokens
    llm.n_tokens = start + len(tokens)
    llm._requires_eval = True  # no logits come with a range


def clear(llm: Any) -> None:
    import llama_cpp

    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm._ctx.ctx), True)
    llm.n_tokens = 0
