"""Is the llama.cpp about to be bundled one that runs on every user's machine?

A llama.cpp built with GGML_NATIVE=ON is compiled for the build machine's CPU: the .deb
built on an AVX-512 server died with SIGILL (`vmovdqa32 ... %zmm0` in `ggml_cpu_init`) on an
ordinary AVX2 desktop. A portable build has GGML_NATIVE=OFF, GGML_BACKEND_DL=ON and
GGML_CPU_ALL_VARIANTS=ON: every CPU variant (x64, sse42, sandybridge, haswell, skylakex, ...)
is its own `ggml-cpu-<variant>` library and ggml loads the best one the CPU runs at start.

Two witnesses are read, both written by the build itself:
  - `ggml-config.cmake`, which ggml installs with every option it was configured with
    (`set(GGML_NATIVE "ON")`), in site-packages/lib/cmake/ggml/ for llama-cpp-python;
  - the libraries that will really be shipped (llama_cpp/lib, or the frozen bundle's copy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The variants that run on any x86-64 CPU: the plain baseline, and SSE4.2 (Nehalem, 2008).
X86_BASELINE = ("x64", "sse42")
# The variant every 64-bit ARM CPU runs, by the machine name the build reports: ggml names
# Apple Silicon's variants apple_m1 ... and Linux's armv8.0_1 ... (ggml/src/CMakeLists.txt).
ARM_BASELINE = {"arm64": "apple_m1", "aarch64": "armv8.0_1"}
GPU_LIBRARY = {"vulkan": "ggml-vulkan", "cuda": "ggml-cuda", "metal": "ggml-metal"}
GPU_OPTION = {"vulkan": "GGML_VULKAN", "cuda": "GGML_CUDA", "metal": "GGML_METAL"}
_SET = re.compile(r'^\s*set\((GGML_[A-Z0-9_]+)\s+"([^"]*)"\)', re.M)
_LIB = re.compile(r"^(?:lib)?(ggml-[a-z0-9_.-]+?)\.(?:so|dll|dylib)(?:\.[0-9.]+)?$")


def parse_cmake_config(text: str) -> dict[str, str]:
    """`set(GGML_NATIVE "ON")` lines of ggml-config.cmake -> {"GGML_NATIVE": "ON"}."""
    return dict(_SET.findall(text))


def _on(value: str | None) -> bool:
    return (value or "").upper() in {"ON", "1", "TRUE", "YES", "Y"}


@dataclass(frozen=True)
class LlamaBuild:
    config: dict[str, str]  # empty when ggml-config.cmake was not found
    libraries: tuple[str, ...]  # file names in the folder llama_cpp loads from
    config_path: Path | None = None

    @property
    def modules(self) -> set[str]:
        """'ggml-cpu-haswell', 'ggml-vulkan', ... from the library file names."""
        return {m.group(1) for name in self.libraries if (m := _LIB.match(name))}

    @property
    def cpu_variants(self) -> set[str]:
        return {m[len("ggml-cpu-") :] for m in self.modules if m.startswith("ggml-cpu-")}


def read_build(site_packages: Path, lib_dir: Path) -> LlamaBuild:
    config_path = site_packages / "lib" / "cmake" / "ggml" / "ggml-config.cmake"
    config = (
        parse_cmake_config(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    )
    libraries = tuple(sorted(p.name for p in lib_dir.iterdir())) if lib_dir.is_dir() else ()
    return LlamaBuild(config, libraries, config_path if config else None)


def problems(build: LlamaBuild, runtime: str, machine: str) -> list[str]:
    """Why this build must not be shipped; [] when it may. machine: 'x86_64', 'arm64', ..."""
    found = []
    if build.config:
        if _on(build.config.get("GGML_NATIVE")):
            found.append("it was built with GGML_NATIVE=ON, for the build machine's CPU only")
        for option in ("GGML_BACKEND_DL", "GGML_CPU_ALL_VARIANTS"):
            if not _on(build.config.get(option)):
                found.append(f"it was built without {option}=ON")
        gpu = GPU_OPTION.get(runtime)
        if gpu and not _on(build.config.get(gpu)):
            found.append(f"it was built without {gpu}=ON, which the {runtime} runtime needs")
    else:
        found.append("its ggml-config.cmake is missing, so how it was built cannot be read")
    found += _library_problems(build, runtime, machine)
    return found


def _library_problems(build: LlamaBuild, runtime: str, machine: str) -> list[str]:
    found = []
    variants = build.cpu_variants
    if not variants:
        found.append(
            "its library folder has no ggml-cpu-<variant> libraries "
            f"(it holds: {', '.join(build.libraries) or 'nothing'})"
        )
    elif machine in ("x86_64", "amd64", "AMD64") and not set(X86_BASELINE) & variants:
        found.append(
            f"its CPU variants ({', '.join(sorted(variants))}) include none that "
            f"runs on every x86-64 CPU ({' or '.join(X86_BASELINE)})"
        )
    elif machine in ARM_BASELINE and variants and ARM_BASELINE[machine] not in variants:
        found.append(
            f"its CPU variants ({', '.join(sorted(variants))}) lack {ARM_BASELINE[machine]}, "
            f"the one that runs on every {machine} CPU"
        )
    library = GPU_LIBRARY.get(runtime)
    if library and library not in build.modules:
        found.append(f"its library folder has no {library} library for the {runtime} runtime")
    return found


def refusal(build: LlamaBuild, found: list[str], runtime: str, where: Path) -> str:
    """The message build.py stops with: what is wrong, and the command that fixes it."""
    lines = [f"refusing to package the llama.cpp in {where}:"]
    lines += [f"  - {problem}" for problem in found]
    lines += [
        "Build a portable one (it is cached under build/runtimes/, so this is slow once):",
        f"    python packaging/build.py --runtime {runtime}",
        "or install one into this Python yourself and pass --use-installed-llama:",
        f'    CMAKE_ARGS="{cmake_hint(runtime)}" pip install --force-reinstall --no-deps '
        "--no-binary llama-cpp-python --no-cache-dir llama-cpp-python",
    ]
    return "\n".join(lines)


def cmake_hint(runtime: str) -> str:
    gpu = GPU_OPTION.get(runtime)
    flags = "-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON"
    return f"{flags} -D{gpu}=ON" if gpu else flags
