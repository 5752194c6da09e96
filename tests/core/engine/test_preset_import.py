"""SillyTavern and KoboldCpp sampler presets, read into Parlor's samplers (files only).

The SillyTavern files here are written with the keys of its text-completion presets
(`default/content/presets/textgen/*.json`, the names in `textgen-settings.js`'s
`setting_names`) and of its KoboldAI presets (`default/content/presets/kobold/*.json`); the
KoboldCpp one with the fields of its generate API.
"""

from __future__ import annotations

import json

import pytest

from app.core.engine import SamplingParams
from app.core.engine.preset_import import import_file, read_preset
from app.core.engine.presets import PresetError, SamplerPresets

SILLYTAVERN = {
    "temp": 1.25,
    "temperature_last": True,
    "top_p": 1,
    "top_k": 0,
    "top_a": 0,
    "tfs": 0.95,
    "typical_p": 1,
    "min_p": 0.05,
    "rep_pen": 1.05,
    "rep_pen_range": 0,
    "freq_pen": 0.1,
    "presence_pen": 0,
    "mirostat_mode": 0,
    "dry_allowed_length": 3,
    "dry_multiplier": 0.8,
    "dry_base": 1.75,
    "dry_sequence_breakers": '["\\n", ":", "\\"", "*", "{{char}}"]',
    "dry_penalty_last_n": 1024,
    "xtc_threshold": 0.1,
    "xtc_probability": 0.5,
    "do_sample": True,
    "add_bos_token": True,
    "sampler_priority": ["temperature", "top_k", "top_p", "min_p"],
    "samplers": ["top_k", "tfs_z", "typical_p", "top_p", "min_p", "temperature"],
    "banned_tokens": "",
    "rep_pen_slope": 1,
}


def test_a_sillytavern_text_completion_preset_maps_and_names_what_it_cannot():
    got = read_preset(json.dumps(SILLYTAVERN))
    p = got.params
    assert got.source == "SillyTavern"
    assert (p.temperature, p.top_p, p.top_k, p.min_p) == (1.25, 1.0, 0, 0.05)
    assert (p.repeat_penalty, p.frequency_penalty, p.repeat_last_n) == (1.05, 0.1, -1)
    assert (p.dry_multiplier, p.dry_base, p.dry_allowed_length, p.dry_penalty_last_n) == (
        0.8,
        1.75,
        3,
        1024,
    )
    assert p.dry_sequence_breakers == ("\n", ":", '"', "*", "{{char}}")
    assert (p.xtc_threshold, p.xtc_probability) == (0.1, 0.5)
    # tail-free sampling is not in llama.cpp; neutral values and UI keys are not listed
    assert got.ignored == ["tfs = 0.95"]
    assert p.max_tokens == SamplingParams().max_tokens  # a preset says nothing about length


def test_a_sillytavern_kobold_preset_and_a_koboldcpp_request_map_alike():
    kobold = {"temp": 0.7, "rep_pen": 1.1, "rep_pen_range": 2048, "top_p": 0.9, "top_a": 0.75}
    kobold |= {"typical": 0.95, "tfs": 1, "rep_pen_slope": 0.7, "sampler_order": [6, 0, 1]}
    kobold |= {"mirostat": 0, "mirostat_tau": 5, "mirostat_eta": 0.1}
    st = read_preset(json.dumps(kobold))
    assert (st.params.temperature, st.params.typical_p, st.params.repeat_last_n) == (
        0.7,
        0.95,
        2048,
    )
    assert st.ignored == ["top_a = 0.75", "rep_pen_slope = 0.7"]
    api = {"max_length": 200, "temperature": 0.7, "typical": 0.95, "sampler_seed": 11}
    api |= {"dry_multiplier": 0.5, "dry_sequence_breakers": ["\n"], "stop_sequence": ["\nYou:"]}
    kc = read_preset(json.dumps({"savedsettings": api}))
    assert kc.source == "KoboldCpp"
    assert (kc.params.max_tokens, kc.params.seed, kc.params.dry_multiplier) == (200, 11, 0.5)
    assert kc.params.dry_sequence_breakers == ("\n",) and kc.params.stop == ("\nYou:",)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json at all", "not JSON"),
        ('{"theme": "dark"}', "none of the samplers"),
        ("[1, 2]", "none of the samplers"),
        ('{"temp": 9}', "temperature = 9"),
        ('{"temp": 1, "xtc_threshold": 0.7}', "xtc_threshold"),
        ('{"dry_sequence_breakers": [1, 2]}', "list of strings"),
    ],
)
def test_a_bad_file_is_a_clear_error(text, says):
    with pytest.raises(PresetError, match=says):
        read_preset(text)


def test_an_imported_preset_is_saved_under_the_files_name_and_comes_back(tmp_path):
    presets = SamplerPresets(tmp_path / "sampler_presets")
    path = tmp_path / "Universal-Light.json"
    path.write_text(json.dumps(SILLYTAVERN), encoding="utf-8")
    name, got = import_file(presets, path)
    assert name == "Universal-Light" and presets.get(name) == got.params
    (tmp_path / "Default.json").write_text('{"temp": 0.5}', encoding="utf-8")
    name, _ = import_file(presets, tmp_path / "Default.json")
    assert name == "Default (imported)" and presets.get(name).temperature == 0.5
    with pytest.raises(PresetError, match="cannot be read"):
        import_file(presets, tmp_path / "missing.json")
