"""Run a model on a built llama.cpp runtime and print what happened, as one JSON line.

Run by a runtime's own Python (`build/runtimes/<runtime>-<os>-py3XY/venv`, made by
`packaging/build.py`), not by pytest: that environment holds the llama.cpp to be bundled, and
the test environment's llama.cpp must not be loaded into the same process.
`tests/packaging/test_runtime_bundle.py` starts it and compares the runs.

    python runtime_probe.py MODEL [--cpu-only] [--gpu-layers N] [--cpu-moe N] [--tokens N]
    python runtime_probe.py MODEL --engine [--wrap "qemu-x86_64 -cpu Haswell"] ...

Without --engine the model is loaded in this process, with llama.cpp's log collected, so the
output says where llama.cpp put each layer and tensor; with --engine it goes through the app's
own engine child (`LocalEngine`), started through `--wrap` when given (multiprocessing starts
the child with that command in front of this Python), so the child runs on an emulated CPU.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing
import os
import stat
import sys
import tempfile
import threading
from pathlib import Path

PROMPT = "The harbour at dawn"
_KEEP: list[object] = []  # ctypes callbacks llama.cpp holds on to


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--cpu-only", action="store_true", help="load only the CPU variant")
    parser.add_argument("--gpu-layers", type=int, default=-1)
    parser.add_argument("--cpu-moe", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=12)
    parser.add_argument("--engine", action="store_true", help="through the app's engine child")
    parser.add_argument("--wrap", default="", help="command the engine child is started with")
    return parser.parse_args(argv)


def _in_process(args: argparse.Namespace) -> dict:
    import llama_cpp

    from app.core.engine.devices import cpu_variant, enumerate_runtime, load_backends
    from app.core.engine.expert_offload import expert_patterns, tensors_in_ram

    load_backends(cpu_only=args.cpu_only)
    runtime = enumerate_runtime()
    logged = collect_llama_log()
    with tensors_in_ram(expert_patterns(args.cpu_moe)):
        llm = llama_cpp.Llama(
            model_path=args.model,
            n_ctx=256,
            n_gpu_layers=args.gpu_layers,
            seed=1,
            logits_all=True,  # llm.scores is filled only then (llama-cpp-python 0.3)
            verbose=True,
        )
    ids, first = _greedy(llm, args.tokens)
    lines = "".join(logged).splitlines()
    return {
        "ids": ids,
        "first_logits": first,
        "cpu_variant": cpu_variant(),
        "backends": [b.name for b in runtime.backends],
        "devices": [
            {"backend": d.backend, "name": d.name, "description": d.description}
            for d in runtime.devices
        ],
        "offloaded": [line.strip() for line in lines if "offloaded" in line],
        "buffers": [line.strip() for line in lines if "model buffer size" in line],
        "overridden": sorted(line.split()[1] for line in lines if "buffer type overridden" in line),
    }


def collect_llama_log() -> list[str]:
    """From now on llama.cpp's log lines go into the list returned (and not to stderr)."""
    import llama_cpp

    logged: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(_level: int, text: bytes, _data: object) -> None:
        logged.append(text.decode("utf-8", "replace"))

    # llama.cpp keeps the pointer and logs again when the model is freed at exit
    _KEEP.append(collect)
    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    return logged


def _greedy(llm, n: int) -> tuple[list[int], list[float]]:
    """n greedy ids after PROMPT, and the logits the first one was chosen from."""
    llm.reset()
    llm.eval(llm.tokenize(PROMPT.encode()))
    ids: list[int] = []
    first: list[float] = []
    for _ in range(n):
        row = llm.scores[llm.n_tokens - 1]
        if not first:
            first = [float(x) for x in row]
        ids.append(int(row.argmax()))
        llm.eval([ids[-1]])
    return ids, first


def _wrapper(command: str) -> str:
    """A script that runs this Python under `command`: multiprocessing starts children with
    the executable it is given, so the engine child runs on the emulated CPU too."""
    fd, path = tempfile.mkstemp(prefix="parlor-wrap-", suffix=".sh")
    with os.fdopen(fd, "w") as out:
        out.write(f'#!/bin/sh\nexec {command} {sys.executable} "$@"\n')
    os.chmod(path, stat.S_IRWXU)
    return path


def _through_engine(args: argparse.Namespace) -> dict:
    from app.core.engine import LoadParams, SamplingParams
    from app.core.engine.local import LocalEngine

    wrapper = _wrapper(args.wrap) if args.wrap else None
    if wrapper:
        multiprocessing.set_executable(wrapper)
    log = Path(tempfile.mkdtemp()) / "child.log"
    engine = LocalEngine(stderr_path=str(log))
    try:
        info = engine.load(
            LoadParams(
                model_path=args.model,
                n_ctx=256,
                n_gpu_layers=0 if args.cpu_only else args.gpu_layers,
                n_cpu_moe=args.cpu_moe,
            )
        )
        greedy = SamplingParams(max_tokens=args.tokens, temperature=0.0, seed=1)
        text = "".join(engine.stream(PROMPT, greedy, threading.Event()))
    finally:
        engine.unload()
        if wrapper:
            os.unlink(wrapper)
    # ggml logs the library it loaded: which CPU variant the child chose, on its own CPU
    loaded = [ln for ln in log.read_text().splitlines() if "loaded CPU backend from" in ln]
    variant = loaded[-1].rsplit("libggml-cpu-", 1)[-1].split(".")[0] if loaded else None
    return {
        "text": text,
        "effective": info.effective,
        "warnings": info.warnings,
        "child_cpu_variant": variant,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    result = _through_engine(args) if args.engine else _in_process(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
