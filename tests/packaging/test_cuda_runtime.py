"""The `cuda` llama.cpp runtime, checked as far as a machine without an NVIDIA GPU or driver can.

`python packaging/build.py --runtime cuda [--cuda-arch 89-real]` compiles llama-cpp-python with
ggml-cuda and every CPU variant into `build/runtimes/cuda-<os>-py3XY/venv` (an hour or more on
two cores with one architecture, so not in every CI run). These tests run that environment's
Python (`PARLOR_CUDA_RUNTIME_PYTHON` names another one) and are skipped, saying so, when it has
not been built.

What can be checked without the driver: that ggml-cuda needs nothing the bundle does not carry
but the driver's libcuda.so.1; that the carried libraries load; and that without the driver
the CUDA module fails to load, `parlor devices` lists only the CPU and says why, and the engine
replies on the CPU. Nothing here runs a CUDA kernel.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.engine.devices import GPU_RUNTIME_LIBRARIES
from tests.packaging.built_runtimes import (
    frozen_under_qemu,
    load_build_module,
    qemu_emulates_avx2,
    runtime_folder,
    runtime_python,
)

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("runtime_probe.py")
RUNTIME = runtime_folder("cuda")
DRIVER = "libcuda.so.1"


def _driver_installed() -> bool:
    try:
        ctypes.CDLL(DRIVER)
    except OSError:
        return False
    return True


PYTHON = runtime_python("cuda", "PARLOR_CUDA_RUNTIME_PYTHON")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PYTHON is None,
        reason="no cuda runtime built: run `python packaging/build.py --runtime cuda` first",
    ),
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="the library checks read Linux ELF files"
    ),
]
no_driver = pytest.mark.skipif(
    _driver_installed(), reason="an NVIDIA driver is installed: these check a machine without"
)


def _lib() -> Path:
    """The runtime's llama_cpp/lib, where build.py gathered ggml-cuda and the CUDA libraries."""
    code = "import llama_cpp, os; print(os.path.dirname(llama_cpp.__file__))"
    done = subprocess.run([str(PYTHON), "-c", code], capture_output=True, text=True, check=True)
    return Path(done.stdout.strip()) / "lib"


def _dynamic(path: Path) -> dict[str, list[str]]:
    """readelf -d: the NEEDED names and the RUNPATH/RPATH entries."""
    text = subprocess.run(
        ["readelf", "-d", str(path)], capture_output=True, text=True, check=True
    ).stdout
    found: dict[str, list[str]] = {"NEEDED": [], "RUNPATH": []}
    for line in text.splitlines():
        kind = "NEEDED" if "(NEEDED)" in line else "RUNPATH" if "PATH)" in line else None
        if kind:
            found[kind] += line.split("[", 1)[1].rstrip("]").split(":")
    return found


def _is_cuda(name: str) -> bool:
    return name.startswith(("libcuda", "libcublas", "libnv"))


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(PYTHON), *argv],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})),
        cwd=ROOT,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


needs_readelf = pytest.mark.skipif(not shutil.which("readelf"), reason="needs binutils")


# --- the build ---------------------------------------------------------------------------------
def test_the_runtime_passes_the_portability_check_with_ggml_cuda():
    llama_check = load_build_module().llama_check
    lib = _lib()
    build = llama_check.read_build(lib.parent.parent, lib)
    assert build.config.get("GGML_CUDA", "").upper() == "ON"
    assert llama_check.problems(build, "cuda", platform.machine()) == []
    assert "ggml-cuda" in build.modules and {"x64", "sse42", "haswell"} <= build.cpu_variants


@needs_readelf
def test_ggml_cuda_needs_only_the_bundled_cuda_libraries_and_the_driver():
    """Every CUDA library ggml-cuda (and what it links) asks for is in llama_cpp/lib and is
    one the app loads first (`preload_gpu_libraries`), except the driver's libcuda.so.1."""
    lib = _lib()
    needed = set(_dynamic(lib / "libggml-cuda.so")["NEEDED"])
    assert DRIVER in needed  # linked for ggml-cuda's virtual-memory pool
    wanted, seen = sorted(n for n in needed if _is_cuda(n) and n != DRIVER), set()
    while wanted:  # libcublas.so.13 asks for libcublasLt.so.13, and so on
        name = wanted.pop()
        seen.add(name)
        assert (lib / name).is_file(), f"{name} is not in the bundle"
        assert name.startswith(GPU_RUNTIME_LIBRARIES), f"{name} is not preloaded"
        more = _dynamic(lib / name)["NEEDED"]
        wanted += [n for n in more if _is_cuda(n) and n != DRIVER and n not in seen]
    assert {n.split(".so")[0] for n in seen} == {"libcudart", "libcublas", "libcublasLt"}
    # the link stub in the build folder must never be found at run time
    for path in [lib / "libggml-cuda.so", *(lib / n for n in seen)]:
        assert not any("cuda-toolkit" in p or "stubs" in p for p in _dynamic(path)["RUNPATH"])
    assert not list(lib.glob("libcuda.so*"))


