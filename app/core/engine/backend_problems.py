"""Why a GPU backend of the bundled llama.cpp gives no device, in words a user can act on.

ggml's loader does not fail when a GPU cannot be used, it runs on the CPU: a CUDA module on a
machine without the NVIDIA driver does not load at all (ggml-cuda links libcuda.so.1), and
one with a driver too old for its CUDA loads but finds no device. Either way the only trace
is a line in ggml's log, which the window never shows. So the log is recorded while the
backends load, each line is attributed to the backend whose load it preceded, and a module
that did not register is asked about again through the dynamic linker.
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

from app.core.appdata.llama_runtime import GpuProblem

# What a GPU backend module that fails to load is missing.
MISSING_DRIVER = {
    "libcuda.so.1": "no NVIDIA driver is installed",
    "libvulkan.so.1": "no Vulkan loader is installed",
}

# The oldest NVIDIA driver each CUDA major version runs on (NVIDIA's CUDA compatibility table).
DRIVER_FLOOR = {12: 525, 13: 580}

_LOADED = re.compile(r"load_backend: loaded (\S+) backend from ")
_REFUSED = re.compile(r"load_backend: failed to \w+ (?:backend from )?(\S+?):? ")
_MODULE = re.compile(r"(?:lib)?ggml-([a-z]+)\.(?:so|dll|dylib)")
_SHOWN = {"cuda": "CUDA", "vulkan": "Vulkan", "metal": "Metal", "hip": "ROCm", "sycl": "SYCL"}


def said_before_load(lines: list[str]) -> dict[str, list[str]]:
    """Each backend's lines: what ggml logged between the previous backend's load and its
    own ("loaded CUDA backend from ..."), keyed by registry name, and for a module that
    was refused by its lower-case module name ("cuda")."""
    said: dict[str, list[str]] = {}
    pending: list[str] = []
    for line in (piece.strip() for text in lines for piece in text.splitlines()):
        loaded, refused = _LOADED.match(line), _REFUSED.match(line)
        key = loaded[1] if loaded else _module_name(refused[1]) if refused else None
        if key is None:
            pending += [line] if line else []
            continue
        said.setdefault(key, []).extend(pending)
        pending = []
    return said


def _module_name(path: str) -> str:
    found = _MODULE.fullmatch(Path(path).name)
    return found[1] if found else path


def problems(registered: dict[str, int], folder: Path, lines: list[str]) -> tuple[GpuProblem, ...]:
    """Every GPU backend that gives no device: registered with none (`registered` maps each
    registry name to its device count), or a module in `folder` that did not register."""
    said = said_before_load(lines)
    found = [
        GpuProblem(name, _explain(name, said.get(name, []), folder))
        for name, count in registered.items()
        if name != "CPU" and count == 0
    ]
    names = {name.lower() for name in registered}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        module = _MODULE.fullmatch(path.name)
        if module and module[1] not in ("base", "cpu") and module[1] not in names:
            shown = _SHOWN.get(module[1], module[1])
            reason = _why_unloaded(shown, path, said.get(module[1], []))
            found.append(GpuProblem(shown, reason))
    return tuple(found)


def _explain(backend: str, said: list[str], folder: Path) -> str:
    detail = _last_words(said) or "it found no device"
    hint = _hint(detail, folder)
    return f"{backend} found no GPU: {detail}" + (f" ({hint})" if hint else "")


def _why_unloaded(shown: str, path: Path, said: list[str]) -> str:
    try:
        ctypes.CDLL(str(path))
    except OSError as exc:
        # a frozen app's ctypes (PyInstaller) raises its own "Failed to load dynlib/dll"
        # from the dynamic linker's error
        text = str(exc.__cause__ or exc)
        hints = [hint for name, hint in MISSING_DRIVER.items() if name in text]
        return f"{shown} ({path.name}) did not load: {text}" + (f" ({hints[0]})" if hints else "")
    detail = _last_words(said) or "no usable driver or device"
    return f"{shown} ({path.name}) loaded but did not start: {detail}"


def _last_words(said: list[str]) -> str:
    """The backend's own last lines (ggml prefixes them with the function that spoke)."""
    words = [re.sub(r"^\w+: ", "", line, count=1) for line in said[-2:]]
    return "; ".join(w.rstrip(".") for w in words if w)


def _hint(detail: str, folder: Path) -> str:
    if "driver version is insufficient" in detail:
        major = cuda_major(folder)
        floor = DRIVER_FLOOR.get(major or 0)
        needs = f"this build's CUDA {major} needs version {floor} or newer" if floor else ""
        return "update the NVIDIA driver" + (f": {needs}" if needs else "")
    if "no CUDA-capable device" in detail:
        return "no NVIDIA GPU was found"
    if "No devices found" in detail:
        return "no GPU driver offers a Vulkan device: install or update the GPU's driver"
    return ""


def cuda_major(folder: Path) -> int | None:
    """The CUDA runtime's major version, from the libcudart the bundle carries."""
    for path in folder.glob("libcudart.so.*") if folder.is_dir() else []:
        found = re.match(r"libcudart\.so\.(\d+)", path.name)
        if found:
            return int(found[1])
    for path in folder.glob("cudart64_*.dll") if folder.is_dir() else []:
        return int(path.stem.split("_")[1][:2])
    return None
