"""Short texts for the status bar."""

from __future__ import annotations

from pathlib import Path

from app.core.engine import ModelInfo


def model_title(info: ModelInfo) -> str:
    """The model as the user knows it: its file name (GGUF `general.name` is often just
    the architecture, "llama"); a server's model keeps the name the server gave."""
    path = Path(info.path)
    if path.suffix.lower() == ".gguf":
        return path.stem
    return info.name or path.name
