"""Saving the live KV cache into the session folder and restoring it, on the engine's thread.

The folder's rules (which file, what is new, the cap) are in sessions.py and the file
format in session_file.py; this is the part that touches llama.cpp, through kv_state.py.
A save copies the new range in pieces of about TARGET_COPY_MS each and asks `waiting()`
between them: when a request has come in, the save stops there (what is queued is a whole, shorter
record of the cache) and the request starts at once; the next idle moment goes on. With the
cache go the generated ids of the replies it holds, and a restore gives them back
(reply_ids.py), so the prompt after a restart matches the restored cache all through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from app.core.engine import kv_shift, kv_state, sessions
from app.core.engine.reply_ids import Placed
from app.core.engine.session_file import FileIndex, ReplyAt, SessionError
from app.core.engine.sessions import BACKLOG_BYTES, SessionStore

# One range's copy out of llama.cpp is what a request arriving then waits for: ranges are
# sized from the speed of the copies before (memcpy speed varies tenfold with the machine's
# load: 1.1 GB/s here when quiet, 90 MB/s with other jobs running), at most CHUNK_BYTES,
# which bounds a piece when the load jumps between two of them.
TARGET_COPY_MS = 10.0
FIRST_RATE = 100 * 2**20 / 1000  # bytes per ms assumed before the first copy
GROWTH = 2.0  # a piece is at most this many times the size the last one's speed allowed


class Pace:
    """How many tokens the next piece copies: TARGET_COPY_MS at the speed of the last piece,
    at once smaller when it was slow, at most GROWTH times larger when it was fast (a
    small piece's speed is a noisy guess), never over CHUNK_BYTES."""

    def __init__(self, bytes_per_token: float) -> None:
        self.per_token = max(bytes_per_token, 1.0)
        self.rate = FIRST_RATE  # bytes per ms

    def tokens(self) -> int:
        budget = min(TARGET_COPY_MS * self.rate, sessions.CHUNK_BYTES)
        return max(int(budget / self.per_token), 1)

    def copied(self, n_bytes: int, ms: float) -> None:
        self.rate = min(n_bytes / max(ms, 0.01), GROWTH * self.rate)


def save(
    llm: Any,
    store: SessionStore,
    keep: int,
    *,
    final: bool = False,
    shift: bool = True,
    waiting: Callable[[float], bool] = lambda _timeout: False,
    replies: Sequence[Placed] = (),
) -> tuple[bool, float]:
    """Queue what the folder lacks of the live cache, with where it holds `replies`:
    (whether the folder will then hold all it should, the longest copy in ms).

    With `final` (unload, exit) nothing stops it; otherwise a request does, and so does a
    write still in progress (the next idle moment tries again)."""
    if store.busy:
        return False, 0.0
    tokens = llm.input_ids[: llm.n_tokens].tolist()
    job = store.plan(
        tokens, lambda a, b: kv_state.range_size(llm, a, b), keep, final=final, shift=shift
    )
    if job is None:
        return True, 0.0
    job.replies = tuple((r.at, r.ids) for r in replies if r.held_in(tokens))
    pos, end = job.ranges[0][0], job.ranges[-1][1]
    pace, longest = Pace(job.size / max(end - pos, 1)), 0.0
    while pos < end:
        if not final and (waiting(0.0) or _backlogged(store, waiting)):
            break
        while final and store.backlog > BACKLOG_BYTES:
            time.sleep(0.01)
        stop = min(pos + pace.tokens(), end)
        t0 = time.perf_counter()
        payload = kv_state.copy_range(llm, pos, stop)
        ms = (time.perf_counter() - t0) * 1000
        longest = max(longest, ms)
        pace.copied(len(payload), ms)
        store.put(job, pos, stop, payload)
        pos = stop
    if job.done:
        store.finish(job)
    return pos >= end, longest


def _backlogged(store: SessionStore, waiting: Callable[[float], bool]) -> bool:
    """Wait for the writer to catch up; True when a request came in meanwhile."""
    while store.backlog > BACKLOG_BYTES:
        if waiting(0.01):
            return True
    return False


def restore(llm: Any, store: SessionStore, index: FileIndex) -> tuple[list[int], list[ReplyAt]]:
    """Rebuild the cache a file holds; the tokens it holds, and where it holds replies.

    SessionError (the file is deleted) or RuntimeError (llama.cpp refused it): the cache
    is then empty."""
    kv_state.clear(llm)
    settled = store.settled(index)
    if settled is None:
        raise SessionError(f"{index.path.name}: its last write failed")
    try:
        for record in settled.records:
            if record.chunks or record.prefix != llm.n_tokens:
                plan = kv_shift.ReusePlan(record.prefix, list(record.chunks))
                kv_shift.apply_plan(llm, plan)
            if llm.n_tokens != record.start:
                raise RuntimeError("llama.cpp refused to move a saved part of the cache")
            if record.tokens:
                payload = store.payload(settled, record)
                kv_state.load_range(llm, payload, record.start, record.tokens)
    except (SessionError, RuntimeError):
        kv_state.clear(llm)
        raise
    store.used(settled)
    return list(llm.input_ids[: llm.n_tokens].tolist()), list(settled.replies)
