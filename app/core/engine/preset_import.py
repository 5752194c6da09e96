"""Sampler presets from SillyTavern and KoboldCpp, read as data into a `SamplingParams`.

Three shapes are read: SillyTavern's text-completion presets (`temp`, `rep_pen`, `dry_*`,
`xtc_*`, …; `public/scripts/textgen-settings.js` lists them), its KoboldAI/KoboldCpp presets
(`temp`, `typical`, `mirostat`, `sampler_order`, …), and KoboldCpp's own generate fields
(`temperature`, `max_length`, `sampler_seed`, …, also inside a Kobold Lite `savedsettings`).
What maps onto llama.cpp's samplers is taken; what does not, and would have changed the
reply (tail-free sampling, top-a, a sampler order, …), is named in `ignored` so the user
sees it. Values at their neutral setting are dropped without a word. Values are checked as
a saved preset's are (presets.py): a bad one is an error naming it, nothing half-applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.engine.base import SamplingParams
from app.core.engine.presets import BUILT_IN, PresetError, SamplerPresets, apply_overrides

# their name -> ours
ALIASES = {
    "temp": "temperature",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "typical_p": "typical_p",
    "typical": "typical_p",
    "typ_s": "typical_p",
    "rep_pen": "repeat_penalty",
    "repetition_penalty": "repeat_penalty",
    "rep_pen_range": "repeat_last_n",
    "repeat_last_n": "repeat_last_n",
    "freq_pen": "frequency_penalty",
    "frequency_penalty": "frequency_penalty",
    "presence_pen": "presence_penalty",
    "presence_penalty": "presence_penalty",
    "mirostat_mode": "mirostat_mode",
    "mirostat": "mirostat_mode",
    "mirostat_tau": "mirostat_tau",
    "mirostat_eta": "mirostat_eta",
    "seed": "seed",
    "sampler_seed": "seed",
    "genamt": "max_tokens",
    "max_length": "max_tokens",
    "max_tokens": "max_tokens",
    "stopping_strings": "stop",
    "stop_sequence": "stop",
    "dry_multiplier": "dry_multiplier",
    "dry_base": "dry_base",
    "dry_allowed_length": "dry_allowed_length",
    "dry_penalty_last_n": "dry_penalty_last_n",
    "dry_sequence_breakers": "dry_sequence_breakers",
    "xtc_threshold": "xtc_threshold",
    "xtc_probability": "xtc_probability",
}
# samplers llama.cpp does not have here, at the value that leaves them out
NEUTRAL = {
    "tfs": 1,
    "tfs_s": 1,
    "top_a": 0,
    "epsilon_cutoff": 0,
    "eta_cutoff": 0,
    "rep_pen_slope": 1,
    "rep_pen_decay": 0,
    "no_repeat_ngram_size": 0,
    "penalty_alpha": 0,
    "num_beams": 1,
    "length_penalty": 1,
    "min_length": 0,
    "encoder_rep_pen": 1,
    "skew": 0,
    "dynatemp": False,
    "dynatemp_range": 0,
    "smoothing_factor": 0,
    "guidance_scale": 1,
    "negative_prompt": "",
    "grammar_string": "",
    "grammar": "",
    "banned_tokens": "",
    "logit_bias": [],
    "json_schema": {},
    "ban_eos_token": False,
    "ignore_eos_token": False,
    "temperature_last": True,  # llama.cpp applies the temperature last, as this asks
    "top_n_sigma": 0,
}
# how a preset is shown or sent, not how a token is picked; or settings that only matter
# with a sampler above on (dynatemp's bounds)
NOT_SAMPLING = frozenset(
    "do_sample early_stopping add_bos_token skip_special_tokens streaming "
    "spaces_between_special_tokens speculative_ngram n max_tokens_second custom_model type "
    "preset name min_temp max_temp dynatemp_exponent smoothing_curve rep_pen_size "
    "sampler_priority samplers sampler_order bypass_status_check legacy_api "
    "openrouter_allow_fallbacks mancer_model togetherai_model infermaticai_model "
    "ollama_model openrouter_model openrouter_providers vllm_model aphrodite_model "
    "dreamgen_model tabby_model server_urls".split()
)
ORDERS = ("sampler_order", "samplers", "sampler_priority")


@dataclass(frozen=True)
class ImportedPreset:
    params: SamplingParams
    source: str  # "SillyTavern" or "KoboldCpp"
    ignored: list[str] = field(default_factory=list)  # "tfs = 0.8", in the file's order


def read_preset(text: str | bytes, base: SamplingParams | None = None) -> ImportedPreset:
    """The samplers in a preset file's text, over `base` (Parlor's defaults if None) for
    what the file does not set."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PresetError(f"Not a preset: the file is not JSON ({exc}).") from exc
    if isinstance(data, dict) and isinstance(data.get("savedsettings"), dict):
        data = data["savedsettings"]  # a Kobold Lite save
    if not isinstance(data, dict) or not any(k in ALIASES for k in data):
        raise PresetError("Not a sampler preset: it sets none of the samplers Parlor knows.")
    source = "SillyTavern" if "temp" in data or "rep_pen_range" in data else "KoboldCpp"
    if "temperature" in data or "sampler_seed" in data or "max_length" in data:
        source = "KoboldCpp"
    values, ignored = _mapped(data)
    try:
        params = apply_overrides(base or SamplingParams(), values)
    except PresetError as exc:
        raise PresetError(f"This {source} preset has a value Parlor cannot use: {exc}") from None
    return ImportedPreset(params, source, ignored)


def _mapped(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in data.items():
        ours = ALIASES.get(key)
        if ours is not None:
            values[ours] = _converted(ours, value)
        elif key in ORDERS:
            continue  # llama.cpp's order is kept, whatever the file asks
        elif key in NEUTRAL:
            if value != NEUTRAL[key]:
                ignored.append(f"{key} = {json.dumps(value)}")
        elif key not in NOT_SAMPLING:
            ignored.append(f"{key} = {json.dumps(value)}")
    if "stop" in values and not values["stop"]:
        del values["stop"]  # an empty list would drop the template's own stop strings
    return values, ignored


def _converted(ours: str, value: Any) -> Any:
    """Their conventions where they differ from llama.cpp's."""
    if ours == "repeat_last_n" and value == 0:
        return -1  # a range of 0 is "the whole context" in SillyTavern and KoboldCpp
    if ours == "mirostat_mode" and isinstance(value, bool):
        return int(value)
    if ours == "stop" and isinstance(value, str):
        return [value] if value else []
    return value


def import_file(presets: SamplerPresets, path: Path) -> tuple[str, ImportedPreset]:
    """Read the preset at `path` and save it among the user's presets, named after the file
    (a built-in name gets " (imported)"); returns the name and what was read."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise PresetError(f"{path.name}: cannot be read ({exc.strerror or exc}).") from exc
    got = read_preset(text)
    name = path.stem.strip() or "Imported"
    if name in BUILT_IN:
        name += " (imported)"
    presets.save(name, got.params)
    return name, got
