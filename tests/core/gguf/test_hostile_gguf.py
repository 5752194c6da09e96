"""Issue 21, points 6 and 7: GGUF metadata of the wrong type is a clear error naming the key,
and what the header becomes in Python is bounded whatever the file claims."""

from __future__ import annotations

import argparse
import re
import struct
import time
from pathlib import Path

import gguf
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.commands import convert as convert_command
from app.core.gguf.header import (
    MAX_HEADER_BYTES,
    MAX_METADATA_ITEMS,
    MAX_METADATA_STRINGS,
    GGUFError,
    read_header,
    validate_gguf,
)
from tests.hostile import Bounded


def _gguf(path: Path, **metadata) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama")
    for key, value in metadata.items():
        key = key.replace("__", ".")
        if isinstance(value, str):
            writer.add_string(key, value)
        elif isinstance(value, list):
            writer.add_array(key, value)
        else:
            writer.add_uint32(key, value)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


CASES = [
    ({"llama__context_length": "abc"}, "llama.context_length must be a whole number"),
    (
        {"llama__block_count": [1, 2, 3]},
        "llama.block_count must be a whole number from 0 to 65,536, but it is a list of 3",
    ),
    (
        {"llama__block_count": 2**32 - 1},
        "llama.block_count must be a whole number from 0 to "
        "65,536, but it is a whole number (4294967295)",
    ),
    ({"general__file_type": "Q4_K_M"}, "general.file_type must be a whole number"),
    ({"tokenizer__chat_template": [1, 2]}, "tokenizer.chat_template must be text"),
    ({"llama__attention__head_count": ["a"]}, "llama.attention.head_count must be a whole"),
]


@pytest.mark.parametrize("metadata, says", CASES)
def test_wrong_typed_metadata_is_an_error_naming_the_key(tmp_path, metadata, says):
    path = _gguf(tmp_path / "bad.gguf", **metadata)
    with pytest.raises(GGUFError, match=re.escape(says)):
        validate_gguf(path)


def test_per_layer_arrays_stay_allowed(tmp_path):
    path = _gguf(
        tmp_path / "ok.gguf",
        llama__block_count=2,
        llama__attention__head_count=[4, 4],
        llama__feed_forward_length=[8, 8],
    )
    assert validate_gguf(path).n_layer == 2


def test_parlor_convert_says_what_is_wrong_without_a_traceback(tmp_path, capsys):
    path = _gguf(tmp_path / "bad.gguf", llama__context_length="abc")
    parser = argparse.ArgumentParser(prog="parlor")
    convert_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["convert", str(path)])
    assert args.handler(args) == 1
    err = capsys.readouterr().err
    assert "llama.context_length must be a whole number" in err and "Traceback" not in err


def _sparse_gguf(path: Path, key: str, item_type: int | None, count: int, size: int) -> Path:
    """A GGUF whose one metadata value claims `count` items (or bytes, for a string),
    padded with a hole to `size` bytes so the claim fits the file."""
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, 1)
    body += struct.pack("<Q", len(key)) + key.encode()
    if item_type is None:
        body += struct.pack("<IQ", 8, count)  # a string of `count` bytes
    else:
        body += struct.pack("<IIQ", 9, item_type, count)  # an array
    with open(path, "wb") as f:
        f.write(body)
        f.truncate(size)
    return path


def _read(path: str) -> str:
    try:
        read_header(path)
    except GGUFError as exc:
        return str(exc)
    return "read"


@pytest.mark.parametrize(
    "key, item_type, count",
    [
        ("tokenizer.ggml.token_type", 0, 1_900_000_000),  # uint8 items: 30 GB as Python ints
        ("tokenizer.ggml.tokens", 8, 200_000_000),  # strings of zero bytes, 8 bytes each
        ("general.name", None, MAX_HEADER_BYTES + 1),  # one string past the header cap
    ],
)
def test_a_sparse_file_claiming_huge_metadata_is_refused_before_allocating(
    tmp_path, key, item_type, count
):
    """2 GB on paper, nothing on disk; read in a child with 300 MB to spare and 20 s."""
    path = _sparse_gguf(tmp_path / "sparse.gguf", key, item_type, count, 2 << 30)
    child = Bounded(extra_mb=300)
    try:
        message = child(_read, str(path), seconds=20)
    finally:
        child.close()
    assert "damaged or hostile" in message, message
    assert any(
        limit in message
        for limit in (
            f"{MAX_METADATA_ITEMS:,}",
            f"{MAX_METADATA_STRINGS:,}",
            f"{MAX_HEADER_BYTES >> 20} MB",
        )
    )


def test_the_largest_header_allowed_reads_in_about_a_second(tmp_path):
    """The header is read on the GUI thread when a model is opened: the budget is also a
    bound on that wait (a real vocabulary is about 400 K strings)."""
    count = MAX_METADATA_STRINGS
    key = "tokenizer.ggml.tokens"
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key.encode()
    body += struct.pack("<IIQ", 9, 8, count)
    body += (struct.pack("<Q", 1) + b"x") * count
    path = tmp_path / "vocab.gguf"
    path.write_bytes(body)
    start = time.monotonic()
    header = read_header(path)
    assert len(header.metadata[key]) == count and time.monotonic() - start < 3


_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(),
    st.text(max_size=5),
    st.lists(st.integers(min_value=-5, max_value=2**32), max_size=4),
    st.lists(st.text(max_size=3), max_size=3),
)
_KEYS = [
    "llama.context_length",
    "llama.block_count",
    "llama.embedding_length",
    "llama.feed_forward_length",
    "llama.expert_count",
    "llama.expert_used_count",
    "llama.attention.head_count",
    "llama.attention.head_count_kv",
    "llama.attention.key_length",
    "llama.attention.value_length",
    "general.file_type",
    "llama.rope.dimension_count",
    "tokenizer.ggml.tokens",
    "llama.vocab_size",
]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUE, max_size=6))
def test_metadata_that_passes_the_check_never_breaks_what_open_shows(values):
    """Whatever a file's metadata holds: refused by the check with a message, or the
    summary Open shows (layers, context, experts, quant, memory) is computed, and
    failing that with only the errors the window catches."""
    from app.core.gguf.header import GGUFHeader, TensorInfo
    from app.core.gguf.memory import estimate_memory
    from app.core.gguf.metadata_types import metadata_problem

    metadata = {"general.architecture": "llama", **values}
    if metadata_problem(metadata) is not None:
        return
    tensors = [TensorInfo("blk.0.attn_q.weight", (16, 16), 0, 0, 1024)]
    header = GGUFHeader("x.gguf", 3, "<", metadata, {}, tensors, 32, 64, (0, 0), 2048)
    shown = (
        header.n_layer,
        header.context_length,
        header.expert_count,
        header.expert_used_count,
        header.file_type,
        header.vocab_size,
    )
    assert all(v is None or isinstance(v, (int, str)) for v in shown)
    try:
        estimate_memory(header, 4096, kv_type="f16")
    except (GGUFError, KeyError, ValueError, ZeroDivisionError):
        pass


def test_a_header_claiming_a_million_tensors_is_refused_at_once(tmp_path):
    """Reading a million tensor records took 10 s (on the GUI thread when opening)."""
    path = tmp_path / "many.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1_000_000, 0) + b"\0" * 64)
    start = time.monotonic()
    with pytest.raises(GGUFError, match="implausible header"):
        read_header(path)
    assert time.monotonic() - start < 1
