"""The CUDA toolkit the `cuda` runtime is compiled with, put together from NVIDIA's PyPI wheels.

CUDA 12's wheels hold no compiler: `nvidia-cuda-nvcc-cu12` has only `ptxas`, `libnvvm` and
libdevice, no `nvcc` driver, `cicc`, `cudafe++`, `fatbinary` or `nvlink` (checked on releases
12.0 to 12.9), and no other cu12 wheel has them. CUDA 13's wheels have the
whole compiler (`nvidia-cuda-nvcc` with `nvidia-cuda-crt` and `nvidia-nvvm`), so the runtime is
built with CUDA 13, every wheel pinned to one minor so their versions match.

They all unpack into one tree, `site-packages/nvidia/cu13` (bin, include, lib, nvvm). On Linux
CMake's FindCUDAToolkit cannot use it as it is: the libraries are there only as `libX.so.13`
(no `libX.so` for find_library), and no wheel has the driver's link stub `libcuda.so`, which
ggml-cuda links for its virtual-memory pool (`cuMemCreate` and friends, unless
`GGML_CUDA_NO_VMM`). So `assemble` makes a toolkit root of symlinks beside the build, with the
unversioned names and a stub `libcuda.so` made from `cuda.h`: a library that exports every
driver function, empty, with the driver's SONAME `libcuda.so.1`, as the stub in NVIDIA's own
toolkit is. It is used only for linking, never bundled; at run time ggml-cuda gets the user's
driver. On Windows the tree is a toolkit root already (`lib/x64/cuda.lib` is in the runtime
wheel).

    python cuda_toolkit.py SITE_PACKAGES ROOT     # what build.py runs after installing WHEELS
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CUDA_VERSION = "13.0"
WHEEL_NAMES = (
    "nvidia-cuda-nvcc",
    "nvidia-cuda-crt",
    "nvidia-nvvm",
    "nvidia-cuda-cccl",  # CUB and thrust, which ggml-cuda includes
    "nvidia-cuda-runtime",
    "nvidia-cublas",
)
WHEELS = tuple(f"{name}~={CUDA_VERSION}.0" for name in WHEEL_NAMES)

# What ggml-cuda links, and so what the bundle carries beside it: the CUDA runtime and cuBLAS
# (with cublasLt, which cuBLAS loads). Linux names, then Windows'.
RUNTIME_PREFIXES = ("libcudart.so", "libcublas.so", "libcublasLt.so")
RUNTIME_DLL_PREFIXES = ("cudart64_", "cublas64_", "cublasLt64_")
DRIVER_SONAME = "libcuda.so.1"


def wheel_tree(site_packages: Path) -> Path:
    """Where the CUDA wheels unpack: site-packages/nvidia/cu13."""
    return site_packages / "nvidia" / f"cu{CUDA_VERSION.split('.')[0]}"


def runtime_libraries(site_packages: Path) -> list[Path]:
    """The CUDA runtime and cuBLAS files the bundle needs, from the installed wheels."""
    tree = wheel_tree(site_packages)
    found = [p for p in _files(tree / "lib") if _is_runtime(p.name, RUNTIME_PREFIXES)]
    return found + [
        p for p in _files(tree / "bin" / "x86_64") if _is_runtime(p.name, RUNTIME_DLL_PREFIXES)
    ]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def _is_runtime(name: str, prefixes: tuple[str, ...]) -> bool:
    """libcudart.so.13 or cublas64_13.dll; not the static archives nor libnvblas."""
    shared = re.search(r"\.so\.\d+$", name) or name.endswith(".dll")
    return bool(shared) and name.startswith(prefixes)


def cmake_env(root: Path, windows: bool = False) -> dict[str, str]:
    """The variables that point CMake's CUDA support at the toolkit root."""
    nvcc = root / "bin" / ("nvcc.exe" if windows else "nvcc")
    return {"CUDACXX": str(nvcc), "CUDAToolkit_ROOT": str(root)}


def assemble(site_packages: Path, root: Path, cc: str = "cc") -> Path:
    """Make `root` a CUDA toolkit FindCUDAToolkit accepts, from the wheels' tree (Linux)."""
    tree = wheel_tree(site_packages)
    if not (tree / "bin" / "nvcc").exists():
        raise FileNotFoundError(f"no nvcc in {tree}: install {' '.join(WHEELS)} first")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    # nvcc finds its libraries as bin/../lib64, resolved by the kernel: bin must be a real
    # folder here, or `..` is the wheels' tree, which has only lib
    link_each(tree / "bin", root / "bin")
    for name in ("include", "nvvm"):
        (root / name).symlink_to(tree / name, target_is_directory=True)
    link_each(tree / "lib", root / "lib64", unversioned=True)
    (root / "lib").symlink_to("lib64", target_is_directory=True)
    write_driver_stub(tree / "include" / "cuda.h", root / "lib64" / "stubs" / "libcuda.so", cc)
    return root


def link_each(source: Path, dest: Path, unversioned: bool = False) -> None:
    """Link every entry of `source` into dest; with `unversioned`, `libX.so.N` as `libX.so`
    too (the name find_library and the linker look for)."""
    dest.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        (dest / path.name).symlink_to(path)
        plain = re.sub(r"\.so\.\d+$", ".so", path.name)
        if unversioned and plain != path.name and not (dest / plain).exists():
            (dest / plain).symlink_to(path.name)


def driver_functions(cuda_h: Path, cc: str = "cc") -> list[str]:
    """The driver API's exported names, as cuda.h declares them after its macros
    (`cuMemAlloc` is the symbol `cuMemAlloc_v2`)."""
    done = subprocess.run(
        [cc, "-E", "-P", "-x", "c", f"-I{cuda_h.parent}", str(cuda_h)],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(set(re.findall(r"\b(cu[A-Z]\w*)\s*\(", done.stdout)))


def write_driver_stub(cuda_h: Path, out: Path, cc: str = "cc") -> Path:
    """A link-time stand-in for the driver: every function, empty, SONAME libcuda.so.1."""
    names = driver_functions(cuda_h, cc)
    if "cuMemCreate" not in names:
        raise ValueError(f"{cuda_h} declares no cuMemCreate: not the driver API header")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "libcuda_stub.c"
        source.write_text("".join(f"void {n}(void) {{}}\n" for n in names), encoding="utf-8")
        soname = f"-Wl,-soname,{DRIVER_SONAME}"
        subprocess.run([cc, "-shared", "-fPIC", soname, "-o", str(out), str(source)], check=True)
    return out


def main(argv: list[str]) -> int:
    site_packages, root = (Path(a) for a in argv)
    print(f"CUDA {CUDA_VERSION} toolkit root: {assemble(site_packages, root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
