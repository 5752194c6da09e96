"""The CUDA toolkit root build.py assembles from NVIDIA's wheels (packaging/cuda_toolkit.py).

The symlink layout and the driver's link stub are made for real here, from a small stand-in
for the wheels' tree and for cuda.h; the stub is compiled with the system's C compiler and
read back with binutils. The last test runs the real nvcc of a built `cuda` runtime and is
skipped, saying so, without one.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))
try:
    import cuda_toolkit
finally:
    sys.path.pop(0)

needs_cc = pytest.mark.skipif(
    not (shutil.which("cc") and shutil.which("readelf") and shutil.which("nm")),
    reason="needs a C compiler and binutils (readelf, nm)",
)

# What the real cuda.h does: macros that rename functions to their versioned symbols, and
# typedefs of callbacks that are not functions of the library.
CUDA_H = """
#define cuMemAlloc cuMemAlloc_v2
typedef int CUresult;
typedef void (*CUhostFn)(void *userData);
CUresult cuInit(unsigned int Flags);
CUresult cuMemAlloc(void **dptr, unsigned long bytesize);
CUresult cuMemCreate(void *handle, unsigned long size, const void *prop,
                     unsigned long long flags);
"""


def _wheel_tree(tmp_path: Path) -> Path:
    """site-packages with the files of nvidia/cu13 that the toolkit root links."""
    site = tmp_path / "site-packages"
    tree = cuda_toolkit.wheel_tree(site)
    for folder in ("bin/crt", "include", "lib/cmake/cub", "nvvm/bin"):
        (tree / folder).mkdir(parents=True)
    (tree / "bin/nvcc").write_text("#!/bin/sh\n")
    (tree / "include/cuda.h").write_text(CUDA_H)
    for name in ("libcudart.so.13", "libcublas.so.13", "libcudart_static.a"):
        (tree / "lib" / name).write_bytes(name.encode())
    return site


def _readelf(path: Path) -> str:
    return subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout


@needs_cc
def test_the_driver_stub_exports_cuda_h_functions_under_their_symbol_names(tmp_path):
    header = tmp_path / "cuda.h"
    header.write_text(CUDA_H)
    assert cuda_toolkit.driver_functions(header) == ["cuInit", "cuMemAlloc_v2", "cuMemCreate"]
    stub = cuda_toolkit.write_driver_stub(header, tmp_path / "stubs" / "libcuda.so")
    assert "Library soname: [libcuda.so.1]" in _readelf(stub)
    exported = subprocess.run(
        ["nm", "-D", "--defined-only", str(stub)], capture_output=True, text=True
    ).stdout
    assert {"cuInit", "cuMemAlloc_v2", "cuMemCreate"} <= {
        ln.split()[-1] for ln in exported.split("\n") if ln
    }


@needs_cc
def test_a_library_linked_against_the_stub_asks_for_the_drivers_soname(tmp_path):
    """What ggml-cuda gets: NEEDED libcuda.so.1, the name the user's driver installs."""
    header = tmp_path / "cuda.h"
    header.write_text(CUDA_H)
    stubs = tmp_path / "stubs"
    cuda_toolkit.write_driver_stub(header, stubs / "libcuda.so")
    user = tmp_path / "user.c"
    user.write_text(
        "int cuMemCreate(void *, unsigned long, const void *, unsigned long long);\n"
        "int pool(void) { return cuMemCreate(0, 0, 0, 0); }\n"
    )
    out = tmp_path / "libuser.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-o", str(out), str(user), f"-L{stubs}", "-lcuda"], check=True
    )
    assert "Shared library: [libcuda.so.1]" in _readelf(out)


def test_a_header_without_the_driver_api_is_refused(tmp_path):
    if not shutil.which("cc"):
        pytest.skip("needs a C compiler")
    header = tmp_path / "cuda.h"
    header.write_text("int cuInit(unsigned int);\n")
    with pytest.raises(ValueError, match="no cuMemCreate"):
        cuda_toolkit.write_driver_stub(header, tmp_path / "libcuda.so")


