"""The engine child's stderr — where llama.cpp writes its own messages — goes to a file in
the logs folder, so that when the child dies the parent can log llama.cpp's last lines
(a GGML_ASSERT, an out-of-memory message) instead of only an exit code."""

from __future__ import annotations

import os
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from app.core.engine.child import serve

STDERR_FILE = "llama.log"


def default_stderr_path() -> Path:
    from app.core.appdata.paths import default_paths

    return default_paths().logs / STDERR_FILE


def serve_with_stderr(path: str, conn: Connection, abort: Any) -> None:
    """The child's entry point: fd 2 into `path` (started afresh), then serve requests."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 2)
        os.close(fd)
    except OSError:
        pass  # no log file: llama.cpp's messages go where they went before
    serve(conn, abort)


def last_lines(path: str | os.PathLike[str], count: int = 15) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in deque(f, maxlen=count) if line.strip()]
    except OSError:
        return []
