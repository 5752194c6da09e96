"""The tests' tiny llama-architecture GGUF models: 64 wide, written by `bench/bench_model.py`,
the one model writer the suite and the benchmarks share (its docstring says how the random
weights still babble readable words)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from bench.bench_model import TINY, WORDS, Model, write_model
from bench.bench_model import vocabulary as _vocabulary

__all__ = ["N_EMBD", "WORDS", "vocabulary", "write_tiny_llama"]

N_EMBD = TINY.n_embd


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """The tiny models' vocabulary: control and byte tokens, ASCII characters, whole words."""
    return _vocabulary()


def write_tiny_llama(
    path: str | Path,
    *,
    n_expert: int = 0,
    legacy_experts: bool = False,
    ftype: str = "f32",
    n_layer: int = 2,
    n_ctx: int = 4096,
    seed: int = 0,
    chat_template: str | None = None,
    extra_metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a tiny llama (or Mixtral-style MoE when n_expert > 0) GGUF and return its path.

    `legacy_experts` stores each expert as its own tensor, the pre-April-2024 layout.
    """
    shape = replace(TINY, n_layer=n_layer, n_ctx_train=n_ctx, n_expert=n_expert)
    model = Model(
        matrix_type=ftype,
        expert_type=ftype,
        legacy_experts=legacy_experts,
        chat_template=chat_template,
        extra=extra_metadata,
    )
    return write_model(path, shape, model, seed=seed)
