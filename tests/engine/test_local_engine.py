"""The local engine through its real child process and real llama.cpp."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from app.core.engine import EngineCrashed, EngineError, LoadParams, SamplingParams
from app.core.engine.local import LocalEngine

FIXED = SamplingParams(max_tokens=24, seed=42, temperature=0.8)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from tests.tiny_models import write_tiny_llama

    path = write_tiny_llama(tmp_path_factory.mktemp("eng") / "tiny.gguf")
    eng = LocalEngine()
    eng.load(LoadParams(model_path=str(path), n_ctx=1024))
    yield eng
    eng.unload()


def test_load_reports_the_model(engine):
    assert engine.info.n_ctx == 1024
    assert engine.info.n_layer == 2
    assert engine.info.name == "Parlor tiny test model"


def test_stream_yields_text_and_stats(engine):
    pieces = list(engine.stream("Hello, traveler.", FIXED, threading.Event()))
    assert len(pieces) == FIXED.max_tokens
    assert "".join(pieces).strip()
    stats = engine.last_stats
    assert stats.tokens == FIXED.max_tokens and not stats.stopped
    assert stats.prompt_tokens > 0


def test_same_seed_same_reply(engine):
    first = "".join(engine.stream("The door opens.", FIXED, threading.Event()))
    second = "".join(engine.stream("The door opens.", FIXED, threading.Event()))
    assert first == second


def test_follow_up_turn_reuses_the_cached_prefix(engine):
    prompt = "Once upon a time in a harbour town, " * 8
    reply = "".join(engine.stream(prompt, FIXED, threading.Event()))
    first_prompt = engine.last_stats.prompt_tokens
    list(engine.stream(prompt + reply + " And then?", FIXED, threading.Event()))
    # Everything up to the end of the previous prompt is found in the KV cache (the last
    # prompt token is always evaluated again to get fresh logits).
    assert engine.last_stats.reused_tokens >= first_prompt - 1


def test_cancel_stops_within_one_piece(engine):
    cancel = threading.Event()
    got = []
    for piece in engine.stream("Tell me a story.", SamplingParams(max_tokens=500), cancel):
        got.append(piece)
        if len(got) == 3:
            cancel.set()
    assert len(got) == 3
    assert engine.last_stats.stopped
    # the engine is usable again right away
    assert len(list(engine.stream("Again.", FIXED, threading.Event()))) == FIXED.max_tokens


def test_count_tokens_uses_the_model_tokenizer(engine):
    counts = engine.count_tokens(["", "ab", "hello world"])
    assert counts[0] == 0 and 0 < counts[1] <= 3 and counts[2] > counts[1]


def test_a_prompt_longer_than_the_context_is_a_clear_error(engine):
    with pytest.raises(EngineError, match="context"):
        list(engine.stream("word " * 3000, FIXED, threading.Event()))
    assert list(engine.stream("still fine", FIXED, threading.Event()))


def test_a_killed_child_is_reported_and_the_text_so_far_kept(tiny_llama_path):
    eng = LocalEngine()
    eng.load(LoadParams(model_path=str(tiny_llama_path), n_ctx=512))
    got = []
    with pytest.raises(EngineCrashed, match="stopped unexpectedly"):
        for piece in eng.stream("Go on.", SamplingParams(max_tokens=400), threading.Event()):
            got.append(piece)
            if len(got) == 2:
                os.kill(eng._proc.pid, signal.SIGKILL)
    assert len(got) >= 2
    assert eng.info is None
    with pytest.raises(EngineError, match="No model"):
        list(eng.stream("x", FIXED, threading.Event()))


def test_a_file_llama_cpp_refuses_is_an_error_not_a_crash(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)
    eng = LocalEngine()
    with pytest.raises(EngineError):
        eng.load(LoadParams(model_path=str(bad)))
    assert eng._proc is None


def test_unload_ends_the_child_process(tiny_llama_path):
    eng = LocalEngine()
    eng.load(LoadParams(model_path=str(tiny_llama_path), n_ctx=512))
    proc = eng._proc
    eng.unload()
    assert not proc.is_alive()
