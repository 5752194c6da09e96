"""Load parameters reach llama.cpp, loading reports progress and can be cancelled, and Stop
interrupts a long prompt evaluation. Through the real child process and real llama.cpp."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from app.core.engine import EngineError, LoadParams, SamplingParams
from app.core.engine.local import LocalEngine
from app.core.engine.session_file import SUFFIX, scan
from bench.bench_model import QUICK, Shape, write_bench_model

SHORT = SamplingParams(max_tokens=4, seed=1)
# 64-wide heads, like real models; the test model's 16-wide heads cannot hold q8_0 blocks
SLOW = Shape(n_embd=512, n_head=8, n_head_kv=4, n_ff=1408, n_layer=8, n_ctx_train=8192)


@pytest.fixture(scope="module")
def quick_model(tmp_path_factory):
    return str(write_bench_model(tmp_path_factory.mktemp("bench") / "quick.gguf", QUICK))


@pytest.fixture
def engine():
    eng = LocalEngine()
    yield eng
    eng.unload()


def test_context_batch_threads_and_load_mode_are_what_llama_cpp_runs_with(engine, quick_model):
    info = engine.load(
        LoadParams(
            model_path=quick_model,
            n_ctx=768,
            n_batch=64,
            n_threads=1,
            use_mmap=False,
            n_gpu_layers=0,
        )
    )
    eff = info.effective
    assert (eff["n_ctx"], eff["n_batch"], eff["n_threads"], eff["n_threads_batch"]) == (
        768,
        64,
        1,
        1,
    )
    assert eff["load_mode"] == "none" and info.n_ctx == 768
    info = engine.load(LoadParams(model_path=quick_model, n_ctx=512, n_batch=128, n_threads=2))
    assert (info.effective["n_ctx"], info.effective["n_batch"], info.effective["n_threads"]) == (
        512,
        128,
        2,
    )
    assert info.effective["load_mode"] == "mmap" and info.warnings == []


def test_context_zero_means_the_training_context(engine, quick_model):
    assert engine.load(LoadParams(model_path=quick_model, n_ctx=0)).n_ctx == QUICK.n_ctx_train


def test_a_context_beyond_training_is_allowed_with_a_warning(engine, quick_model):
    info = engine.load(LoadParams(model_path=quick_model, n_ctx=QUICK.n_ctx_train * 2))
    assert info.n_ctx == QUICK.n_ctx_train * 2
    assert len(info.warnings) == 1 and str(QUICK.n_ctx_train) in info.warnings[0]
    assert list(engine.stream("Hello there.", SHORT, threading.Event()))


def _state_size(engine, model: str, kv_type: str, folder) -> int:
    """Bytes of llama.cpp's state after one prompt: dominated by the KV cache."""
    engine.load(
        LoadParams(model_path=model, n_ctx=1024, kv_type=kv_type, session_dir=str(folder / kv_type))
    )
    list(engine.stream("the quiet tavern " * 60, SHORT, threading.Event()))
    engine.unload()  # waits for the session file
    (path,) = (folder / kv_type).glob(f"*{SUFFIX}")
    return scan(path).payload_bytes


def test_kv_cache_types_change_the_cache_size(engine, quick_model, tmp_path):
    f16, q8, q4 = (_state_size(engine, quick_model, kv, tmp_path) for kv in ("f16", "q8_0", "q4_0"))
    # per element: 2 bytes, 34/32 and 18/32 bytes (ggml block sizes)
    assert f16 > q8 > q4
    assert 1.6 < f16 / q8 < 2.0 and 1.6 < q8 / q4 < 2.0


def test_a_quantized_cache_without_flash_attention_is_a_clear_error(engine, quick_model):
    with pytest.raises(EngineError, match="flash attention"):
        engine.load(LoadParams(model_path=quick_model, kv_type="q8_0", flash_attn=False))
    assert engine._proc is None


def test_an_unknown_kv_type_is_refused(engine, quick_model):
    with pytest.raises(EngineError, match="KV cache type"):
        engine.load(LoadParams(model_path=quick_model, kv_type="q5_1"))


def test_loading_reports_progress_up_to_one(engine, quick_model):
    seen: list[float] = []
    engine.load(LoadParams(model_path=quick_model, n_ctx=256), progress=seen.append)
    assert len(seen) >= 2 and seen == sorted(seen)
    assert seen[0] < 0.5 and seen[-1] == 1.0


def test_cancelling_a_load_ends_the_child_and_the_engine_loads_again(engine, quick_model):
    cancel = threading.Event()
    with pytest.raises(EngineError, match="cancelled"):
        engine.load(
            LoadParams(model_path=quick_model), cancel, progress=lambda fraction: cancel.set()
        )
    assert engine._proc is None and engine.info is None
    assert engine.load(LoadParams(model_path=quick_model, n_ctx=256)).n_ctx == 256


@pytest.mark.slow
def test_stop_interrupts_a_long_prompt_evaluation(engine, tmp_path):
    model = str(write_bench_model(tmp_path / "slow.gguf", SLOW))
    engine.load(LoadParams(model_path=model, n_ctx=4096, n_batch=16, n_threads=1))
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)  # the prompt takes many seconds on one thread
    timer.start()
    pieces = list(engine.stream("the quiet tavern " * 1000, SHORT, cancel))
    timer.join()
    assert pieces == []
    assert engine.last_stats.stopped and engine.last_stats.tokens == 0
    # the context is consistent again: a new prompt gets a full reply
    assert len(list(engine.stream("Hello.", SHORT, threading.Event()))) == SHORT.max_tokens


def test_every_sampler_setting_reaches_llama_cpp(engine, quick_model):
    engine.load(LoadParams(model_path=quick_model, n_ctx=512))
    base = SamplingParams(
        max_tokens=24, seed=5, temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, repeat_penalty=1.0
    )

    def reply(**change) -> str:
        return "".join(engine.stream("Tell me.", replace(base, **change), threading.Event()))

    reference = reply()
    assert reply() == reference  # same seed, same settings: same words
    for change in (
        {"temperature": 0.2},
        {"top_k": 2},
        {"top_p": 0.2},
        {"min_p": 0.5},
        {"typical_p": 0.2},
        {"repeat_penalty": 3.0},
        {"presence_penalty": 2.0},
        {"frequency_penalty": 2.0},
        {"mirostat_mode": 2, "mirostat_tau": 1.0},
        {"seed": 6},
    ):
        assert reply(**change) != reference, change
    # the penalty range: 0 tokens means no penalty at all
    assert reply(repeat_penalty=3.0, repeat_last_n=0) == reference
    assert reply(repeat_penalty=3.0, repeat_last_n=-1) != reference
