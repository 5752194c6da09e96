"""Tiny Mixtral-style GGUFs in the legacy (split) and merged expert layouts, from one set of
weights, with any quant type per expert: what the converter tests compare.

They come from `bench/bench_model.py`, the suite's one model writer. K-quants need rows of 256
values and the converter needs experts of different types within one layer, hence a 256-wide
shape and a per-expert type here rather than the 64-wide tiny llama.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.bench_model import Model, Shape, TypeFor, make_weights, write_model

LEGACY = Shape(n_embd=256, n_head=4, n_head_kv=2, n_ff=256, n_layer=2, n_ctx_train=2048, n_expert=4)
MOE_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def write_moe(
    path: str | Path,
    *,
    legacy: bool,
    expert_type: str | TypeFor = "F16",
    other_type: str = "F16",
    n_expert: int = 4,
    n_layer: int = 2,
    seed: int = 0,
    weights: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write one layout. Merged files need one type per group: expert_type must be a str."""
    model = Model(
        name="Parlor tiny legacy MoE",
        matrix_type=other_type,
        expert_type=expert_type,
        legacy_experts=legacy,
        chat_template=MOE_TEMPLATE,
    )
    shape = replace(LEGACY, n_expert=n_expert, n_layer=n_layer)
    return write_model(path, shape, model, seed=seed, weights=weights)


def write_pair(
    folder: Path, expert_type: str = "F16", other_type: str = "F16", **kw
) -> tuple[Path, Path]:
    """The same weights as a legacy file and as a merged file; returns (legacy, merged)."""
    shape = replace(LEGACY, n_expert=kw.pop("n_expert", 4), n_layer=kw.pop("n_layer", 2))
    weights = make_weights(shape, kw.pop("seed", 0))
    tag = expert_type.lower()
    made = [
        write_moe(
            folder / f"{layout}-{tag}.gguf",
            legacy=layout == "legacy",
            expert_type=expert_type,
            other_type=other_type,
            n_expert=shape.n_expert,
            n_layer=shape.n_layer,
            weights=weights,
        )
        for layout in ("legacy", "merged")
    ]
    return made[0], made[1]
