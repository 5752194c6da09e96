"""The llama.cpp runtimes Parlor ships, and the cached environment each is built in.

Each runtime is llama-cpp-python compiled from source with its CMake flags into a virtual
environment of its own under build/runtimes/, never the developer's Python: the bundle must
not depend on how someone once installed llama.cpp on the build machine. The environment is
kept between runs; a stamp records the llama-cpp-python version, the flags and the Python,
and while it matches, only the app itself is reinstalled (seconds, not the 5+ minutes that
compiling takes on 2 cores, many more with every CPU variant).

The wheel is built from llama-cpp-python's source archive unpacked into this runtime's folder
(src/), with CMake's build folder there too (cmake-build/): pip never caches a wheel built from
a folder (its cache is keyed by the source archive, not by CMAKE_ARGS, so it would hand one
runtime's build to another), and with the same paths every time, ccache (which ggml's CMake
puts in front of every compiler, nvcc too) finds its earlier results; CCACHE_BASEDIR makes them
relative to the runtime's folder.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cuda_toolkit

# Every runtime carries the portable CPU backend: no -march=native, every CPU variant as a
# library of its own, the best one chosen at start (see llama_check.py).
PORTABLE = ("-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON")

# The oldest macOS the app runs on, as Info.plist's LSMinimumSystemVersion says. Every Apple
# Silicon Mac can update to 14, numpy's arm64 wheels for Apple's BLAS are tagged 14.0 and
# PySide6 6.11's 13.0, so 14 is where every bundled wheel exists as pip picks it on a macOS 14
# build machine. The compiler is told too: left alone it targets its SDK's newer macOS.
MACOS_MINIMUM = "14.0"


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
        f"an NVIDIA driver for CUDA {cuda_toolkit.CUDA_VERSION} (580 or newer) and a GPU of "
        "compute capability 7.5 (Turing) or newer; without one Parlor runs on the CPU variants.",
        f"a C++ compiler; nvcc, the CUDA {cuda_toolkit.CUDA_VERSION} runtime and cuBLAS come "
        "from PyPI wheels.",
        extra_wheels=cuda_toolkit.WHEELS,
    ),
    "metal": Recipe(
        "metal",
        (
            *PORTABLE,
            "-DGGML_METAL=ON",
            "-DGGML_METAL_EMBED_LIBRARY=ON",
            f"-DCMAKE_OSX_DEPLOYMENT_TARGET={MACOS_MINIMUM}",
        ),
        f"macOS {MACOS_MINIMUM} or newer on Apple Silicon; nothing to install.",
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
    python_tag: str = f"py{sys.version_info[0]}{sys.version_info[1]}"

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def python(self) -> Path:
        return self.venv / ("Scripts/python.exe" if self.windows else "bin/python")

    @property
    def site_packages(self) -> Path:
        if self.windows:
            return self.venv / "Lib" / "site-packages"
        version = f"python{self.python_tag[2]}.{self.python_tag[3:]}"
        return self.venv / "lib" / version / "site-packages"

    @property
    def sdist(self) -> Path:
        return self.root / "sdist"

    @property
    def source(self) -> Path:
        return self.root / "src"

    @property
    def cmake_build(self) -> Path:
        return self.root / "cmake-build"

    @property
    def cuda_toolkit(self) -> Path:
        """The toolkit root assembled from the CUDA wheels (Linux); the wheels' tree on
        Windows, which is one already."""
        if self.windows:
            return cuda_toolkit.wheel_tree(self.site_packages)
        return self.root / "cuda-toolkit"

    @property
    def scratch(self) -> tuple[Path, ...]:
        """Folders a fresh build starts without (a stale CMakeCache keeps old options)."""
        return (self.sdist, self.source, self.cmake_build, self.root / "cuda-toolkit")

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
        work / "runtimes" / f"{runtime}-{platform}-{python_tag}",
        windows=platform == "win32",
        python_tag=python_tag,
    )


def stamp_for(recipe: Recipe, llama_version: str, python_version: str) -> dict:
    stamp = {
        "llama_cpp_python": llama_version,
        "cmake_args": list(recipe.cmake_args),
        "python": python_version,
    }
    if recipe.extra_wheels:  # the CUDA wheels' versions are part of what was built
        stamp["extra_wheels"] = list(recipe.extra_wheels)
    return stamp


def with_cuda_architectures(recipe: Recipe, architectures: str | None) -> Recipe:
    """The recipe for these CUDA architectures ("89-real", "86-real,89-real"); None keeps
    llama.cpp's own list (ggml-cuda's CMakeLists), which is what a release ships."""
    if not architectures:
        return recipe
    archs = architectures.replace(",", ";")
    return dataclasses.replace(
        recipe, cmake_args=(*recipe.cmake_args, f"-DCMAKE_CUDA_ARCHITECTURES={archs}")
    )


def is_cached(env: BuildEnv, stamp: dict) -> bool:
    """The env exists, holds a wheel, and was built from exactly this stamp."""
    try:
        old = json.loads(env.stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return old == stamp and env.python.exists() and any(env.wheels.glob("llama_cpp_python-*"))


def _sdist_steps(env: BuildEnv, llama_version: str, host_python: str) -> list[Step]:
    """Fetch llama-cpp-python's source archive and unpack it into the runtime's folder."""
    archive = env.sdist / f"llama_cpp_python-{llama_version}.tar.gz"
    requirement = f"llama-cpp-python=={llama_version}"
    fetch = (str(env.python), "-m", "pip", "download", "--no-deps")
    return [
        Step((*fetch, "--no-binary", "llama-cpp-python", "--dest", str(env.sdist), requirement)),
        Step((host_python, "-m", "tarfile", "-e", str(archive), str(env.source))),
    ]


def _compile_env(env: BuildEnv, recipe: Recipe) -> dict[str, str]:
    """CMake's flags and the fixed build folder; for CUDA, the toolkit root."""
    found = {
        "CMAKE_ARGS": recipe.cmake_env,
        "FORCE_CMAKE": "1",
        "SKBUILD_BUILD_DIR": str(env.cmake_build),
        "CCACHE_BASEDIR": str(env.root),
    }
    if recipe.name == "cuda":
        found.update(cuda_toolkit.cmake_env(env.cuda_toolkit, env.windows))
    if recipe.name == "metal":  # the wheel's tag and anything compiled outside CMake
        found["MACOSX_DEPLOYMENT_TARGET"] = MACOS_MINIMUM
    return found


