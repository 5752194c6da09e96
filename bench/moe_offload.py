"""Benchmark: layer split vs expert split for a MoE model that half fits in VRAM.

    python bench/moe_offload.py MODEL.gguf [--vram-gb 8] [--tokens 64] [--ctx 4096]

Plans both splits from the GGUF header for the given GPU budget (default: what llama.cpp
reports free on its GPU devices), loads the model once per plan through the engine (the same
LoadParams the app uses: n_gpu_layers, n_cpu_moe), generates --tokens greedily and prints one
JSON object with each plan, its predicted seconds per token (app/core/hub/offload.py's model)
and the measured tokens/s. On a CPU-only llama.cpp both plans run on the CPU: the figures
then say nothing about the split, only that the script works.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.engine import LoadParams, SamplingParams  # noqa: E402
from app.core.engine.devices import enumerate_runtime  # noqa: E402
from app.core.engine.local import LocalEngine  # noqa: E402
from app.core.gguf.header import read_header  # noqa: E402
from app.core.hub import offload  # noqa: E402

GB = 1_000_000_000
PROMPT = "The tavern door swung open and the stranger said"


def measure(path: Path, plan: offload.OffloadPlan, ctx: int, tokens: int) -> dict:
    engine = LocalEngine()
    try:
        engine.load(
            LoadParams(
                model_path=str(path),
                n_ctx=ctx,
                n_gpu_layers=plan.n_gpu_layers,
                n_cpu_moe=plan.n_cpu_moe,
            )
        )
        sp = SamplingParams(max_tokens=tokens, temperature=0.0, seed=1)
        text = "".join(engine.stream(PROMPT, sp, threading.Event()))
        stats = engine.last_stats
        gen_s = max(stats.seconds - stats.ttft_s, 1e-9)
        return {
            "plan": plan.describe(),
            "n_gpu_layers": plan.n_gpu_layers,
            "n_cpu_moe": plan.n_cpu_moe,
            "gpu_gb": round(plan.gpu_bytes / GB, 2),
            "cpu_gb": round(plan.cpu_bytes / GB, 2),
            "predicted_tokens_per_s": round(plan.tokens_per_s, 2),
            "tokens_per_s": round(max(stats.tokens - 1, 1) / gen_s, 2),
            "text": text[:80],
        }
    finally:
        engine.unload()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--vram-gb", type=float, help="GPU budget (default: free VRAM)")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--ctx", type=int, default=4096)
    args = parser.parse_args(argv)
    runtime = enumerate_runtime()
    budget = int(args.vram_gb * GB) if args.vram_gb is not None else runtime.free_vram
    mb = offload.model_bytes(read_header(args.model), args.ctx)
    layers = offload.best_layer_split(mb, budget)
    experts = offload.best_expert_split(mb, budget)
    result = {
        "model": args.model.name,
        "vram_budget_gb": round(budget / GB, 2),
        "runtime": [f"{d.backend}: {d.description}" for d in runtime.gpu_devices],
        "layer_split": measure(args.model, layers, args.ctx, args.tokens),
        "expert_split": (
            measure(args.model, experts, args.ctx, args.tokens) if experts is not None else None
        ),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
