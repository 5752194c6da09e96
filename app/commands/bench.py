"""`parlor bench [--model PATH] [--json] [--quick] [--only NAME,…]`: the benchmarks of bench/.

The benchmark code lives in the repository's bench/ folder (it drives the GUI path and
plain llama-cpp-python side by side), not in the installed package, so this command runs
from a source checkout. Every reply's llama.cpp performance report goes to parlor.log in
the logs folder (PARLOR_HOME is honoured), so the figures can be checked there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="measure the engine: streaming overhead, "
        "follow-up and reopen time to first token, GUI stalls",
    )
    p.add_argument("--model", help="GGUF file (default: a generated model)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="small sizes, for tests")
    p.add_argument("--n-ctx", type=int, help="context size (default 4096; --quick 2048)")
    p.add_argument("--n-gpu-layers", type=int, default=0, help="layers on the GPU (-1: all)")
    p.add_argument("--threads", type=int, help="CPU threads (default: llama.cpp's choice)")
    p.add_argument(
        "--bundle", type=Path, help="frozen one-folder build for `bundle` (default dist/parlor)"
    )
    p.add_argument(
        "--only",
        help="comma-separated benchmarks to run: "
        + ", ".join(BENCHMARKS)
        + " (default: all but "
        + ", ".join(ON_REQUEST)
        + ")",
    )
    p.set_defaults(handler=run_bench)


# name → the function of bench/ that runs it: (modules, args, model) -> figures to merge
BENCHMARKS = {
    "engine": lambda m, a, model: m.engine_bench.run(
        model, quick=a.quick, n_ctx=a.n_ctx, n_gpu_layers=a.n_gpu_layers, n_threads=a.threads
    ),
    "open_long_chat": lambda m, a, _model: _open_long_chat(m.open_chat, a.quick),
    "overflow": lambda m, a, model: {
        "overflow": m.overflow.run(
            model, quick=a.quick, n_gpu_layers=a.n_gpu_layers, n_threads=a.threads
        )
    },
    "prompt_build": lambda m, a, _model: m.prompt_bench.run(quick=a.quick),
    "sessions": lambda m, a, model: {
        "sessions": m.sessions.run(
            model, quick=a.quick, n_gpu_layers=a.n_gpu_layers, n_threads=a.threads
        )
    },
    "worldinfo": lambda m, a, _model: m.worldinfo_bench.measure(turns=5 if a.quick else 30),
    "imports": lambda m, a, _model: {"imports": m.import_bench.run(quick=a.quick)},
    "gui_scale": lambda m, a, _model: {"gui_scale": m.gui_scale.run(quick=a.quick)},
    "bundle": lambda m, a, _model: {"bundle": m.bundle_bench.run(a.bundle, quick=a.quick)},
}
# Run only when named: it measures a frozen bundle, which packaging/build.py makes first.
ON_REQUEST = ("bundle",)


def _open_long_chat(open_chat, quick: bool) -> dict:
    opened = open_chat.measure(1_000 if quick else 10_000, repeats=1 if quick else 3)
    return {"open_long_chat": opened, "open_long_chat_ms": opened["open_long_chat_ms"]}


def _selected(only: str | None) -> list[str]:
    names = [n.strip() for n in (only or "").split(",") if n.strip()] or [
        n for n in BENCHMARKS if n not in ON_REQUEST
    ]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(
            f"unknown benchmark {', '.join(unknown)}; choose from " + ", ".join(BENCHMARKS)
        )
    return names


def _import_bench():
    if not (REPO / "bench" / "engine_bench.py").is_file():
        raise ImportError("parlor bench needs the source checkout (the bench/ folder)")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import types

    from bench import (
        bundle_bench,
        engine_bench,
        gui_scale,
        import_bench,
        open_chat,
        overflow,
        prompt_bench,
        sessions,
        worldinfo_bench,
    )

    return types.SimpleNamespace(
        bundle_bench=bundle_bench,
        engine_bench=engine_bench,
        import_bench=import_bench,
        gui_scale=gui_scale,
        open_chat=open_chat,
        overflow=overflow,
        prompt_bench=prompt_bench,
        sessions=sessions,
        worldinfo_bench=worldinfo_bench,
    )


def _log_to_parlor_log() -> None:
    from app.core.appdata.logs import setup_logging
    from app.core.appdata.paths import default_paths

    setup_logging(default_paths().logs)


def run_bench(args) -> int:
    try:
        modules = _import_bench()
        names = _selected(args.only)
    except (ImportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.model and not Path(args.model).is_file():
        print(f"error: {args.model} is not a file", file=sys.stderr)
        return 2
    _log_to_parlor_log()
    result: dict = {}
    for name in names:
        result.update(BENCHMARKS[name](modules, args, args.model))
    if "machine" not in result:
        result["machine"] = modules.engine_bench.machine()
    if args.json:
        print(json.dumps(result))
    else:
        print(_table(result))
    return 0


def _table(r: dict) -> str:
    rows = _engine_rows(r) if "stream_ratio" in r else []
    for size, g in r.get("gui_scale", {}).items():
        rows.append(
            (
                f"gui_scale {size}",
                f"{g['worst_blocked_ms']:.1f}",
                "ms longest GUI-thread block ("
                + ", ".join(
                    f"{k} {v['blocked_ms']:.0f}" for k, v in g.items() if isinstance(v, dict)
                )
                + f"; medians of {g['rounds']} rounds)",
            )
        )
    if "imports" in r:
        i = r["imports"]
        rows.append(
            (
                "import_blocked_ms",
                f"{i['background']['blocked_ms']:.1f}",
                f"longest GUI-thread block importing a {i['messages']}-message chat "
                f"({i['file_mb']} MB; runs {i['background']['blocked_runs_ms']}); on the GUI "
                f"thread {i['gui_thread']['blocked_ms']:.0f} ms",
            )
        )
    if "worldinfo" in r:
        w = r["worldinfo"]
        rows.append(
            (
                "worldinfo_ms",
                f"{r['worldinfo_ms']:.1f}",
                f"{w['entries']} entries over {w['scan_window']} messages, median of "
                f"{w['turns']} turns (slowest {w['max_ms']:.0f}, reasons "
                f"{w['trace_median_ms']:.1f} more when shown)",
            )
        )
    if "open_long_chat" in r:
        rows.append(
            (
                "open_long_chat_ms",
                f"{r['open_long_chat_ms']:.1f}",
                f"{r['open_long_chat']['messages']} messages, request to first paint; "
                f"runs {r['open_long_chat']['runs_ms']}",
            )
        )
    for n_ctx, s in r.get("sessions", {}).items():
        rows.append(
            (
                f"sessions {n_ctx}",
                f"{s['reply_fraction']:.3f}",
                f"of the {s['state_bytes'] / 2**20:.1f} MB state written per reply; "
                f"blocked {s['blocked_ms']:.1f} ms, copy {s['copy_ms']:.1f} ms, "
                f"+{s['peak_extra_mb']:.0f} MB",
            )
        )
    for n_ctx, o in r.get("overflow", {}).items():
        rows.append(
            (
                f"overflow {n_ctx}",
                f"{o['evaluated_fraction']:.3f}",
                f"evaluated/prompt over {len(o['turns'])} turns past the limit; max "
                f"excess {o['max_excess']}, most in a turn {o['max_evaluated_tokens']}, "
                f"full reads {o['full_reads']}",
            )
        )
    for p in r.get("prompt_build", []):
        rows.append(
            (
                f"prompt_build {p['messages']}",
                f"{p['warm_ms']:.1f}",
                f"ms warm (median), cold {p['cold_ms']:.1f} ms, slowest warm "
                f"{p['slowest_warm_ms']:.1f} ms; {p['kept_messages']} messages fit",
            )
        )
    return "\n".join(f"{name:<24} {value:>8}   {detail}" for name, value, detail in rows)


def _engine_rows(r: dict) -> list[tuple[str, str, str]]:
    f, o = r["followup"], r["reopen"]
    return [
        (
            "stream_ratio",
            f"{r['stream_ratio']:.3f}",
            f"median of rounds; app {r['stream']['app']['tokens_per_s']:.1f} tok/s, "
            f"plain {r['stream']['plain']['tokens_per_s']:.1f} tok/s (medians)",
        ),
        (
            "followup_eval_fraction",
            f"{r['followup_eval_fraction']:.3f}",
            f"{f['evaluated']} of {f['prompt_tokens']} tokens; TTFT {f['ttft_s']:.3f} s vs "
            f"{f['full_read_ttft_s']:.3f} s full read",
        ),
        (
            "reopen_ttft_ratio",
            f"{r['reopen_ttft_ratio']:.3f}",
            f"TTFT {o['ttft_s']:.3f} s restored vs {o['without_session_ttft_s']:.3f} s",
        ),
        (
            "max_stall_ms",
            f"{r['max_stall_ms']:.1f}",
            f"stop in prompt {r['stream']['app']['stop_in_prompt_ms']:.0f} ms, "
            f"in stream {r['stream']['app']['stop_in_stream_ms']:.0f} ms",
        ),
    ]


def main(argv: list[str]) -> int:
    """For `python bench/engine_bench.py …`."""
    import argparse

    parser = argparse.ArgumentParser(prog="bench/engine_bench.py")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", *argv])
    return args.handler(args)
