"""llama.cpp's own performance counters for one reply, read in the engine child.

The figures a reader can check come from llama.cpp, not from our bookkeeping: the context's
counters are reset before each reply, read once when the first token has been sampled (the
prompt is decoded then, and no generated token yet), and llama.cpp's own report
(`llama_perf_context_print`) is captured as text for the log.

Two quirks of the bundled llama.cpp: the counts are only updated when the context
synchronizes (sampling does that), and `llama_perf_context` reports a count of 0 as 1, so a
count is only trusted when its time is not zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.engine import llama_log


@dataclass(frozen=True)
class PromptEval:
    tokens: int  # prompt tokens llama.cpp decoded for this reply
    ms: float


def reset(llm: Any) -> None:
    import llama_cpp

    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)


def prompt_eval(llm: Any) -> PromptEval:
    """What llama.cpp decoded since `reset`; call before any generated token is decoded.

    A one-token remainder counts as an "eval", a longer one as a "prompt eval" (llama.cpp
    sorts a decode by its size), so the two are added.
    """
    import llama_cpp

    llama_cpp.llama_synchronize(llm._ctx.ctx)
    data = llama_cpp.llama_perf_context(llm._ctx.ctx)
    p = data.n_p_eval if data.t_p_eval_ms > 0 else 0
    e = data.n_eval if data.t_eval_ms > 0 else 0
    return PromptEval(p + e, data.t_p_eval_ms + data.t_eval_ms)


class FirstSample:
    """A stopping criterion that never stops: it reads the counters at the first sample."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.result: PromptEval | None = None

    def __call__(self, _input_ids: Any, _logits: Any) -> bool:
        if self.result is None:
            self.result = prompt_eval(self.llm)
        return False


def report(llm: Any) -> str:
    """llama.cpp's performance report for the reply, its lines joined into one."""
    import llama_cpp

    with llama_log.captured(forward=False) as lines:  # for parlor.log, not stderr
        llama_cpp.llama_perf_context_print(llm._ctx.ctx)
    return " | ".join(
        " ".join(line.split()) for line in "".join(lines).splitlines() if line.strip()
    )
