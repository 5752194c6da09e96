"""Reading llama.cpp's (and ggml's) log for a moment, then giving it back as it was.

llama.cpp has one log callback per process. llama-cpp-python installs its own at import;
the engine reads the log for a reply's performance report (`perf.py`) and while the backends
load (`backend_problems.py`), and whoever had the callback before must get it back: a probe
or a tool that collects the log would otherwise lose everything after the first read.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LEVEL_CONT = 5  # GGML_LOG_LEVEL_CONT: the text continues the previous line


@contextmanager
def captured(forward: bool = True) -> Iterator[list[str]]:
    """The lines logged inside the block; `forward` passes them on to the callback that was
    set before, which is set again at the end."""
    import llama_cpp  # noqa: PLC0415

    before, user_data = _current(llama_cpp)
    lines: list[str] = []

    def record(level: int, text: bytes, data: ctypes.c_void_p) -> None:
        piece = (text or b"").decode("utf-8", "replace")
        if level == _LEVEL_CONT and lines:
            lines[-1] += piece
        else:
            lines.append(piece)
        if forward and before:
            before(level, text, data)

    callback = llama_cpp.llama_log_callback(record)  # kept alive until set back below
    llama_cpp.llama_log_set(callback, user_data)
    try:
        yield lines
    finally:
        llama_cpp.llama_log_set(before, user_data)


def _current(llama_cpp: Any) -> tuple[Any, ctypes.c_void_p]:
    """The callback set now and its user data; llama-cpp-python's own when llama.cpp cannot
    say (llama_log_get is from 2025)."""
    callback_type = llama_cpp.llama_log_callback
    get = getattr(llama_cpp, "llama_log_get", None)
    if get is not None:
        callback, user_data = callback_type(), ctypes.c_void_p()
        try:
            get(ctypes.byref(callback), ctypes.byref(user_data))
        except AttributeError:  # the binding is there, the library's symbol is not
            pass
        else:
            if callback:
                return callback, user_data
    from llama_cpp import _logger  # noqa: PLC0415

    return _logger.llama_log_callback, ctypes.c_void_p(0)