@needs_cc
def test_the_toolkit_root_has_the_layout_find_cuda_toolkit_and_nvcc_expect(tmp_path):
    site = _wheel_tree(tmp_path)
    tree = cuda_toolkit.wheel_tree(site)
    root = cuda_toolkit.assemble(site, tmp_path / "toolkit")
    # nvcc looks for its libraries at bin/../lib64, which the kernel resolves: bin is a real
    # folder of links, so `..` is the root and not the wheels' tree (which has only lib/)
    assert (root / "bin").is_dir() and not (root / "bin").is_symlink()
    assert (root / "bin/nvcc").resolve() == (tree / "bin/nvcc").resolve()
    assert Path(os.path.realpath(root / "bin" / "..")) == root.resolve()
    assert (root / "bin/crt").resolve() == (tree / "bin/crt").resolve()
    # find_library wants libX.so; the wheels have only libX.so.13
    assert (root / "lib64/libcudart.so").read_bytes() == b"libcudart.so.13"
    assert os.readlink(root / "lib64/libcudart.so") == "libcudart.so.13"
    assert (root / "lib64/libcudart_static.a").exists()
    assert (root / "lib/libcublas.so").read_bytes() == b"libcublas.so.13"  # lib -> lib64
    assert (root / "include/cuda.h").read_text() == CUDA_H
    assert (root / "lib64/cmake/cub").is_dir() and (root / "nvvm/bin").is_dir()
    assert "libcuda.so.1" in _readelf(root / "lib64/stubs/libcuda.so")
    # the stub stays in the build folder: the bundle takes only the runtime libraries
    assert [p.name for p in cuda_toolkit.runtime_libraries(site)] == [
        "libcublas.so.13",
        "libcudart.so.13",
    ]
    # a second assembly replaces the first
    assert cuda_toolkit.assemble(site, root) == root and (root / "lib64/libcudart.so").exists()


def test_without_the_compiler_wheels_it_says_which_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="nvidia-cuda-nvcc~=13.0.0"):
        cuda_toolkit.assemble(tmp_path / "site-packages", tmp_path / "toolkit")


def _built_toolkit() -> Path | None:
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    root = ROOT / "build" / "runtimes" / f"cuda-{sys.platform}-{tag}" / "cuda-toolkit"
    return root if (root / "bin" / "nvcc").exists() else None


@pytest.mark.skipif(
    _built_toolkit() is None,
    reason="no cuda runtime built: run `python packaging/build.py --runtime cuda` first",
)
def test_the_assembled_nvcc_is_the_pinned_cuda_release():
    toolkit = _built_toolkit()
    done = subprocess.run(
        [str(toolkit / "bin/nvcc"), "--version"], capture_output=True, text=True, check=True
    )
    assert f"release {cuda_toolkit.CUDA_VERSION}," in done.stdout
    assert (toolkit / "include/cuda_runtime.h").exists()
    assert (toolkit / "include/cccl/cub/cub.cuh").exists()  # CCCL, which ggml-cuda includes
    assert (toolkit / "lib64/libcublas.so").resolve().name == "libcublas.so.13"


@needs_cc
def test_a_backend_linked_against_the_stub_is_reported_with_the_missing_driver(tmp_path):
    """What a user without the NVIDIA driver gets from `parlor devices`: ggml's loader skips
    ggml-cuda silently, so the app asks the dynamic linker why (engine/backend_problems.py)."""
    if _driver_installed():
        pytest.skip("an NVIDIA driver is installed here")
    from app.core.appdata.llama_runtime import GpuProblem  # noqa: PLC0415
    from app.core.engine.backend_problems import problems  # noqa: PLC0415

    header = tmp_path / "cuda.h"
    header.write_text(CUDA_H)
    stubs = tmp_path / "stubs"
    cuda_toolkit.write_driver_stub(header, stubs / "libcuda.so")
    backend = tmp_path / "lib" / "libggml-cuda.so"
    backend.parent.mkdir()
    source = tmp_path / "backend.c"
    source.write_text(
        "int cuInit(unsigned int);\nint ggml_backend_init(void) { return cuInit(0); }\n"
    )
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-o", str(backend), str(source), f"-L{stubs}", "-lcuda"],
        check=True,
    )
    (tmp_path / "lib" / "libggml-cpu-x64.so").write_bytes(b"")  # CPU variants are not GPU ones
    reason = (
        "CUDA (libggml-cuda.so) did not load: libcuda.so.1: cannot open shared "
        "object file: No such file or directory (no NVIDIA driver is installed)"
    )
    assert problems({"CPU": 1}, backend.parent, []) == (GpuProblem("CUDA", reason),)


def _driver_installed() -> bool:
    try:
        ctypes.CDLL(cuda_toolkit.DRIVER_SONAME)
    except OSError:
        return False
    return True