def test_the_bundled_cuda_libraries_load_without_the_driver():
    code = (
        "import json; from pathlib import Path; from app.core.engine.devices import "
        "lib_dir, preload_gpu_libraries; "
        "print(json.dumps([p.name for p in preload_gpu_libraries(lib_dir())]))"
    )
    loaded = json.loads(_run(["-c", code]).stdout)
    assert [n.split(".so")[0] for n in loaded] == ["libcudart", "libcublasLt", "libcublas"]


# --- without the driver ---------------------------------------------------------------------
@no_driver
def test_without_the_driver_parlor_devices_lists_the_cpu_and_says_why():
    done = _run(["-m", "app", "devices", "--json"])
    found = json.loads(done.stdout)
    assert [d["backend"] for d in found["devices"]] == ["CPU"]
    assert [b["name"] for b in found["backends"]] == ["CPU"]
    assert found["gpu_offload"] is False  # so no GPU layers are claimed or counted
    (problem,) = found["gpu_problems"]  # what the download dialog and `parlor devices` show
    assert problem["backend"] == "CUDA"
    assert problem["reason"].startswith("CUDA (libggml-cuda.so) did not load: libcuda.so.1: ")
    assert problem["reason"].endswith("(no NVIDIA driver is installed)")
    assert problem["reason"] in done.stderr  # and parlor.log, from the engine's child


@no_driver
def test_without_the_driver_the_engine_replies_on_the_cpu(tiny_llama_path):
    """The window asks for every layer on the GPU; with no CUDA device they run on the CPU
    and the reply is the CPU-only one."""
    probe = [str(PROBE), str(tiny_llama_path), "--engine"]
    cpu = json.loads(_run([*probe, "--cpu-only"]).stdout)
    asked = json.loads(_run([*probe, "--gpu-layers", "-1"]).stdout)
    assert cpu["text"].strip() and asked["text"] == cpu["text"]
    assert asked["effective"]["gpu_offload"] is False
    assert asked["child_cpu_variant"]  # ggml loaded a CPU variant in the engine's child


# --- with a driver too old for CUDA 13 -------------------------------------------------------
def _old_driver(folder: Path) -> Path:
    """A stand-in libcuda.so.1 that says it is driver 12.4 (CUDA 13 needs 580, which is 13.0):
    every function of the runtime's cuda.h, failing, but cuInit and cuDriverGetVersion. The
    CUDA runtime then refuses exactly as on a machine with that driver."""
    header = next((_lib().parents[1] / "nvidia").glob("cu*/include/cuda.h"))
    cuda_toolkit = load_build_module().llama_runtimes.cuda_toolkit
    kept = {
        "cuInit": "(unsigned f) { return 0; }",
        "cuDriverGetVersion": "(int *v) { *v = 12040; return 0; }",
    }
    names = cuda_toolkit.driver_functions(header)
    lines = [f"int {n}(void) {{ return 999; }}" for n in names if n not in kept]
    source = folder / "old_driver.c"
    source.write_text("\n".join(lines + [f"int {n}{body}" for n, body in kept.items()]))
    out = folder / DRIVER
    subprocess.run(
        ["cc", "-shared", "-fPIC", f"-Wl,-soname,{DRIVER}", "-o", str(out), str(source)],
        check=True,
    )
    return folder


needs_cc = pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")


