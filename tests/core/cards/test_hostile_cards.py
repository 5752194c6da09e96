"""Issue 21, point 6: a small card file must not inflate without bound, all its chunks
together (each case in a child limited in time and address space)."""

from __future__ import annotations

import base64
import json
import zlib

import pytest

from app.core.cards import CardError, card_from_bytes
from app.core.cards.png import MAX_INFLATED_TOTAL
from tests.card_fixtures import fx
from tests.hostile import Bounded

CHUNK_TEXT = 10_000_000  # each chunk inflates to 10 MB; the file stays about 1 MB


@pytest.fixture(scope="module")
def bounded():
    child = Bounded(extra_mb=400)
    yield child
    child.close()


def _many_ztxt(count: int, last_is_card: bool) -> bytes:
    bomb = zlib.compress(b"A" * CHUNK_TEXT, 9)
    chunks = [fx.chunk(b"zTXt", b"chara\0\0" + bomb) for _ in range(count)]
    if last_is_card:
        card = {"spec": "chara_card_v2", "data": {"name": "Late"}}
        chunks.append(
            fx.chunk(
                b"zTXt", b"chara\0\0" + zlib.compress(base64.b64encode(json.dumps(card).encode()))
            )
        )
    return fx.png_with([], chunks)


def _read(data: bytes) -> str:
    try:
        return "card " + card_from_bytes(data, "many.png").name
    except CardError as exc:
        return str(exc)


def test_many_compressed_chunks_share_one_budget(bounded):
    """100 chunks of 10 MB each were all inflated (1 GB) before; now at most 100 MB are."""
    data = _many_ztxt(100, last_is_card=False)
    assert len(data) < 2_000_000
    message = bounded(_read, data, seconds=30)
    assert f"inflate to more than {MAX_INFLATED_TOTAL // 1_000_000} MB" in message


def test_a_card_after_the_budget_is_spent_is_not_read(bounded):
    message = bounded(_read, _many_ztxt(12, last_is_card=True), seconds=30)
    assert message.startswith("many.png") and "was not read" in message


def test_a_card_within_the_budget_still_reads(bounded):
    assert bounded(_read, _many_ztxt(3, last_is_card=True), seconds=30) == "card Late"


def test_a_png_of_millions_of_empty_chunks_is_refused_quickly(bounded):
    """12-byte chunks fill 30 MB with 2.5 M of them; walking them all cost 8 bytes of file
    for each 100-byte Python object."""
    filler = fx.chunk(b"tEXt", b"")
    data = fx.png_with([], [filler * 2_500_000])
    message = bounded(_read, data, seconds=30)
    assert "more than 100,000 chunks" in message
