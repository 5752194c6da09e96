"""Ask the installed llama.cpp which backends and devices it has, through ggml's registry.

llama-cpp-python binds `llama_supports_gpu_offload` but not ggml's device API, so the few
functions used here are declared on the `libggml` it already loaded (`llama_cpp._ggml`).

Builds made with `GGML_BACKEND_DL=ON` (the portable CPU variants, and GPU backends as
plugins) register nothing until the backend libraries are loaded, and llama-cpp-python never
loads them (upstream issue abetlen/llama-cpp-python#2069): a model load then fails with "no
backends are loaded". `load_backends` does it from llama_cpp's own `lib` folder, which is
where the bundle keeps them; ggml's default search (the executable's folder) is not.

Importing llama_cpp loads the shared libraries, and loading a GPU backend initialises its
driver; call this in a child process (`parlor devices`, the engine's child), not the GUI.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from app.core.appdata.llama_runtime import Backend, DeviceType, GpuProblem, LlamaDevice, Runtime
from app.core.engine import backend_problems, llama_log

_FEATURES_FN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)


class _Feature(ctypes.Structure):  # struct ggml_backend_feature
    _fields_ = [("name", ctypes.c_char_p), ("value", ctypes.c_char_p)]


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Signatures from ggml-backend.h for the functions used here."""
    ptr, size, text = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p
    for name, args, result in [
        ("ggml_backend_reg_count", [], size),
        ("ggml_backend_reg_get", [size], ptr),
        ("ggml_backend_reg_name", [ptr], text),
        ("ggml_backend_reg_dev_count", [ptr], size),
        ("ggml_backend_reg_get_proc_address", [ptr, text], ptr),
        ("ggml_backend_dev_count", [], size),
        ("ggml_backend_dev_get", [size], ptr),
        ("ggml_backend_dev_name", [ptr], text),
        ("ggml_backend_dev_description", [ptr], text),
        ("ggml_backend_dev_type", [ptr], ctypes.c_int),
        ("ggml_backend_dev_memory", [ptr, ctypes.POINTER(size), ctypes.POINTER(size)], None),
        ("ggml_backend_dev_backend_reg", [ptr], ptr),
        ("ggml_backend_load_all_from_path", [text], None),
        ("ggml_backend_load", [text], ptr),
    ]:
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, result
    return lib


def ggml_library() -> ctypes.CDLL:
    """The libggml that libllama itself uses (honours LLAMA_CPP_LIB_PATH).

    A wheel cannot hold symlinks, so llama-cpp-python installs libggml.so and libggml.so.0
    as two copies of one file: `llama_cpp._ggml` opens the first by path, libllama the
    second by its SONAME, and each copy has its own backend registry. Backends registered in
    the wrong one leave libllama with none ("no backends are loaded"). So the copy libllama
    linked is looked up by SONAME among the libraries already loaded; the frozen bundle keeps
    one file with symlinks, where both are the same.
    """
    import llama_cpp  # noqa: PLC0415, F401 - loads libllama, and with it its libggml
    from llama_cpp import _ggml  # noqa: PLC0415

    return _declare(_linked_copy(Path(_ggml.libggml._name)) or _ggml.libggml)


def _linked_copy(opened: Path) -> ctypes.CDLL | None:
    """The already loaded library whose SONAME is one of `opened`'s versioned names."""
    no_load = getattr(os, "RTLD_NOLOAD", None)
    if no_load is None or not opened.parent.is_dir():
        return None
    stem = opened.name.split(".so")[0] + ".so."
    names = sorted((p.name for p in opened.parent.glob(stem + "*")), key=len)
    for name in names:  # the shortest versioned name is the SONAME (libggml.so.0)
        try:
            return ctypes.CDLL(name, mode=no_load)
        except OSError:
            continue
    return None


def lib_dir() -> Path:
    """The folder llama-cpp-python loads its libraries from."""
    override = os.environ.get("LLAMA_CPP_LIB_PATH")
    if override:
        return Path(override)
    import llama_cpp  # noqa: PLC0415

    return Path(llama_cpp.__file__).parent / "lib"


def load_backends(
    lib: ctypes.CDLL | None = None,
    *,
    cpu_only: bool = False,
    folder: Path | None = None,
    score: Callable[[Path], int] | None = None,
) -> tuple[GpuProblem, ...]:
    """Load a GGML_BACKEND_DL build's backends once; a build with them linked in has some.
    Returns the GPU backends that give no device, with why (the first load's answer).

    cpu_only loads just the best CPU variant, so no GPU driver is initialised at all: the
    way to run on a machine whose Vulkan loader or driver fails (or crashes) at start.
    """
    global _problems
    lib = lib or ggml_library()
    if lib.ggml_backend_reg_count() != 0:
        return _problems
    folder = folder or lib_dir()
    if not cpu_only:
        preload_gpu_libraries(folder)
        with llama_log.captured() as said:
            lib.ggml_backend_load_all_from_path(str(folder).encode())
        registered = {b.name: b.devices for b in _backends(lib)}
        _problems = backend_problems.problems(registered, folder, said)
        for problem in _problems:
            print(f"llama.cpp: {problem.reason}", file=sys.stderr)
        return _problems
    best = best_cpu_variant(folder, score or _variant_score)
    if best is None:
        raise RuntimeError(f"no CPU variant of llama.cpp in {folder} runs on this CPU")
    lib.ggml_backend_load(str(best).encode())
    return ()


_problems: tuple[GpuProblem, ...] = ()  # what the one full load of this process found


