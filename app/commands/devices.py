"""`parlor devices [--json]`: the backends and devices the bundled llama.cpp enumerates.

The JSON is the contract the quant picker reads (`app.core.appdata.llama_runtime`): the
window runs this command as a child process, so a GPU driver that crashes on start costs a
note, not the window.
"""

from __future__ import annotations

import argparse
import json
import sys

from app.core.appdata.llama_runtime import GB, Runtime, summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "devices",
        help="show what the bundled llama.cpp can run on",
        description="Print each backend llama.cpp loaded (the CPU variant it chose, Vulkan, "
        "CUDA, Metal) and each device with its type and free/total memory.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from app.core.engine.devices import enumerate_runtime  # noqa: PLC0415 - loads llama.cpp

    try:
        runtime = enumerate_runtime()
    except (OSError, AttributeError, RuntimeError) as exc:
        # OSError: a library missing or for another CPU; AttributeError: a libggml without
        # the device API (llama.cpp before late 2024).
        print(f"error: llama.cpp could not be loaded: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(runtime.to_json(), indent=2) if args.json else render(runtime))
    return 0


def render(runtime: Runtime) -> str:
    lines = [f"{runtime.library}: {summary(runtime)}", "", "Backends:"]
    for backend in runtime.backends:
        variant = f", variant {backend.variant}" if backend.variant else ""
        lines.append(f"  {backend.name} ({backend.devices} device(s){variant})")
        if backend.features:
            lines.append(f"    {' '.join(backend.features)}")
    lines += ["", "Devices:"]
    for d in runtime.devices:
        lines.append(
            f"  {d.name} [{d.type}, {d.backend}] {d.description}: "
            f"{d.memory_free / GB:.1f} of {d.memory_total / GB:.1f} GB free"
        )
    if not runtime.gpu_offload:
        lines += ["", "llama_supports_gpu_offload() is false: every layer runs on the CPU."]
    return "\n".join(lines)
