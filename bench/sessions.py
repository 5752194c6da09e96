"""`sessions`: what saved KV sessions cost a chat, at 1k, 4k and 16k tokens of context.

A chat (bench/long_chat.py, the app's `PromptJob`) filling most of the context is driven a
few turns through the app's engine with a session folder; between turns the engine idles
as it does while the user reads, which is when it saves. Then the user switches to another
chat and back. Each round does this in a fresh engine and folder; per context size the
figures are the median over the rounds, with their spread (min, max) and every round kept:

- state_bytes: the size of one full saved state (the first save of the chat);
- bytes_per_reply: what the saves after each ordinary reply wrote (from the engine's own
  account in each reply's stats), and their mean as a fraction of the state
  (reply_fraction); new_token_fraction: the tokens a turn adds to the cache as a fraction
  of all it holds, the least an incremental save can write;
- switch_bytes: what was written between the last reply of the chat and the first reply of
  the other one, and back; restored_tokens of the first reply back in the first chat;
- save_s: seconds the writer thread took per save; copy_ms: the longest time llama.cpp's
  thread was busy copying one range for a save (a request arriving then waits that long);
- blocked_ms: a token count sent just as an idle save starts, minus the same count when
  nothing is saved (the worst of the idles of a round);
- peak_extra_mb: the engine process's resident memory above its level before the save.

Targets: an ordinary reply writes under 5% of the state; no save blocks the next request
for more than 50 ms.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from app.core.engine import LoadParams, SamplingParams
from app.core.engine.child import IDLE_SAVE_S
from app.core.engine.local import LocalEngine
from bench.bench_model import DEFAULT, QUICK, write_bench_model
from bench.long_chat import LongChat

READ_S = IDLE_SAVE_S + 1.5  # the user reads the reply: long enough for an idle save


class _Rss:
    """Samples a process's resident memory on a thread, for the peak above a baseline."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def extra_mb(self) -> float:
        self._stop.set()
        self._thread.join()
        return (self.peak - self.base) / 2**20


def _count_ms(engine, texts: list[str]) -> float:
    t0 = time.perf_counter()
    engine.count_tokens(texts)
    return (time.perf_counter() - t0) * 1000


def _idle(engine, probe: list[str], quiet_ms: float) -> tuple[float, float]:
    """Let the engine idle as a reader would; a count lands when its idle save starts."""
    rss = _Rss(engine._proc.pid)
    time.sleep(IDLE_SAVE_S + 0.002)
    blocked = _count_ms(engine, probe) - quiet_ms
    # On a busy machine the count can land just before the save starts and so restart the
    # idle clock: wait a whole idle period again, so the save happens either way.
    time.sleep(READ_S)
    return max(blocked, 0.0), rss.extra_mb()


def _turn(chat: LongChat, text: str, sampling: SamplingParams):
    chat.send(text, sampling)
    return chat.engine.last_stats


def sessions_run(
    params: LoadParams, sampling: SamplingParams, folder: Path, replies: int = 6
) -> dict:
    engine = LocalEngine()
    try:
        info = engine.load(replace(params, session_dir=str(folder), session_cap_mb=10**6))
        chat = LongChat(engine, info, 24, fill=0.8, max_tokens=sampling.max_tokens)
        probe = ["a short line to count"]
        quiet = min(_count_ms(engine, [f"{p} {i}" for p in probe]) for i in range(5))
        stats = [_turn(chat, "(0) I ask about the ship.", sampling)]
        idles = [_idle(engine, probe, quiet)]
        for i in range(1, replies + 1):
            stats.append(_turn(chat, f"({i}) And then?", sampling))
            idles.append(_idle(engine, probe, quiet))
        other = LongChat(engine, info, 4, fill=0.2, max_tokens=sampling.max_tokens)
        switched = _turn(other, "A different evening entirely.", sampling)
        idles.append(_idle(engine, probe, quiet))
        back = _turn(chat, "(back) Where were we?", sampling)
    finally:
        engine.unload()
    return _summary(stats, switched, back, idles)


def _summary(stats, switched, back, idles) -> dict:
    # each reply's stats report the saves made while idle after the reply before it
    first_save, *per_reply = [s.saved_bytes for s in stats[1:]]
    saves = [s for s in (*stats, switched, back) if s.saved_bytes]
    held = [s.prompt_tokens + s.tokens for s in stats]  # the cache after each reply
    added = [s.evaluated_tokens + s.tokens for s in stats[2:]]  # new in the cache a turn
    mean = statistics.mean(per_reply) if per_reply else 0.0
    return {
        "prompt_tokens": stats[-1].prompt_tokens,
        "state_bytes": first_save,
        "bytes_per_reply": per_reply,
        "reply_fraction": mean / first_save if first_save else 0.0,
        "new_token_fraction": statistics.mean(added) / statistics.mean(held) if added else 0.0,
        "switch_bytes": switched.saved_bytes + back.saved_bytes,
        "restored_tokens": back.restored_tokens,
        "save_s": [round(s.save_s, 3) for s in saves],
        "copy_ms": round(max(s.save_copy_ms for s in (*stats, switched, back)), 1),
        "blocked_ms": round(max(b for b, _ in idles), 1),
        "peak_extra_mb": round(max(m for _, m in idles), 1),
    }


SPREAD = (
    "state_bytes",
    "reply_fraction",
    "new_token_fraction",
    "switch_bytes",
    "restored_tokens",
    "copy_ms",
    "blocked_ms",
    "peak_extra_mb",
)


def _over_rounds(rounds: list[dict]) -> dict:
    """The median of each figure over the rounds, its (min, max), and the rounds."""
    out: dict = {k: statistics.median(r[k] for r in rounds) for k in SPREAD}
    out["spread"] = {k: [min(r[k] for r in rounds), max(r[k] for r in rounds)] for k in SPREAD}
    out["bytes_per_reply"] = [b for r in rounds for b in r["bytes_per_reply"]]
    out["save_s"] = [t for r in rounds for t in r["save_s"]]
    out["prompt_tokens"] = rounds[-1]["prompt_tokens"]
    out["rounds"] = rounds
    return out


def run(
    model: str | None = None,
    *,
    quick: bool = False,
    n_gpu_layers: int = 0,
    n_threads: int | None = None,
    rounds: int = 5,
    sizes: tuple[int, ...] | None = None,
) -> dict:
    """`{"1024": {...}, "4096": {...}, "16384": {...}}` (--quick: 1024 and 2048, one round)."""
    sizes = sizes or ((1024, 2048) if quick else (1024, 4096, 16384))
    sampling = SamplingParams(max_tokens=24 if quick else 64, seed=1234)
    out = {}
    with tempfile.TemporaryDirectory(prefix="parlor-sessions-") as tmp:
        if model is None:
            model = str(write_bench_model(Path(tmp) / "bench.gguf", QUICK if quick else DEFAULT))
        for n_ctx in sizes:
            params = LoadParams(
                model_path=model, n_ctx=n_ctx, n_gpu_layers=n_gpu_layers, n_threads=n_threads
            )
            done = [
                sessions_run(
                    params, sampling, Path(tmp) / f"s{n_ctx}-{i}", replies=3 if quick else 6
                )
                for i in range(1 if quick else rounds)
            ]
            out[str(n_ctx)] = _over_rounds(done)
    return out
