"""How big a piece of the cache a save copies at a time (session_io.Pace): a request that
comes in waits for one piece, so a piece must stay short when the machine slows down.

On numbers alone: bytes per token and the speed each piece was copied at."""

from __future__ import annotations

from app.core.engine import sessions
from app.core.engine.session_io import FIRST_RATE, TARGET_COPY_MS, Pace

PER_TOKEN = 8192  # the benchmark model's f16 state
SLOWEST = 90 * 2**20 / 1000  # bytes per ms: the slowest copy seen here, under load


def _bytes(pace: Pace) -> int:
    return pace.tokens() * PER_TOKEN


def test_the_first_piece_is_the_target_time_at_a_modest_speed():
    assert _bytes(Pace(PER_TOKEN)) == int(TARGET_COPY_MS * FIRST_RATE) // PER_TOKEN * PER_TOKEN


def test_fast_copies_grow_the_pieces_step_by_step_up_to_the_cap():
    pace, sizes = Pace(PER_TOKEN), []
    for _ in range(8):
        n = _bytes(pace)
        sizes.append(n)
        pace.copied(n, n / (1100 * 2**20 / 1000))  # a quiet machine: 1.1 GB/s
    assert all(b <= 2 * a for a, b in zip(sizes, sizes[1:], strict=False))
    assert sizes[-1] == sessions.CHUNK_BYTES


def test_a_slow_piece_makes_the_next_one_small_at_once():
    pace = Pace(PER_TOKEN)
    for _ in range(8):
        pace.copied(_bytes(pace), _bytes(pace) / (1100 * 2**20 / 1000))
    pace.copied(_bytes(pace), _bytes(pace) / SLOWEST)  # the load jumped during this one
    assert _bytes(pace) / SLOWEST <= TARGET_COPY_MS + 1


def test_a_piece_at_the_cap_copied_at_the_slowest_speed_seen_stays_under_50_ms():
    """The load can jump between two pieces: only the cap bounds the piece then (16 MiB
    pieces took up to 62 ms in the benchmark)."""
    assert sessions.CHUNK_BYTES / SLOWEST < 50


def test_a_model_with_a_large_state_per_token_still_gets_pieces_under_the_cap():
    big = 320 * 1024  # a 70B model's f16 cache: 320 KB a token
    pace = Pace(big)
    for _ in range(8):
        pace.copied(pace.tokens() * big, 0.5)  # absurdly fast
    assert 1 <= pace.tokens() and pace.tokens() * big <= sessions.CHUNK_BYTES
