"""Benchmark: legacy MoE conversion speed and peak resident memory. Prints one JSON object.

    python bench/convert_bench.py [--size-mb 400] [--mixed] [--dir DIR]

Writes a Mixtral-shaped legacy model (Q4_0 experts, 4 per layer; `--mixed` gives every
layer's ffn_down experts 1 and 3 the Q6_K type, as old Q4_K_M quantizers did) of about
--size-mb, then converts it in a child process so that the child's peak RSS is the
converter's alone. The source is likely in the page cache (just written), so the speed is an
upper bound for a cold 20 GB file on the same disk.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_EMBD, N_FF, N_EXPERT, N_VOCAB = 2048, 5632, 4, 32000


def _rss_mb() -> float:
    """Peak RSS of this process. VmHWM, because ru_maxrss survives exec: a child started from
    a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _weights(rng, rows: int, cols: int, qtype):
    import numpy as np
    from gguf import quants

    from app.core.convert.kquants import quantize_q6_k

    x = (rng.standard_normal((rows, cols)) * 0.02).astype(np.float32)
    return quantize_q6_k(x) if qtype.name == "Q6_K" else quants.quantize(x, qtype)


def write_model(path: Path, size_mb: int, mixed: bool) -> dict:
    """Stream a legacy-layout model to disk: one quantized tensor per shape, reused."""
    import gguf
    import numpy as np

    T = gguf.GGMLQuantizationType
    rng = np.random.default_rng(0)
    per_layer = 3 * N_EXPERT * N_EMBD * N_FF * 18 // 32
    n_layer = max(1, (size_mb << 20) // per_layer)
    blocks = {
        ("gate", T.Q4_0): _weights(rng, N_FF, N_EMBD, T.Q4_0),
        ("up", T.Q4_0): _weights(rng, N_FF, N_EMBD, T.Q4_0),
        ("down", T.Q4_0): _weights(rng, N_EMBD, N_FF, T.Q4_0),
        ("down", T.Q6_K): _weights(rng, N_EMBD, N_FF, T.Q6_K),
        ("attn", T.Q4_0): _weights(rng, N_EMBD, N_EMBD, T.Q4_0),
        ("embd", T.Q4_0): _weights(rng, N_VOCAB, N_EMBD, T.Q4_0),
    }
    norm = np.ones(N_EMBD, dtype=np.float32)
    router = (rng.standard_normal((N_EXPERT, N_EMBD))).astype(np.float32)
    order: list[tuple[str, np.ndarray, object]] = [
        ("token_embd.weight", blocks["embd", T.Q4_0], T.Q4_0)
    ]
    for i in range(n_layer):
        order.append((f"blk.{i}.attn_norm.weight", norm, None))
        for k in ("q", "k", "v", "output"):
            order.append((f"blk.{i}.attn_{k}.weight", blocks["attn", T.Q4_0], T.Q4_0))
        order += [
            (f"blk.{i}.ffn_norm.weight", norm, None),
            (f"blk.{i}.ffn_gate_inp.weight", router, None),
        ]
        for e in range(N_EXPERT):
            down = T.Q6_K if mixed and e % 2 else T.Q4_0
            order += [
                (f"blk.{i}.ffn_gate.{e}.weight", blocks["gate", T.Q4_0], T.Q4_0),
                (f"blk.{i}.ffn_down.{e}.weight", blocks["down", down], down),
                (f"blk.{i}.ffn_up.{e}.weight", blocks["up", T.Q4_0], T.Q4_0),
            ]
    order += [("output_norm.weight", norm, None), ("output.weight", blocks["embd", T.Q4_0], T.Q4_0)]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(n_layer)
    w.add_context_length(4096)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(16)
    w.add_head_count_kv(8)
    w.add_expert_count(N_EXPERT)
    w.add_expert_used_count(2)
    w.add_token_list([f"t{i}" for i in range(N_VOCAB)])
    for name, arr, raw in order:
        w.add_tensor_info(name, arr.shape, arr.dtype, arr.nbytes, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for _, arr, _ in order:
        w.write_tensor_data(arr)
    w.close()
    return {"n_layer": n_layer, "tensors": len(order)}


def child(src: str, dst: str) -> None:
    from app.core.convert.moe import convert_legacy_moe

    baseline = _rss_mb()
    start = time.perf_counter()
    result = convert_legacy_moe(src, dst)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "mb_per_s": round(result.bytes_written / 2**20 / seconds, 1),
                "output_mb": round(result.bytes_written / 2**20, 1),
                "peak_rss_mb": round(_rss_mb(), 1),
                "rss_after_imports_mb": round(baseline, 1),
                "groups": result.groups,
                "mixed_groups": len(result.mixed),
                "max_rel_rmse": max((g.max_rel_rmse for g in result.mixed), default=0.0),
            }
        )
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=400)
    ap.add_argument("--mixed", action="store_true")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        src, dst = Path(tmp) / "legacy.gguf", Path(tmp) / "merged.gguf"
        t0 = time.perf_counter()
        info = write_model(src, args.size_mb, args.mixed)
        info["write_seconds"] = round(time.perf_counter() - t0, 2)
        info["model_mb"] = round(src.stat().st_size / 2**20, 1)
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(src), str(dst)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )
        info.update(json.loads(out.stdout.strip().splitlines()[-1]))
        info["mixed"] = args.mixed
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
