"""The built-in character every new user meets on the first run."""

from __future__ import annotations

import json

from app.core.appdata.resources import resources_dir
from app.core.store import Store

BUILTIN_KEY = "parlor:wren"


def ensure_default_character(store: Store) -> int:
    """Add Wren once (first run) and return her id; a user who deleted her is respected."""
    existing = store.characters.by_builtin(BUILTIN_KEY)
    if existing is not None:
        return existing
    folder = resources_dir() / "characters"
    card = json.loads((folder / "wren.json").read_text(encoding="utf-8"))
    avatar = (folder / "wren.png").read_bytes()
    return store.characters.add(card["data"], avatar, builtin_key=BUILTIN_KEY)
