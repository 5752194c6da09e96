"""The llama.cpp runtimes Parlor ships, and the cached environment each is built in.

Each runtime is llama-cpp-python compiled from source with its CMake flags into a virtual
environment of its own under build/runtimes/, never the developer's Python: the bundle must
not depend on how someone once installed llama.cpp on the build machine. The environment is
kept between runs; a stamp records the llama-cpp-python version, the flags and the Python,
and while it matches, only the app itself is reinstalled (seconds, not the 5+ minutes that
compiling takes on 2 cores, many more with every CPU variant).

pip's own wheel cache is keyed by the source archive, not by CMAKE_ARGS, so a wheel built for
one runtime would be reused for another: the wheel is built with --no-cache-dir into this
runtime's own folder instead.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Every runtime carries the portable CPU backend: no -march=native, every CPU variant as a
# library of its own, the best one chosen at start (see llama_check.py).
PORTABLE = ("-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON")
CUDA_WHEELS = ("nvidia-cuda-nvcc-cu12", "nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12")


@dataclass(frozen=True)
class Recipe:
    name: str
    cmake_args: tuple[str, ...]
    user_needs: str  # what the user's machine must have at run time
    build_needs: str  # what the build machine must have
    extra_wheels: tuple[str, ...] = field(default=())  # installed into the env before compiling

    @property
    def cmake_env(self) -> str:
        return " ".join(self.cmake_args)


RECIPES = {
    "cpu": Recipe("cpu", PORTABLE, "nothing beyond the installer.", "a C++ compiler, CMake."),
    "vulkan": Recipe(
        "vulkan",
        (*PORTABLE, "-DGGML_VULKAN=ON"),
        "a GPU driver with its Vulkan loader (libvulkan.so.1 / vulkan-1.dll); without one "
        "Parlor runs on the CPU variants.",
        "Vulkan headers and the glslc shader compiler (Debian: libvulkan-dev glslc; "
        "Windows: the LunarG Vulkan SDK).",
    ),
    "cuda": Recipe(
        "cuda",
        (*PORTABLE, "-DGGML_CUDA=ON"),
        "an NVIDIA driver recent enough for CUDA 12.",
        "nothing more: nvcc, the CUDA runtime and cuBLAS come from PyPI wheels.",
        extra_wheels=CUDA_WHEELS,
    ),
    "metal": Recipe(
        "metal",
        (*PORTABLE, "-DGGML_METAL=ON", "-DGGML_METAL_EMBED_LIBRARY=ON"),
        "macOS on Apple Silicon; nothing to install.",
        "Xcode command line tools.",
    ),
}


def default_runtime(platform: str = sys.platform) -> str:
    """Metal on macOS; Vulkan (with the CPU variants) on Linux and Windows."""
    return "metal" if platform == "darwin" else "vulkan"


@dataclass(frozen=True)
class BuildEnv:
    root: Path
    windows: bool = False

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def python(self) -> Path:
        return self.venv / ("Scripts/python.exe" if self.windows else "bin/python")

    @property
    def wheels(self) -> Path:
        return self.root / "wheels"

    @property
    def stamp(self) -> Path:
        return self.root / "stamp.json"


@dataclass(frozen=True)
class Step:
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)  # added to the environment

    def show(self) -> str:
        env = " ".join(f"{k}={v!r}" for k, v in sorted(self.env.items()))
        return (env + " " if env else "") + " ".join(self.argv)


def build_env(
    work: Path,
    runtime: str,
    platform: str = sys.platform,
    python_tag: str = f"py{sys.version_info[0]}{sys.version_info[1]}",
) -> BuildEnv:
    return BuildEnv(
        work / "runtimes" / f"{runtime}-{platform}-{python_tag}", windows=platform == "win32"
    )


def stamp_for(recipe: Recipe, llama_version: str, python_version: str) -> dict:
    return {
        "llama_cpp_python": llama_version,
        "cmake_args": list(recipe.cmake_args),
        "python": python_version,
    }


def is_cached(env: BuildEnv, stamp: dict) -> bool:
    """The env exists, holds a wheel, and was built from exactly this stamp."""
    try:
        old = json.loads(env.stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return old == stamp and env.python.exists() and any(env.wheels.glob("llama_cpp_python-*"))


def _cuda_env(env: BuildEnv) -> dict[str, str]:
    """Point CMake at nvcc from the nvidia-cuda-nvcc-cu12 wheel (its site-packages layout)."""
    if env.windows:
        nvcc_root = env.venv / "Lib" / "site-packages" / "nvidia" / "cuda_nvcc"
        nvcc = nvcc_root / "bin" / "nvcc.exe"
    else:
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        nvcc_root = env.venv / "lib" / version / "site-packages" / "nvidia" / "cuda_nvcc"
        nvcc = nvcc_root / "bin" / "nvcc"
    return {"CUDACXX": str(nvcc), "CUDAToolkit_ROOT": str(nvcc_root)}


def steps(
    env: BuildEnv, recipe: Recipe, llama_version: str, project: Path, host_python: str, cached: bool
) -> list[Step]:
    """The commands that make (or refresh) this runtime's build environment."""
    py = str(env.python)
    pip = (py, "-m", "pip")
    refresh = [Step((*pip, "install", "-e", str(project), "pyinstaller>=6.10"))]
    if cached:
        return refresh
    compile_env = {"CMAKE_ARGS": recipe.cmake_env, "FORCE_CMAKE": "1"}
    if recipe.name == "cuda":
        compile_env.update(_cuda_env(env))
    requirement = f"llama-cpp-python=={llama_version}"
    make = [Step((host_python, "-m", "venv", "--clear", str(env.venv)))]
    if recipe.extra_wheels:
        make.append(Step((*pip, "install", *recipe.extra_wheels)))
    make += [
        Step(
            (
                *pip,
                "wheel",
                "--no-deps",
                "--no-cache-dir",
                "--no-binary",
                "llama-cpp-python",
                "--wheel-dir",
                str(env.wheels),
                requirement,
            ),
            compile_env,
        ),
        Step(
            (
                *pip,
                "install",
                "--force-reinstall",
                "--no-deps",
                "--no-index",
                "--find-links",
                str(env.wheels),
                requirement,
            )
        ),
    ]
    return make + refresh


