"""Sampler presets on disk and per-chat overrides (plain files, no engine needed)."""

from __future__ import annotations

import json

import pytest

from app.core.engine import SamplingParams
from app.core.engine.presets import (
    BUILT_IN,
    PresetError,
    SamplerPresets,
    apply_overrides,
    overrides_between,
)


@pytest.fixture
def presets(tmp_path):
    return SamplerPresets(tmp_path / "sampler_presets")


def test_a_saved_preset_comes_back_equal(presets):
    params = SamplingParams(
        temperature=1.3, top_k=0, mirostat_mode=2, seed=7, repeat_last_n=-1, stop=("\nAnn:",)
    )
    presets.save("My night owl", params)
    assert presets.get("My night owl") == params
    assert presets.names() == [*BUILT_IN, "My night owl"]


def test_dry_and_xtc_are_saved_and_a_hand_written_file_may_use_sillytaverns_breakers(presets):
    params = SamplingParams(
        dry_multiplier=0.8, dry_sequence_breakers=("\n", "*"), xtc_probability=0.5
    )
    presets.save("No loops", params)
    assert presets.get("No loops") == params
    path = presets.folder / "by-hand.json"
    sampling = {"dry_multiplier": 1.0, "dry_sequence_breakers": '["\\n", ":"]'}
    path.write_text(json.dumps({"name": "By hand", "sampling": sampling}), encoding="utf-8")
    assert presets.get("By hand").dry_sequence_breakers == ("\n", ":")
    assert presets.get("Varied (DRY + XTC)").dry_on and presets.get("Varied (DRY + XTC)").xtc_on


def test_built_in_presets_cannot_be_overwritten_or_deleted(presets):
    with pytest.raises(PresetError, match="built-in"):
        presets.save("Default", SamplingParams())
    with pytest.raises(PresetError, match="built-in"):
        presets.delete("Creative")
    assert presets.get("Creative").temperature > SamplingParams().temperature


def test_deleting_a_preset_removes_it(presets):
    presets.save("tmp", SamplingParams(top_p=0.5))
    presets.delete("tmp")
    assert "tmp" not in presets.names()
    with pytest.raises(PresetError, match="no sampler preset"):
        presets.get("tmp")


def test_overrides_merge_over_the_preset_and_ignore_unknown_keys():
    base = BUILT_IN["Precise"]
    merged = apply_overrides(base, {"temperature": 1.2, "top_k": 10, "from_the_future": 1})
    assert (merged.temperature, merged.top_k, merged.min_p) == (1.2, 10, base.min_p)
    assert apply_overrides(base, None) is base
    assert apply_overrides(base, overrides_between(base, merged)) == merged
    assert overrides_between(base, merged) == {"temperature": 1.2, "top_k": 10}


@pytest.mark.parametrize(
    "bad",
    [
        {"top_p": 1.5},
        {"temperature": -1},
        {"top_k": 2.5},
        {"mirostat_mode": 3},
        {"seed": "x"},
        {"stop": "abc"},
        {"min_p": True},
    ],
)
def test_out_of_range_overrides_are_refused(bad):
    with pytest.raises(PresetError):
        apply_overrides(SamplingParams(), bad)


def test_a_broken_preset_file_is_an_error_naming_the_file(presets):
    path = presets.save("broken", SamplingParams())
    data = json.loads(path.read_text())
    data["sampling"]["top_p"] = 7
    path.write_text(json.dumps(data))
    with pytest.raises(PresetError, match=r"broken\.json.*top_p"):
        presets.get("broken")
    path.write_text("{not json")
    with pytest.raises(PresetError, match="broken.json"):
        presets.get("broken")
    assert "broken" not in presets.names()  # listed only when readable


def test_names_that_are_not_usable_are_refused(presets):
    with pytest.raises(PresetError):
        presets.save("///", SamplingParams())
