"""Settings → Generation: DRY and XTC rows, and a SillyTavern sampler preset imported."""

from __future__ import annotations

import json

from app.core.appdata.settings import Settings
from app.core.chat.job import sampling_from

# the keys of a SillyTavern text-completion preset (default/content/presets/textgen)
PRESET = {
    "temp": 1.1,
    "min_p": 0.05,
    "rep_pen": 1.0,
    "tfs": 0.9,
    "top_a": 0.2,
    "dry_multiplier": 0.8,
    "dry_sequence_breakers": '["\\n", ":", "*"]',
    "xtc_threshold": 0.12,
    "xtc_probability": 0.5,
    "sampler_priority": ["temperature", "min_p"],
}


def test_an_imported_preset_fills_the_samplers_says_what_it_ignored_and_is_kept(
    qtbot, make_window, tmp_path
):
    window = make_window()
    dialog = window.show_settings()
    bar = window.settings_ui.preset_bar
    path = tmp_path / "Night owl.json"
    path.write_text(json.dumps(PRESET), encoding="utf-8")
    bar.import_file(path)
    values = dialog.values()
    assert (values["temperature"], values["dry_multiplier"], values["xtc_probability"]) == (
        1.1,
        0.8,
        0.5,
    )
    assert json.loads(values["dry_sequence_breakers"]) == ["\n", ":", "*"]
    assert "Night owl" in bar.presets.names() and bar.names.currentText() == "Night owl"
    assert "tfs = 0.9" in bar.status.text() and "top_a = 0.2" in bar.status.text()
    dialog.apply()
    saved = Settings.load(window.ctx.paths.settings_file)
    sampling = sampling_from(saved, [])
    assert (
        sampling.dry_on and sampling.xtc_on and sampling.dry_sequence_breakers == ("\n", ":", "*")
    )


def test_a_file_that_is_no_preset_is_refused_in_words_and_changes_nothing(
    qtbot, make_window, tmp_path
):
    window = make_window()
    dialog = window.show_settings()
    bar = window.settings_ui.preset_bar
    before = dialog.values()
    path = tmp_path / "card.json"
    path.write_text('{"name": "Mira", "description": "a card"}', encoding="utf-8")
    bar.import_file(path)
    assert "none of the samplers" in bar.status.text()
    assert dialog.values() == before and "card" not in bar.presets.names()
    assert dialog.isVisible()