def _cuda_toolkit_steps(env: BuildEnv, host_python: str) -> list[Step]:
    """Linux: assemble the toolkit root from the installed wheels (cuda_toolkit.py)."""
    if env.windows:
        return []
    script = str(Path(__file__).with_name("cuda_toolkit.py"))
    return [Step((host_python, script, str(env.site_packages), str(env.cuda_toolkit)))]


def steps(
    env: BuildEnv, recipe: Recipe, llama_version: str, project: Path, host_python: str, cached: bool
) -> list[Step]:
    """The commands that make (or refresh) this runtime's build environment."""
    pip = (str(env.python), "-m", "pip")
    refresh = [Step((*pip, "install", "-e", str(project), "pyinstaller>=6.10"))]
    if cached:
        return refresh
    make = [Step((host_python, "-m", "venv", "--clear", str(env.venv)))]
    if recipe.extra_wheels:
        make.append(Step((*pip, "install", *recipe.extra_wheels)))
    if recipe.name == "cuda":
        make += _cuda_toolkit_steps(env, host_python)
    make += _sdist_steps(env, llama_version, host_python)
    source = env.source / f"llama_cpp_python-{llama_version}"
    wheel = (*pip, "wheel", "--no-deps", "--no-cache-dir", "--wheel-dir", str(env.wheels))
    make.append(Step((*wheel, str(source)), _compile_env(env, recipe)))
    make.append(
        Step(
            (
                *pip,
                "install",
                "--force-reinstall",
                "--no-deps",
                "--no-index",
                "--find-links",
                str(env.wheels),
                f"llama-cpp-python=={llama_version}",
            )
        )
    )
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


def gather_cuda_libraries(site_packages: Path) -> list[Path]:
    """Copy the CUDA runtime and cuBLAS (cublasLt too) from the CUDA wheels into
    llama_cpp/lib: the user has only the driver. The app loads them before ggml-cuda
    (app/core/engine/devices.py `preload_gpu_libraries`), whatever RUNPATH ggml-cuda has."""
    wanted = set(cuda_toolkit.runtime_libraries(site_packages))
    folders = sorted({p.parent for p in wanted})
    return _copy_into(site_packages / "llama_cpp" / "lib", lambda p: p in wanted, folders)
