"""Where the runtime tests find a llama.cpp runtime that packaging/build.py compiled."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def runtime_folder(runtime: str) -> Path:
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return ROOT / "build" / "runtimes" / f"{runtime}-{sys.platform}-{tag}"


def runtime_python(runtime: str, variable: str) -> Path | None:
    """The runtime's Python (`variable` in the environment names another), None when it has
    not been built: build.py writes the stamp last, once the wheel is built and installed."""
    given = os.environ.get(variable)
    if given:
        return Path(given)
    built = runtime_folder(runtime)
    return built / "venv" / "bin" / "python" if (built / "stamp.json").exists() else None
