"""Settings are typed on load: a bad file or a bad value never stops the app (issue: settings
with types). Each case writes a real settings.json and loads it through `Settings.load`."""

from __future__ import annotations

import json
import logging

import pytest

from app.core.appdata import settings as settings_mod
from app.core.appdata.choices import ChatLayout, KvType, Theme
from app.core.appdata.settings import Settings, migrate


def write(tmp_path, data) -> object:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("data", [[], "text", 3, None, [{"n_ctx": 8192}]])
def test_a_file_that_is_not_an_object_is_kept_aside_and_defaults_are_used(tmp_path, data):
    path = write(tmp_path, data)
    assert Settings.load(path) == Settings()
    assert json.loads((tmp_path / "settings.json.bad").read_text()) == data
    assert not path.exists()  # the next save writes a fresh file


def test_a_number_written_as_a_string_is_read_as_the_number(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        loaded = Settings.load(write(tmp_path, {"n_ctx": "8192", "temperature": "0.7"}))
    assert (loaded.n_ctx, loaded.temperature) == (8192, 0.7)
    assert isinstance(loaded.n_ctx, int)
    assert "n_ctx" in caplog.text


@pytest.mark.parametrize(
    "name, bad",
    [
        ("n_ctx", "lots"),
        ("n_ctx", [8192]),
        ("n_ctx", True),
        ("n_ctx", 8192.5),
        ("flash_attn", "yes"),
        ("flash_attn", 1),
        ("temperature", "hot"),
        ("temperature", float("inf")),
        ("user_name", 7),
        ("kv_type", "q5_1"),
        ("theme", "blue"),
        ("prompt_order", "system"),
        ("prompt_order", [1, 2]),
        ("stop_strings", {"a": 1}),
        ("extra", []),
    ],
)
def test_a_bad_value_falls_back_to_its_default_with_a_warning_naming_it(
    tmp_path, caplog, name, bad
):
    raw = {name: bad, "user_name": "Ann"} if name != "user_name" else {name: bad}
    with caplog.at_level(logging.WARNING):
        loaded = Settings.from_dict(raw)
    assert getattr(loaded, name) == getattr(Settings(), name)
    if name != "extra":
        assert name in caplog.text
    if name != "user_name":
        assert loaded.user_name == "Ann"  # the good values of the same file are kept


def test_a_word_setting_reads_as_its_enum_and_is_saved_as_the_word(tmp_path):
    path = tmp_path / "settings.json"
    Settings.from_dict({"theme": "dark", "chat_layout": "book", "kv_type": "q4_0"}).save(path)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert (saved["theme"], saved["chat_layout"], saved["kv_type"]) == ("dark", "book", "q4_0")
    loaded = Settings.load(path)
    assert (loaded.theme, loaded.chat_layout, loaded.kv_type) == (
        Theme.DARK,
        ChatLayout.BOOK,
        KvType.Q4_0,
    )
    assert (
        isinstance(loaded.theme, Theme)
        and Settings.from_dict({"theme": ["dark"]}).theme is Theme.SYSTEM
    )


def test_a_list_that_is_not_of_texts_by_design_keeps_its_items():
    presets = [{"name": "Mine", "input_sequence": "<|user|>"}]
    assert Settings.from_dict({"instruct_presets": presets}).instruct_presets == presets


def test_good_values_and_unknown_keys_survive_a_round_trip(tmp_path):
    path = tmp_path / "settings.json"
    Settings(
        n_ctx=2048, kv_type="q8_0", stop_strings=["\nAnn:"], extra={"from_the_future": {"x": 1}}
    ).save(path)
    loaded = Settings.load(path)
    assert (loaded.n_ctx, loaded.kv_type, loaded.stop_strings) == (2048, "q8_0", ["\nAnn:"])
    assert loaded.extra == {"from_the_future": {"x": 1}}


def test_migrations_run_in_order_from_the_files_version():
    def rename_a_to_b(d: dict) -> dict:
        d["b"] = d.pop("a")
        return d

    steps = {1: rename_a_to_b, 2: lambda d: {**d, "c": d["b"] * 2}}
    assert migrate({"schema_version": 1, "a": 3}, steps, target=3) == {
        "schema_version": 3,
        "b": 3,
        "c": 6,
    }
    assert migrate({"schema_version": 2, "b": 5}, steps, target=3)["c"] == 10
    # a file without a version is version 1; one from a newer Parlor is left as it is
    assert migrate({"a": 1}, steps, target=2)["b"] == 1
    assert migrate({"schema_version": 9, "z": 1}, steps, target=3) == {"schema_version": 9, "z": 1}


def test_load_applies_the_registered_migrations(tmp_path, monkeypatch):
    monkeypatch.setattr(settings_mod, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(settings_mod, "MIGRATIONS", {1: lambda d: {"user_name": d["name"]}})
    loaded = settings_mod.migrate({"schema_version": 1, "name": "Ann"}, target=2)
    assert Settings.from_dict(loaded).user_name == "Ann"


def test_every_migration_step_up_to_the_current_version_exists():
    assert all(v in settings_mod.MIGRATIONS for v in range(1, settings_mod.SCHEMA_VERSION))


def test_a_version_1_file_gets_the_new_defaults_where_it_held_the_old_ones(tmp_path):
    """Version 1 wrote every default out; the context size now comes from the model."""
    old = {
        "schema_version": 1,
        "n_ctx": 4096,
        "lore_scan_depth": 4,
        "lore_budget_tokens": 512,
        "user_name": "Ann",
    }
    loaded = Settings.load(write(tmp_path, old))
    assert (loaded.n_ctx, loaded.lore_scan_depth, loaded.lore_budget_tokens) == (0, 2, 0)
    assert loaded.user_name == "Ann" and loaded.schema_version == 2
    chosen = Settings.load(write(tmp_path, {**old, "n_ctx": 8192, "lore_scan_depth": 6}))
    assert (chosen.n_ctx, chosen.lore_scan_depth) == (8192, 6)
