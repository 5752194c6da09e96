"""The engine benchmarks of issue 5, run by `parlor bench` (or `python bench/engine_bench.py`).

1. stream_ratio: tokens/s of a reply through the app's path (bench/gui_path.py) over tokens/s
   of plain llama-cpp-python in this process, same model, settings, prompt and seed.
   Both clocks run from the request to the last token, so both include the same prompt
   evaluation. Rounds alternate plain and app; the figure is the median of the rounds'
   ratios, which keeps a shared machine's bursts of load out better than best-of-each.
2. followup_eval_fraction: on a 40-turn chat built by the app's prompt builder and filling
   most of the context, prompt tokens llama.cpp evaluates for turn 41 over the prompt's
   tokens; with the time to first token against the full read of turn 40.
3. reopen_ttft_ratio: time to first token of turn 42 in a fresh engine process that
   restores the saved session, over the same in a fresh process without sessions.
4. max_stall_ms: the GUI event loop's worst lateness while benchmark 1 streams.
Also: how long Stop takes during a long prompt evaluation and during streaming.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from app.core.chat.job import TokenCounter
from app.core.engine import LoadParams, SamplingParams
from app.core.engine.child import completion_kwargs, llama_kwargs
from app.core.engine.local import LocalEngine
from app.core.engine.sessions import SUFFIX
from bench.bench_model import DEFAULT, QUICK, write_bench_model
from bench.gui_path import stream_through_app
from bench.long_chat import LongChat, Turn

WARM_UP = SamplingParams(max_tokens=8, seed=1)
STORY = "Tell me the story of the lighthouse keeper and the storm, slowly and in detail. "


def _plain_run(llm, prompt: str, sampling: SamplingParams) -> dict:
    tokens = llm.tokenize(prompt.encode("utf-8"), special=True)
    start = time.perf_counter()
    n = sum(
        1
        for c in llm.create_completion(tokens, **completion_kwargs(sampling))
        if c["choices"][0]["text"]
    )
    elapsed = time.perf_counter() - start
    return {"tokens": n, "seconds": elapsed, "tokens_per_s": n / elapsed}


def stream_benchmark(params: LoadParams, prompts: list[str], sampling: SamplingParams) -> dict:
    """Plain llama-cpp-python in this process and the app's path, round by round.

    Alternating keeps a busy machine's drift out of the ratio; the price is two copies of
    the model at once (shared through mmap on the CPU, twice the memory on a GPU).
    """
    import llama_cpp

    llm = llama_cpp.Llama(**llama_kwargs(params))
    engine = LocalEngine()
    engine.load(params)
    try:
        _plain_run(llm, "Warm up.", WARM_UP)
        list(engine.stream("Warm up.", WARM_UP, threading.Event()))
        plain, app = [], []
        for prompt in prompts:
            plain.append(_plain_run(llm, prompt, sampling))
            app.append(stream_through_app(engine, prompt, sampling))
        del llm
        gc.collect()
        stops = stop_latency(engine, sampling)
    finally:
        engine.unload()
    ratios = [a["tokens_per_s"] / p["tokens_per_s"] for p, a in zip(plain, app, strict=True)]
    return {
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "app": {**statistics_of(app), **stops},
        "plain": statistics_of(plain),
        "max_stall_ms": max(r["max_stall_ms"] for r in app),
        "stall_ms_per_round": [r["max_stall_ms"] for r in app],
    }


def statistics_of(runs: list[dict]) -> dict:
    """The median run's figures, with the spread of tokens/s across rounds."""
    rates = [r["tokens_per_s"] for r in runs]
    median = sorted(runs, key=lambda r: r["tokens_per_s"])[len(runs) // 2]
    return {**median, "tokens_per_s_min": min(rates), "tokens_per_s_max": max(rates)}


def _stop_after(engine, prompt: str, sampling, delay_s: float) -> float:
    cancel = threading.Event()
    set_at = []
    timer = threading.Timer(delay_s, lambda: set_at.append(time.perf_counter()) or cancel.set())
    timer.start()
    for _ in engine.stream(prompt, sampling, cancel):
        pass
    ended = time.perf_counter()
    timer.join()
    return (ended - set_at[0]) * 1000 if set_at else 0.0


def stop_latency(engine, sampling: SamplingParams) -> dict:
    """Milliseconds from Stop to the end of the stream, inside a long prompt and while
    streaming (the stream includes draining the child, so the next request can start)."""
    n_ctx = engine.info.n_ctx
    long_prompt = "the quiet harbour " * max(1, int(n_ctx * 0.8 / 18))
    endless = replace(sampling, max_tokens=n_ctx // 2)
    return {
        "stop_in_prompt_ms": _stop_after(engine, "x " + long_prompt, endless, 0.1),
        "stop_in_stream_ms": _stop_after(engine, "Hi.", endless, 0.3),
    }


def _wait_for_session(folder: Path, after: float, timeout_s: float = 120) -> None:
    """The child writes the session after the reply; a reopen test must find it there."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(p.stat().st_mtime >= after for p in folder.glob(f"*{SUFFIX}")):
            return
        time.sleep(0.05)


def _reopen(engine, params, chat: LongChat, text: str, sampling) -> Turn:
    """A fresh engine process (as after a restart) sends the next turn of `chat`."""
    chat.engine, chat.info = engine, engine.load(params)
    chat.counter = TokenCounter()
    return chat.send(text, sampling, keep=False)


def chat_benchmarks(
    params: LoadParams, sampling: SamplingParams, folder: Path, turns: int = 40
) -> dict:
    """Benchmarks 2 and 3 on one long chat (turn numbers as with 40 turns)."""
    with_sessions = replace(params, session_dir=str(folder))
    engine = LocalEngine()
    try:
        info = engine.load(with_sessions)
        # 40 turns at 80%: each turn adds about 2%, so turn 42 still fits without dropping
        chat = LongChat(
            engine, info, turns, fill=0.8 if turns >= 40 else 0.6, max_tokens=sampling.max_tokens
        )
        written = time.time() - 1
        t40 = chat.send("And what happened to the ship? (turn 40)", sampling)
        _wait_for_session(folder, written)
        t41 = chat.send("Then I ask her about the storm. (turn 41)", sampling)
        engine.unload()  # the child writes the last session before it exits
        text = "I come back the next evening. (turn 42)"
        restored = _reopen(engine, with_sessions, chat, text, sampling)
        engine.unload()
        reread = _reopen(engine, params, chat, text, sampling)
    finally:
        engine.unload()
    return {
        "followup_eval_fraction": t41.evaluated_tokens / t41.prompt_tokens,
        "followup": {
            "prompt_tokens": t41.prompt_tokens,
            "evaluated": t41.evaluated_tokens,
            "ttft_s": t41.ttft_s,
            "full_read_ttft_s": t40.ttft_s,
            "full_read_tokens": t40.prompt_tokens,
            "dropped_messages": [t40.dropped_messages, t41.dropped_messages],
        },
        "reopen_ttft_ratio": restored.ttft_s / reread.ttft_s,
        "reopen": {
            "prompt_tokens": restored.prompt_tokens,
            "restored_tokens": restored.restored_tokens,
            "evaluated": restored.evaluated_tokens,
            "ttft_s": restored.ttft_s,
            "restore_s": restored.restore_s,
            "dropped_messages": restored.dropped_messages,
            "without_session_ttft_s": reread.ttft_s,
            "session_file_bytes": sum(p.stat().st_size for p in folder.glob(f"*{SUFFIX}")),
        },
    }


def machine() -> dict:
    import llama_cpp
    import psutil

    return {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_system": llama_cpp.llama_print_system_info().decode().strip(),
    }


def run(
    model: str | None = None,
    *,
    quick: bool = False,
    n_ctx: int | None = None,
    n_gpu_layers: int = 0,
    n_threads: int | None = None,
    workdir: str | None = None,
) -> dict:
    """All four benchmarks; a generated model unless `model` names a GGUF file."""
    with tempfile.TemporaryDirectory(prefix="parlor-bench-") as tmp:
        root = Path(workdir or tmp)
        if model is None:
            model = str(
                write_bench_model(
                    root / ("quick.gguf" if quick else "bench.gguf"), QUICK if quick else DEFAULT
                )
            )
        params = LoadParams(
            model_path=model,
            n_ctx=n_ctx or (2048 if quick else 4096),
            n_gpu_layers=n_gpu_layers,
            n_threads=n_threads,
        )
        sampling = SamplingParams(max_tokens=48 if quick else 256, seed=1234)
        rounds = 2 if quick else 7
        prompts = [f"{i}. {STORY}" for i in range(rounds)]
        stream = stream_benchmark(params, prompts, sampling)
        chat = chat_benchmarks(
            params,
            replace(sampling, max_tokens=32 if quick else 64),
            root / "sessions",
            turns=12 if quick else 40,
        )
    return {
        "stream_ratio": stream["ratio"],
        "followup_eval_fraction": chat.pop("followup_eval_fraction"),
        "reopen_ttft_ratio": chat.pop("reopen_ttft_ratio"),
        "max_stall_ms": stream["max_stall_ms"],
        "stream": stream,
        **chat,
        "settings": {
            "model": os.path.basename(model),
            "n_ctx": params.n_ctx,
            "n_gpu_layers": n_gpu_layers,
            "n_threads": n_threads,
            "quick": quick,
            "rounds": rounds,
            "turns": 12 if quick else 40,
        },
        "machine": machine(),
    }


if __name__ == "__main__":
    import sys

    from app.commands.bench import main

    sys.exit(main(sys.argv[1:]))
