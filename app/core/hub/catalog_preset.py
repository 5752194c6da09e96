"""The instruct preset a catalog names for its model, for files without a chat template."""

from __future__ import annotations

import json
from pathlib import Path

from app.core.appdata.resources import resources_dir


def catalog_preset(model_path: str, folder: Path | None = None) -> str | None:
    """The `instruct_preset` of the catalog listing this file name, or None."""
    name = Path(model_path).name
    for path in sorted((folder or resources_dir() / "catalog").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        files = {q.get("file") for q in data.get("quants", []) if isinstance(q, dict)}
        preset = data.get("instruct_preset")
        if name in files and isinstance(preset, str) and preset:
            return preset
    return None