@no_driver
@needs_cc
def test_with_an_old_driver_parlor_devices_says_which_driver_cuda_needs(tmp_path):
    """cudart loads, finds the driver too old and ggml-cuda registers with no device: without
    the log ggml writes then, the window would only say "CPU only"."""
    env = {"LD_LIBRARY_PATH": str(_old_driver(tmp_path))}
    found = json.loads(_run(["-m", "app", "devices", "--json"], env).stdout)
    assert [b["name"] for b in found["backends"]] == ["CUDA", "CPU"]
    assert [b["devices"] for b in found["backends"]] == [0, 1]
    assert found["gpu_offload"] is False
    assert found["gpu_problems"] == [
        {
            "backend": "CUDA",
            "reason": "CUDA found no GPU: failed to initialize CUDA: CUDA driver version is "
            "insufficient for CUDA runtime version (update the NVIDIA driver: this build's "
            "CUDA 13 needs version 580 or newer)",
        }
    ]


@no_driver
@needs_cc
def test_with_an_old_driver_the_engine_replies_on_the_cpu_and_says_why(tmp_path, tiny_llama_path):
    env = {"LD_LIBRARY_PATH": str(_old_driver(tmp_path))}
    probe = [str(PROBE), str(tiny_llama_path), "--engine"]
    cpu = json.loads(_run([*probe, "--cpu-only"]).stdout)
    asked = json.loads(_run([*probe, "--gpu-layers", "-1"], env).stdout)
    assert asked["text"] == cpu["text"]
    assert asked["effective"]["gpu_problems"] == ["CUDA"]  # "CPU only (CUDA did not start)"
    assert any("580 or newer" in w for w in asked["warnings"])


# --- the frozen bundle ------------------------------------------------------------------------
def _bundle() -> Path | None:
    """PARLOR_CUDA_BUNDLE, else the folder `build.py --runtime cuda --dist build/cuda-dist`
    froze."""
    folder = Path(os.environ.get("PARLOR_CUDA_BUNDLE", ROOT / "build" / "cuda-dist" / "parlor"))
    return folder if (folder / "_internal/llama_cpp/lib/libggml-cuda.so").exists() else None


needs_bundle = pytest.mark.skipif(
    _bundle() is None, reason="no bundle frozen from the cuda runtime (packaging/build.py)"
)


@needs_bundle
def test_the_bundle_carries_ggml_cuda_and_the_cuda_libraries_as_built():
    bundled, lib = _bundle() / "_internal" / "llama_cpp" / "lib", _lib()
    names = ["libggml-cuda.so", "libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13"]
    for name in names:
        assert (bundled / name).read_bytes() == (lib / name).read_bytes(), name
    assert not list(bundled.glob("libcuda.so*"))  # the driver is the user's


@needs_bundle
@no_driver
def test_the_frozen_app_lists_the_cpu_and_says_why_cuda_is_missing():
    bundle = _bundle()
    done = subprocess.run(
        [str(bundle / "parlor"), "devices", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    found = json.loads(done.stdout)
    assert [d["backend"] for d in found["devices"]] == ["CPU"]
    (problem,) = found["gpu_problems"]
    assert problem["reason"].endswith("(no NVIDIA driver is installed)")  # PyInstaller's
    assert problem["reason"] in done.stderr  # ctypes words it differently: its cause is kept


@needs_bundle
@no_driver
@needs_cc
def test_the_frozen_app_says_which_driver_cuda_needs(tmp_path):
    """ggml's log is recorded through llama-cpp-python's logger in the frozen app too."""
    done = subprocess.run(
        [str(_bundle() / "parlor"), "devices", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env=dict(os.environ, LD_LIBRARY_PATH=str(_old_driver(tmp_path))),
    )
    (problem,) = json.loads(done.stdout)["gpu_problems"]
    assert problem["backend"] == "CUDA"
    assert "CUDA 13 needs version 580 or newer" in problem["reason"]


@needs_bundle
@no_driver
@pytest.mark.skipif(not qemu_emulates_avx2(), reason="needs qemu-user 7.2 or newer")
@pytest.mark.parametrize(("cpu", "variant"), [("Haswell", "haswell"), ("Nehalem", "sse42")])
def test_the_frozen_cuda_app_picks_the_variant_an_older_cpu_can_run(cpu, variant):
    """The CUDA bundle carries the same CPU variants as the Vulkan one: on a machine without
    the driver they are what runs, on any x86-64 CPU."""
    found = json.loads(frozen_under_qemu(_bundle(), cpu, dict(os.environ), "devices", "--json"))
    assert next(b for b in found["backends"] if b["name"] == "CPU")["variant"] == variant
    assert [p["backend"] for p in found["gpu_problems"]] == ["CUDA"]
