"""The small interface every engine implements, and the values that cross it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

DRY_BREAKERS = ("\n", ":", '"', "*")  # SillyTavern's default DRY sequence breakers


class EngineError(Exception):
    """A model could not be loaded or a reply could not be made; the text says why."""


class EngineCrashed(EngineError):
    """The process running llama.cpp died; what was streamed so far is still valid."""


@dataclass(frozen=True)
class LoadParams:
    model_path: str
    n_ctx: int = 4096
    n_gpu_layers: int = 0
    n_threads: int | None = None
    n_batch: int = 512
    flash_attn: bool = True
    kv_type: str = "f16"  # f16 | q8_0 | q4_0
    use_mmap: bool = True
    use_mlock: bool = False
    # Mixture-of-experts: keep the expert tensors of layers 0..n_cpu_moe-1 in system RAM
    # while the rest goes to the GPU (llama.cpp's --n-cpu-moe); see expert_offload.py.
    n_cpu_moe: int = 0
    # Saved KV sessions (see sessions.py): the folder, or "" to keep none; the cap is for
    # the whole folder, oldest-used files go first.
    session_dir: str = ""
    session_cap_mb: int = 2048


@dataclass(frozen=True)
class SamplingParams:
    # Roleplay-friendly defaults; llama-cpp-python's own (temperature 0.2) are for code.
    max_tokens: int = 300
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    typical_p: float = 1.0
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    mirostat_mode: int = 0
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    seed: int = -1
    stop: tuple[str, ...] = ()
    # DRY ("don't repeat yourself": penalises continuing a sequence already in the context)
    # and XTC ("exclude top choices": sometimes drops the likeliest tokens), under
    # SillyTavern's names and defaults; both are off until the multiplier or the
    # probability is above 0. A DRY range of 0 (SillyTavern's default) or -1 is the whole
    # context; the sequence breakers may be given as SillyTavern writes them (a JSON list in
    # a string, or a comma-separated list).
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = 0
    dry_sequence_breakers: tuple[str, ...] = DRY_BREAKERS
    xtc_threshold: float = 0.1
    xtc_probability: float = 0.0

    def __post_init__(self) -> None:
        breakers = self.dry_sequence_breakers
        if isinstance(breakers, str):
            object.__setattr__(self, "dry_sequence_breakers", parse_breakers(breakers))
        elif isinstance(breakers, list):
            object.__setattr__(self, "dry_sequence_breakers", tuple(breakers))

    @property
    def dry_on(self) -> bool:
        return self.dry_multiplier > 0

    @property
    def xtc_on(self) -> bool:
        return self.xtc_probability > 0 and self.xtc_threshold <= 0.5  # llama.cpp's rule


def parse_breakers(text: str) -> tuple[str, ...]:
    """SillyTavern's `dry_sequence_breakers` text: a JSON list of strings, else a list
    separated by commas (as its `replaceMacrosInList` reads it)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return tuple(part for part in text.split(",") if part)


def breakers_text(breakers: tuple[str, ...]) -> str:
    """The breakers as SillyTavern writes them: `["\\n", ":", "\\"", "*"]`."""
    return json.dumps(list(breakers), ensure_ascii=False)


@dataclass
class ModelInfo:
    path: str
    name: str
    n_ctx: int
    n_ctx_train: int
    n_gpu_layers: int
    n_layer: int
    chat_template: str | None
    bos: str
    eos: str
    metadata: dict[str, Any] = field(default_factory=dict)
    # What llama.cpp actually runs with (read back from the context, not echoed from the
    # request): n_ctx, n_batch, n_threads, kv_type, flash_attn, n_gpu_layers, load_mode.
    effective: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # allowed but worth telling the user


@dataclass(frozen=True)
class PromptLayout:
    """What the engine may assume about a prompt's shape, for reusing its KV cache.

    The first `permanent_chars` characters (system prompt, card: what only an edit changes)
    must match the cache exactly before anything after them is moved in a context shift;
    when they differ, the whole prompt is read again and the reply's stats say why.
    """

    permanent_chars: int = 0


@dataclass
class StreamStats:
    prompt_tokens: int = 0
    reused_tokens: int = 0  # tokens of the prompt found in the KV cache, not re-evaluated
    restored_tokens: int = 0  # of those, tokens that came from a saved session file
    shifted_tokens: int = 0  # of those, tokens moved down in a context shift
    removed_tokens: int = 0  # cached tokens the shift dropped (messages gone from the prompt)
    full_read_reason: str = ""  # why a shift was not done although the cache held the history
    restore_s: float = 0.0  # time spent reading that file (part of ttft_s)
    # llama.cpp's own counters for this reply (llama_perf_context), -1 when not known:
    # prompt tokens it decoded, and its time for them
    llama_prompt_eval: int = -1
    llama_prompt_eval_ms: float = 0.0
    llama_perf: str = ""  # llama.cpp's performance report, as llama_perf_context_print wrote it
    notes: list[str] = field(default_factory=list)  # for the log: saved sessions used or not
    # saved-session writes since the previous reply: bytes, seconds on the writer thread,
    # and the longest time the engine was busy copying a state for them
    saved_bytes: int = 0
    save_s: float = 0.0
    save_copy_ms: float = 0.0
    tokens: int = 0
    ttft_s: float = 0.0
    seconds: float = 0.0
    seed: int = -1
    stopped: bool = False
    finish_reason: str = ""

    @property
    def evaluated_tokens(self) -> int:
        """Prompt tokens llama.cpp had to compute for this reply (its own count if known)."""
        if self.llama_prompt_eval >= 0:
            return self.llama_prompt_eval
        return self.prompt_tokens - self.reused_tokens

    @property
    def tokens_per_s(self) -> float:
        gen_time = self.seconds - self.ttft_s
        return (self.tokens - 1) / gen_time if self.tokens > 1 and gen_time > 0 else 0.0


class Engine(Protocol):
    info: ModelInfo | None
    last_stats: StreamStats | None

    def load(
        self,
        params: LoadParams,
        cancel: threading.Event | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> ModelInfo: ...

    def stream(
        self,
        prompt: str,
        params: SamplingParams,
        cancel: threading.Event,
        layout: PromptLayout | None = None,
    ) -> Iterator[str]: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def unload(self) -> None: ...
