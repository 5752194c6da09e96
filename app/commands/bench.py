"""`parlor bench [--model PATH] [--json] [--quick]`: the engine benchmarks of bench/.

The benchmark code lives in the repository's bench/ folder (it drives the GUI path and
plain llama-cpp-python side by side), not in the installed package, so this command runs
from a source checkout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="measure the engine: streaming overhead, "
                              "follow-up and reopen time to first token, GUI stalls")
    p.add_argument("--model", help="GGUF file (default: a generated model)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="small sizes, for tests")
    p.add_argument("--n-ctx", type=int, help="context size (default 4096; --quick 2048)")
    p.add_argument("--n-gpu-layers", type=int, default=0, help="layers on the GPU (-1: all)")
    p.add_argument("--threads", type=int, help="CPU threads (default: llama.cpp's choice)")
    p.set_defaults(handler=run_bench)


def _import_bench():
    if not (REPO / "bench" / "engine_bench.py").is_file():
        raise ImportError("parlor bench needs the source checkout (the bench/ folder)")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from bench import engine_bench, open_chat

    return engine_bench, open_chat


def run_bench(args) -> int:
    try:
        engine_bench, open_chat = _import_bench()
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.model and not Path(args.model).is_file():
        print(f"error: {args.model} is not a file", file=sys.stderr)
        return 2
    result = engine_bench.run(args.model, quick=args.quick, n_ctx=args.n_ctx,
                              n_gpu_layers=args.n_gpu_layers, n_threads=args.threads)
    result["open_long_chat"] = open_chat.measure(1_000 if args.quick else 10_000,
                                                 repeats=1 if args.quick else 3)
    result["open_long_chat_ms"] = result["open_long_chat"]["open_long_chat_ms"]
    if args.json:
        print(json.dumps(result))
    else:
        print(_table(result))
    return 0


def _table(r: dict) -> str:
    f, o = r["followup"], r["reopen"]
    rows = [
        ("stream_ratio", f"{r['stream_ratio']:.3f}",
         f"median of rounds; app {r['stream']['app']['tokens_per_s']:.1f} tok/s, "
         f"plain {r['stream']['plain']['tokens_per_s']:.1f} tok/s (medians)"),
        ("followup_eval_fraction", f"{r['followup_eval_fraction']:.3f}",
         f"{f['evaluated']} of {f['prompt_tokens']} tokens; TTFT {f['ttft_s']:.3f} s vs "
         f"{f['full_read_ttft_s']:.3f} s full read"),
        ("reopen_ttft_ratio", f"{r['reopen_ttft_ratio']:.3f}",
         f"TTFT {o['ttft_s']:.3f} s restored vs {o['without_session_ttft_s']:.3f} s"),
        ("max_stall_ms", f"{r['max_stall_ms']:.1f}",
         f"stop in prompt {r['stream']['app']['stop_in_prompt_ms']:.0f} ms, "
         f"in stream {r['stream']['app']['stop_in_stream_ms']:.0f} ms"),
        ("open_long_chat_ms", f"{r['open_long_chat_ms']:.1f}",
         f"{r['open_long_chat']['messages']} messages, request to first paint; "
         f"runs {r['open_long_chat']['runs_ms']}"),
    ]
    return "\n".join(f"{name:<24} {value:>8}   {detail}" for name, value, detail in rows)


def main(argv: list[str]) -> int:
    """For `python bench/engine_bench.py …`."""
    import argparse

    parser = argparse.ArgumentParser(prog="bench/engine_bench.py")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", *argv])
    return args.handler(args)
