"""Benchmark: a frozen bundle's size, by part, and its start-up time.

    parlor bench --only bundle [--bundle dist/parlor] [--json]

Size: the one-folder build and what its llama.cpp runtime adds (each CPU variant, the GPU
backend, the CUDA libraries a CUDA bundle carries), and the installers beside it in dist/.
Start-up, each over ROUNDS runs of the bundle's own executable (wall-clock, median and
range): `--version` (the frozen Python and the app's imports), `devices --json` (llama.cpp
loaded, every backend registered and its devices enumerated: what the quant picker waits
for), and `--smoke-test` on a tiny generated model (the window opened offscreen, the model
loaded, one reply streamed, the window closed).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROUNDS = 5
GROUPS = {  # llama_cpp/lib file name prefix -> part
    "libggml-cpu-": "cpu variants",
    "ggml-cpu-": "cpu variants",
    "libggml-vulkan": "vulkan backend",
    "ggml-vulkan": "vulkan backend",
    "libggml-cuda": "cuda backend",
    "ggml-cuda": "cuda backend",
    "libcudart": "cuda runtime and cublas",
    "libcublas": "cuda runtime and cublas",
    "cudart64": "cuda runtime and cublas",
    "cublas": "cuda runtime and cublas",
    "libggml-metal": "metal backend",
}


def executable(bundle: Path) -> Path:
    for name in ("parlor", "parlor.exe", "Contents/MacOS/parlor"):
        if (bundle / name).is_file():
            return bundle / name
    raise FileNotFoundError(f"no parlor executable in {bundle}: build it with packaging/build.py")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def sizes(bundle: Path) -> dict:
    lib = next(bundle.rglob("llama_cpp/lib"), None)
    parts: dict[str, int] = {}
    variants: dict[str, int] = {}
    for path in sorted(lib.iterdir()) if lib else []:
        if not path.is_file() or path.is_symlink():
            continue
        part = next((g for p, g in GROUPS.items() if path.name.startswith(p)), "llama.cpp core")
        parts[part] = parts.get(part, 0) + path.stat().st_size
        if part == "cpu variants":
            variants[path.name] = path.stat().st_size
    installers = {
        p.name: p.stat().st_size
        for p in sorted(bundle.parent.iterdir())
        if p.suffix in (".deb", ".gz", ".exe", ".dmg") and p.is_file()
    }
    return {
        "bundle_mb": round(_size(bundle) / 1e6, 1),
        "llama_cpp_mb": {k: round(v / 1e6, 1) for k, v in sorted(parts.items())},
        "cpu_variant_mb": {k: round(v / 1e6, 2) for k, v in variants.items()},
        "installers_mb": {k: round(v / 1e6, 1) for k, v in installers.items()},
    }


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout


def _spread(values: list[float]) -> dict:
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
        "rounds": len(values),
    }


def startup(exe: Path, rounds: int = ROUNDS) -> dict:
    sys.path.insert(0, str(REPO))
    from bench.bench_model import TINY, write_bench_model

    work = Path(tempfile.mkdtemp(prefix="parlor-bundle-bench-"))
    model = write_bench_model(work / "tiny.gguf", TINY)
    env = dict(os.environ, PARLOR_HOME=str(work / "home"), QT_QPA_PLATFORM="offscreen")
    commands = {
        "version": [str(exe), "--version"],
        "devices": [str(exe), "devices", "--json"],
        "smoke_test": [str(exe), "--smoke-test", "--model", str(model), "--max-tokens", "8"],
    }
    result: dict = {}
    for name, argv in commands.items():
        times, out = [], ""
        for _ in range(rounds):
            elapsed, out = _timed(argv, env)
            times.append(elapsed)
        result[name] = _spread(times)
        if name == "devices":
            found = json.loads(out)
            result["devices_found"] = [
                f"{d['backend']}: {d['description']}" for d in found["devices"]
            ]
            result["cpu_variant"] = next(
                (b.get("variant") for b in found["backends"] if b["name"] == "CPU"), None
            )
    return result


def run(bundle: Path | None = None, quick: bool = False) -> dict:
    bundle = (bundle or REPO / "dist" / "parlor").resolve()
    exe = executable(bundle)
    return {"bundle": str(bundle.name), **sizes(bundle), **startup(exe, 1 if quick else ROUNDS)}


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]) if len(sys.argv) > 1 else None)))