# The CUDA runtime and cuBLAS a CUDA bundle carries beside ggml-cuda, dependencies first.
GPU_RUNTIME_LIBRARIES = ("libcudart.so.", "libcublasLt.so.", "libcublas.so.")


def preload_gpu_libraries(folder: Path) -> list[Path]:
    """Load the bundled CUDA libraries, so ggml-cuda finds them by name when it is loaded.

    ggml-cuda asks the dynamic linker for libcudart.so.13 and libcublas.so.13; a library
    already loaded under that name is used whatever RUNPATH the build gave ggml-cuda (which
    may point into the build machine's Python). Windows finds DLLs in llama_cpp's folder
    itself. A missing or broken library is left to ggml, which then reports no CUDA device.
    """
    loaded = []
    for prefix in GPU_RUNTIME_LIBRARIES:
        for path in sorted(folder.glob(prefix + "*")):
            try:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                continue
            loaded.append(path)
            break
    return loaded


def best_cpu_variant(folder: Path, score: Callable[[Path], int]) -> Path | None:
    """The `ggml-cpu-<variant>` library scoring highest on this CPU (0: it cannot run here),
    chosen as ggml's own loader does."""
    candidates = [
        p
        for p in sorted(folder.iterdir())
        if p.name.startswith(("libggml-cpu-", "ggml-cpu-"))
        and p.suffix in (".so", ".dll", ".dylib")
    ]
    scored = [(score(p), p) for p in candidates]
    scored = [(s, p) for s, p in scored if s > 0]
    return max(scored, key=lambda item: item[0])[1] if scored else None


def _variant_score(path: Path) -> int:
    """Each variant exports ggml_backend_score(); opening the library runs none of its code
    paths for other CPUs (ggml's loader opens every variant the same way)."""
    try:
        fn = ctypes.CDLL(str(path)).ggml_backend_score
    except (OSError, AttributeError):
        return 0
    fn.restype = ctypes.c_int
    return int(fn())


def _decode(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", "replace")


def _features(lib: ctypes.CDLL, reg: int) -> tuple[str, ...]:
    """The flags a backend reports as on ("AVX2 = 1"); [] when it reports none."""
    address = lib.ggml_backend_reg_get_proc_address(reg, b"ggml_backend_get_features")
    if not address:
        return ()
    array = _FEATURES_FN(address)(reg)
    found, index = [], 0
    features = ctypes.cast(array, ctypes.POINTER(_Feature))
    while array and features[index].name:
        name, value = _decode(features[index].name), _decode(features[index].value)
        if value not in ("0", ""):
            found.append(name if value == "1" else f"{name}={value}")
        index += 1
    return tuple(found)


def cpu_variant(maps: Path = Path("/proc/self/maps")) -> str | None:
    """Which `libggml-cpu-<variant>` ggml loaded (Linux: from this process's memory map)."""
    try:
        text = maps.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name = line.rsplit("/", 1)[-1]
        if name.startswith("libggml-cpu-") and ".so" in name:
            return name[len("libggml-cpu-") :].split(".so")[0]
    return None


def _backends(lib: ctypes.CDLL) -> list[Backend]:
    backends = []
    for index in range(lib.ggml_backend_reg_count()):
        reg = lib.ggml_backend_reg_get(index)
        name = _decode(lib.ggml_backend_reg_name(reg))
        backends.append(
            Backend(
                name,
                int(lib.ggml_backend_reg_dev_count(reg)),
                cpu_variant() if name == "CPU" else None,
                _features(lib, reg),
            )
        )
    return backends


def _devices(lib: ctypes.CDLL) -> list[LlamaDevice]:
    devices = []
    for index in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(index)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        reg = lib.ggml_backend_dev_backend_reg(dev)
        devices.append(
            LlamaDevice(
                backend=_decode(lib.ggml_backend_reg_name(reg)),
                name=_decode(lib.ggml_backend_dev_name(dev)),
                description=_decode(lib.ggml_backend_dev_description(dev)),
                type=DeviceType.from_ggml(lib.ggml_backend_dev_type(dev)),
                memory_free=int(free.value),
                memory_total=int(total.value),
            )
        )
    return devices


def enumerate_runtime() -> Runtime:
    """Backends and devices of the llama.cpp this process loads. Raises if it cannot load."""
    import llama_cpp  # noqa: PLC0415

    lib = ggml_library()
    problems = load_backends(lib)
    return Runtime(
        backends=tuple(_backends(lib)),
        devices=tuple(_devices(lib)),
        gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()),
        library=f"llama-cpp-python {_version()}",
        gpu_problems=problems,
    )


def _version() -> str:
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:  # a frozen bundle without the dist-info
        return getattr(sys.modules.get("llama_cpp"), "__version__", "?")


def layers_text(n_gpu_layers: int, effective: dict[str, Any]) -> str:
    """Where a loaded model's layers run, for the status bar.

    `effective["gpu_offload"]` is what the engine's llama.cpp said after loading; a build
    without a GPU backend accepts any n_gpu_layers and runs them all on the CPU.
    """
    if effective.get("gpu_offload") is False or n_gpu_layers == 0:
        if n_gpu_layers == 0:
            return "CPU only"
        failed = effective.get("gpu_problems")
        if failed:  # the build has a GPU backend, but it found no GPU (see the load's warning)
            return f"CPU only ({', '.join(failed)} did not start)"
        return "CPU only (this build has no GPU backend)"
    return "all layers on the GPU" if n_gpu_layers < 0 else f"GPU layers {n_gpu_layers}"
