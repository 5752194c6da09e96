"""Keep chosen tensors in system RAM while the rest is offloaded: llama.cpp's
`tensor_buft_overrides`, the mechanism behind `--cpu-moe` and `--n-cpu-moe`.

llama-cpp-python 0.3.36 has the field in `llama_model_params` (a raw pointer, marked
"unused") but no `Llama(...)` argument for it, and `Llama.__init__` builds the parameters and
loads the model in one go. So, as for the load progress callback in `child.py`, the
parameters are filled in by a subclass of its `LlamaModel` wrapper swapped in for one load:
a NULL-terminated array of {pattern, buffer type}, the buffer type being the CPU device's.
The array must outlive the load (llama.cpp reads it then); it is kept on the model object.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator, Sequence
from typing import Any

from app.core.engine.devices import ggml_library

GGML_BACKEND_DEVICE_TYPE_CPU = 0


class _Override(ctypes.Structure):  # struct llama_model_tensor_buft_override
    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def overrides_supported() -> bool:
    """The installed llama-cpp-python's model parameters have the field we fill in."""
    import llama_cpp  # noqa: PLC0415

    names = [name for name, *_ in llama_cpp.llama_model_params._fields_]
    return "tensor_buft_overrides" in names


def expert_patterns(n_cpu_moe: int) -> list[str]:
    """What `--n-cpu-moe N` keeps in RAM: the expert tensors of layers 0..N-1."""
    return [rf"blk\.{il}\.ffn_(up|down|gate)_(ch|)exps" for il in range(n_cpu_moe)]


def _cpu_buffer_type() -> int:
    lib = ggml_library()
    lib.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    lib.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    lib.ggml_backend_dev_buffer_type.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_buffer_type.restype = ctypes.c_void_p
    device = lib.ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)
    if not device:
        raise RuntimeError("llama.cpp has no CPU device to keep tensors on")
    return int(lib.ggml_backend_dev_buffer_type(device))


def _array(patterns: Sequence[str]) -> ctypes.Array[_Override]:
    buft = _cpu_buffer_type()
    array = (_Override * (len(patterns) + 1))()
    for index, pattern in enumerate(patterns):
        array[index].pattern = pattern.encode()
        array[index].buft = buft
    return array  # the last entry stays {NULL, NULL}: the terminator


@contextlib.contextmanager
def tensors_in_ram(patterns: Sequence[str]) -> Iterator[None]:
    """Within this block, models loaded through `llama_cpp.Llama` keep `patterns` in RAM."""
    if not patterns:
        yield
        return
    if not overrides_supported():
        raise RuntimeError("this llama-cpp-python has no tensor_buft_overrides")
    from llama_cpp import _internals  # noqa: PLC0415

    original: Any = _internals.LlamaModel  # llama-cpp-python's class, patched for the load
    array = _array(patterns)

    class OverridingModel(original):  # type: ignore[misc]  # a class known only at run time
        def __init__(self, *, path_model: str, params: Any, verbose: bool = True) -> None:
            self._buft_overrides = array  # llama.cpp reads it during the load
            params.tensor_buft_overrides = ctypes.cast(array, ctypes.c_void_p)
            super().__init__(path_model=path_model, params=params, verbose=verbose)

    setattr(_internals, "LlamaModel", OverridingModel)  # noqa: B010 - a patch for one load
    try:
        yield
    finally:
        setattr(_internals, "LlamaModel", original)  # noqa: B010
