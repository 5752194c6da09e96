"""Named sampler presets, saved as JSON under the config folder, and per-chat overrides.

A preset is a complete `SamplingParams`; a chat may keep a small dict of overrides (say
{"temperature": 1.1}) merged on top of its preset. Files are only read as data: unknown
keys are dropped, values are checked against llama.cpp's ranges, and a broken file is
reported, never half-applied.

    presets = SamplerPresets(paths.config / "sampler_presets")
    params = apply_overrides(presets.get("Creative"), chat_overrides)
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from app.core.engine.base import SamplingParams, parse_breakers

SCHEMA_VERSION = 1
BUILT_IN = {
    "Default": SamplingParams(),
    "Creative": SamplingParams(
        temperature=1.1, top_p=1.0, top_k=0, min_p=0.05, repeat_penalty=1.08, repeat_last_n=256
    ),
    "Precise": SamplingParams(temperature=0.5, top_p=0.9, top_k=40, min_p=0.1, repeat_penalty=1.1),
    "Mirostat": SamplingParams(
        mirostat_mode=2, mirostat_tau=5.0, mirostat_eta=0.1, temperature=1.0
    ),
    # what SillyTavern users pair DRY and XTC with: min-p alone, no repetition penalty
    "Varied (DRY + XTC)": SamplingParams(
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        min_p=0.02,
        repeat_penalty=1.0,
        dry_multiplier=0.8,
        xtc_threshold=0.1,
        xtc_probability=0.5,
    ),
}
# (low, high) bounds, None for open; what llama.cpp's samplers accept
RANGES = {
    "max_tokens": (1, None),
    "temperature": (0.0, 5.0),
    "top_p": (0.0, 1.0),
    "top_k": (0, None),
    "min_p": (0.0, 1.0),
    "typical_p": (0.0, 1.0),
    "repeat_penalty": (0.0, 5.0),
    "repeat_last_n": (-1, None),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
    "mirostat_mode": (0, 2),
    "mirostat_tau": (0.0, 20.0),
    "mirostat_eta": (0.0, 1.0),
    "seed": (-1, 2**32 - 1),
    # SillyTavern's slider ranges; llama.cpp turns XTC off above a threshold of 0.5
    "dry_multiplier": (0.0, 5.0),
    "dry_base": (1.0, 4.0),
    "dry_allowed_length": (1, 20),
    "dry_penalty_last_n": (-1, None),
    "xtc_threshold": (0.0, 0.5),
    "xtc_probability": (0.0, 1.0),
}
TEXT_LISTS = ("stop", "dry_sequence_breakers")
FIELD_TYPES = {f.name: f.type for f in fields(SamplingParams)}


class PresetError(Exception):
    """A preset name, file or value is not usable; the text says which and why."""


def _coerce(key: str, value: Any) -> Any:
    if key == "dry_sequence_breakers" and isinstance(value, str):
        return parse_breakers(value)  # SillyTavern writes the list as JSON in a string
    if key in TEXT_LISTS:
        if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
            raise PresetError(f"{key} must be a list of strings")
        return tuple(value)
    kind = int if FIELD_TYPES[key] in (int, "int") else float
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PresetError(f"{key} must be a number, not {value!r}")
    if kind is int and value != int(value):
        raise PresetError(f"{key} must be a whole number, not {value!r}")
    low, high = RANGES[key]
    if (low is not None and value < low) or (high is not None and value > high):
        raise PresetError(f"{key} = {value} is outside {low}…{high if high is not None else ''}")
    return kind(value)


def apply_overrides(base: SamplingParams, overrides: dict[str, Any] | None) -> SamplingParams:
    """`base` with the known keys of `overrides` replaced (checked); unknown keys are kept
    out, so a dict written by a newer version still works."""
    if not overrides:
        return base
    known = {k: _coerce(k, v) for k, v in overrides.items() if k in FIELD_TYPES}
    return replace(base, **known)


def overrides_between(base: SamplingParams, params: SamplingParams) -> dict[str, Any]:
    """The smallest override dict that turns `base` into `params` (what a chat stores)."""
    a, b = asdict(base), asdict(params)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in b.items() if a[k] != v}


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-.").lower()
    if not slug or len(name) > 80:
        raise PresetError(f"{name!r} is not a usable preset name")
    return slug


class SamplerPresets:
    """Built-in presets plus the user's, one JSON file each in `folder`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _path(self, name: str) -> Path:
        return self.folder / f"{_slug(name)}.json"

    def names(self) -> list[str]:
        """Built-in names first, then the user's in alphabetical order."""
        saved = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                saved.append(str(json.loads(path.read_text(encoding="utf-8"))["name"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a broken file shows up as an error when it is opened by name
        return list(BUILT_IN) + sorted(n for n in saved if n not in BUILT_IN)

    def get(self, name: str) -> SamplingParams:
        if name in BUILT_IN:
            return BUILT_IN[name]
        path = self._path(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PresetError(f"There is no sampler preset named {name!r}.") from None
        except (OSError, ValueError) as exc:
            raise PresetError(f"{path.name}: not a readable preset ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("sampling"), dict):
            raise PresetError(f'{path.name}: no "sampling" table')
        try:
            return apply_overrides(SamplingParams(), data["sampling"])
        except PresetError as exc:
            raise PresetError(f"{path.name}: {exc}") from None

    def save(self, name: str, params: SamplingParams) -> Path:
        """Write atomically; built-in names are read-only."""
        if name in BUILT_IN:
            raise PresetError(f"{name!r} is a built-in preset; save under another name.")
        path = self._path(name)
        apply_overrides(SamplingParams(), asdict(params))  # refuse out-of-range values
        sampling = asdict(params)  # every value: a later change of defaults must not move it
        for key in TEXT_LISTS:
            sampling[key] = list(getattr(params, key))
        data = {"schema_version": SCHEMA_VERSION, "name": name, "sampling": sampling}
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".preset-", dir=self.folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, path)
        return path

    def delete(self, name: str) -> None:
        if name in BUILT_IN:
            raise PresetError(f"{name!r} is a built-in preset.")
        self._path(name).unlink(missing_ok=True)