BACKEND_MODULE_PREFIXES = (
    "libggml-cpu-",
    "ggml-cpu-",
    "libggml-vulkan",
    "ggml-vulkan",
    "libggml-cuda",
    "ggml-cuda",
    "libggml-metal",
    "ggml-metal",
    "libggml-blas",
    "ggml-blas",
)


def gather_backend_modules(site_packages: Path, scripts: Path | None = None) -> list[Path]:
    """Copy a GGML_BACKEND_DL build's backend libraries into llama_cpp/lib.

    ggml installs them next to executables (CMAKE_INSTALL_BINDIR: site-packages/bin in a
    wheel), while llama-cpp-python loads, and parlor.spec bundles, only llama_cpp/lib; the
    app's `load_backends` looks there too.
    """
    dest = site_packages / "llama_cpp" / "lib"
    folders = (site_packages / "bin", site_packages / "lib", scripts)
    return _copy_into(
        dest,
        lambda p: p.name.startswith(BACKEND_MODULE_PREFIXES) and not (dest / p.name).exists(),
        [f for f in folders if f is not None],
    )


def _copy_into(dest: Path, wanted: Callable[[Path], bool], folders: list[Path]) -> list[Path]:
    """Copy the files of `folders` that are `wanted` into dest; the copies, in order."""
    copied = []
    for folder in folders:
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.is_file() and wanted(path):
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest / path.name)
                copied.append(dest / path.name)
    return copied


# What libggml-cuda links against, as the nvidia-*-cu12 wheels lay them out
# (site-packages/nvidia/<part>/lib on Linux, .../bin on Windows). The user has only the
# driver, so the bundle carries them beside ggml-cuda; the app loads them first
# (app/core/engine/devices.py `preload_gpu_libraries`), whatever RUNPATH ggml-cuda was given.
CUDA_PARTS = {"cuda_runtime": ("libcudart.so", "cudart64_"), "cublas": ("libcublas", "cublas")}


def _is_library(path: Path) -> bool:
    return ".so" in path.name or path.suffix == ".dll"


def gather_cuda_libraries(site_packages: Path) -> list[Path]:
    """Copy the CUDA runtime and cuBLAS (cublasLt too) into llama_cpp/lib."""
    dest = site_packages / "llama_cpp" / "lib"
    copied = []
    for part, prefixes in CUDA_PARTS.items():
        folders = [site_packages / "nvidia" / part / sub for sub in ("lib", "bin")]
        copied += _copy_into(
            dest, lambda p, pre=prefixes: _is_library(p) and p.name.startswith(pre), folders
        )
    return copied
