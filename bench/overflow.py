"""`overflow`: a chat driven past the context limit, turn by turn, through the app's path.

Once a chat is longer than the context, the prompt builder drops its oldest messages and
the prompt's beginning changes; without a context shift llama.cpp would read almost the
whole history again. Here a chat (bench/long_chat.py, the app's `PromptJob`) is filled to
the limit, then driven `past` more turns, each one a user line and a reply streamed by the
app's engine with the prompt's layout. For every turn past the limit it reports:

- prompt_tokens: the prompt's length;
- evaluated_tokens: prompt tokens llama.cpp decoded, from its own counters
  (`llama_perf_context`; its report for each reply is in parlor.log);
- new_tokens: the new user line plus the previous reply, as the tokenizer counts them.

Targets: evaluated ÷ prompt tokens over all these turns < 0.05, and no turn evaluating more
than new_tokens + 64 (the template's markup around them), unless the card changed.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from app.core.engine import LoadParams, PromptLayout, SamplingParams
from app.core.engine.local import LocalEngine
from app.core.prompt import Message
from bench.bench_model import DEFAULT, QUICK, write_bench_model
from bench.long_chat import LongChat

EXCESS_TARGET = 64
FRACTION_TARGET = 0.05
USER_LINE = "I lean on the counter and ask what she has heard about the ship tonight."


def _send(chat: LongChat, user_text: str, sampling: SamplingParams) -> tuple[dict, object]:
    """One turn as the chat controller runs it, with the layout the worker passes."""
    prompt = chat.build(user_text)
    sampling = replace(sampling, stop=tuple(prompt.stop))
    start = time.perf_counter()
    reply = "".join(
        chat.engine.stream(
            prompt.text, sampling, threading.Event(), PromptLayout(prompt.permanent_chars)
        )
    )
    seconds = time.perf_counter() - start
    stats = chat.engine.last_stats
    previous = chat.history[-1].text if chat.history else ""
    new = sum(chat.engine.count_tokens([user_text, previous]))
    chat.history += [Message(role="user", text=user_text), Message(role="assistant", text=reply)]
    turn = {
        "prompt_tokens": stats.prompt_tokens,
        "evaluated_tokens": stats.evaluated_tokens,
        "new_tokens": new,
        "shifted_tokens": stats.shifted_tokens,
        "removed_tokens": stats.removed_tokens,
        "dropped_messages": prompt.dropped_messages,
        "seconds": round(seconds, 3),
    }
    if stats.full_read_reason:
        turn["full_read_reason"] = stats.full_read_reason
    return turn, prompt


def overflow_run(
    params: LoadParams, sampling: SamplingParams, past: int = 48, turns: int = 24
) -> dict:
    """Fill a chat of `turns` exchanges to 90% of the context, then `past` turns beyond."""
    engine = LocalEngine()
    try:
        info = engine.load(params)
        chat = LongChat(engine, info, turns, fill=0.9, max_tokens=sampling.max_tokens)
        over: list[dict] = []
        before = 0  # the first turn reads the whole chat into an empty cache: never counted
        while len(over) < past:
            turn, prompt = _send(chat, f"({len(chat.history)}) {USER_LINE}", sampling)
            if prompt.dropped_messages and before:
                over.append(turn)
            else:
                before += 1
                if before > 4 * turns:
                    raise RuntimeError("the chat never outgrew the context")
        return summary(over, before, info.n_ctx)
    finally:
        engine.unload()


def summary(turns: list[dict], before: int, n_ctx: int) -> dict:
    prompt = sum(t["prompt_tokens"] for t in turns)
    evaluated = sum(t["evaluated_tokens"] for t in turns)
    excess = [t["evaluated_tokens"] - t["new_tokens"] for t in turns]
    return {
        "n_ctx": n_ctx,
        "turns_before_limit": before,
        "turns": turns,
        "evaluated_fraction": evaluated / prompt if prompt else 0.0,
        "max_excess": max(excess, default=0),
        "max_evaluated_tokens": max((t["evaluated_tokens"] for t in turns), default=0),
        "full_reads": sum(1 for t in turns if "full_read_reason" in t),
        "meets_targets": evaluated < FRACTION_TARGET * prompt
        and max(excess, default=0) <= EXCESS_TARGET,
    }


def run(
    model: str | None = None,
    *,
    quick: bool = False,
    n_gpu_layers: int = 0,
    n_threads: int | None = None,
) -> dict:
    """`{"4096": {...}, "8192": {...}}` (--quick: 1024 and 2048, 8 turns past the limit),
    on `model` or a generated one."""
    sizes, past = ((1024, 2048), 8) if quick else ((4096, 8192), 48)
    sampling = SamplingParams(max_tokens=32 if quick else 64, seed=1234)
    with tempfile.TemporaryDirectory(prefix="parlor-overflow-") as tmp:
        if model is None:
            model = str(write_bench_model(Path(tmp) / "bench.gguf", QUICK if quick else DEFAULT))
        out = {}
        for n_ctx in sizes:
            params = LoadParams(
                model_path=model, n_ctx=n_ctx, n_gpu_layers=n_gpu_layers, n_threads=n_threads
            )
            out[str(n_ctx)] = overflow_run(params, sampling, past=past)
    return out
