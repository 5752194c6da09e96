"""The settings dialog: every setting explained, applied without a restart, saved."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

from app.core.appdata.settings import Settings
from app.gui.settings_dialog import SECTIONS
from app.gui.theme import is_dark


def test_every_setting_has_a_section_an_explanation_and_a_default():
    keys = [row[0] for rows in SECTIONS.values() for row in rows]
    defaults = Settings()
    for rows in SECTIONS.values():
        for key, label, explanation, _kind, _opts in rows:
            assert hasattr(defaults, key) and label and explanation.endswith(".")
    assert len(keys) == len(set(keys))
    assert set(SECTIONS) >= {"Model", "Generation", "Prompt", "Appearance"}


def test_changes_apply_at_once_and_are_saved(qtbot, make_window):
    window = make_window()
    dialog = window.show_settings()
    kind, editor = dialog.editors["enter_sends"]
    editor.setChecked(False)
    dialog.editors["theme"][1].setCurrentText("dark")
    dialog.editors["chat_layout"][1].setCurrentText("book")
    dialog.editors["user_name"][1].setText("Ash")
    dialog.apply()
    assert window.composer.enter_sends is False
    assert is_dark(QApplication.instance())
    assert window.chat_view.itemDelegate().book
    assert window.chat_model.names["user"] == "Ash"
    saved = Settings.load(window.ctx.paths.settings_file)
    assert (saved.enter_sends, saved.theme, saved.user_name) == (False, "dark", "Ash")
    dialog.restore_defaults()
    dialog.apply()
    assert window.ctx.settings.theme == "system"
    assert not is_dark(QApplication.instance())  # the offscreen system theme is light


def test_settings_file_is_never_torn(tmp_path):
    path = tmp_path / "settings.json"
    Settings(user_name="Old").save(path)
    path.write_text('{"user_name": "Half', encoding="utf-8")  # a torn write from elsewhere
    assert Settings.load(path).user_name == Settings().user_name
    assert (tmp_path / "settings.json.bad").exists()


def test_model_settings_reload_the_model_with_them(qtbot, make_window, tiny_llama_path):
    from tests.gui.conftest import load

    window = make_window()
    load(qtbot, window, tiny_llama_path)
    dialog = window.show_settings()
    dialog.editors["n_ctx"][1].setValue(2048)
    dialog.editors["n_batch"][1].setValue(256)
    with qtbot.waitSignal(window.model_loaded, timeout=60000) as loaded:
        dialog.apply()
    assert loaded.args[0].n_ctx == 2048
    assert window.session.pending.n_batch == 256 and window.session.pending.flash_attn
    assert window.session.pending.session_dir.endswith("sessions")


def test_a_kv_cache_the_model_cannot_take_is_explained(qtbot, make_window, tiny_llama_path):
    """The tiny model's 16-wide heads cannot hold a q8_0 cache: say so, stay usable."""
    from tests.gui.conftest import load

    window = make_window()
    load(qtbot, window, tiny_llama_path)
    dialog = window.show_settings()
    dialog.editors["kv_type"][1].setCurrentText("q8_0")
    with qtbot.waitSignal(window.model_failed, timeout=60000) as failed:
        dialog.apply()
    assert "f16" in failed.args[0]
    assert window.banner.isVisible() and window.open_button.isEnabled()


def test_prompt_order_and_stop_strings_are_edited_as_text(qtbot, make_window):
    window = make_window()
    dialog = window.show_settings()
    dialog.editors["prompt_order"][1].setText("system, description ,history")
    dialog.editors["stop_strings"][1].setPlainText("THE END\n\n###")
    dialog.apply()
    assert window.ctx.settings.prompt_order == ["system", "description", "history"]
    assert window.ctx.settings.stop_strings == ["THE END", "###"]
    assert Settings.load(window.ctx.paths.settings_file).stop_strings == ["THE END", "###"]


def test_sampler_presets_and_samplers_for_one_chat(qtbot, make_window, tiny_llama_path):
    from tests.gui.conftest import load

    window = make_window(max_tokens=4)
    load(qtbot, window, tiny_llama_path)
    dialog = window.show_settings()
    bar = window.settings_ui.preset_bar
    assert {"Default", "Creative", "Precise", "Mirostat"} <= set(bar.presets.names())
    bar.use("Mirostat")
    assert dialog.values()["mirostat_mode"] in (1, 2)
    bar.name.setText("My evening")
    bar.save()
    assert "My evening" in bar.presets.names()
    dialog.editors["temperature"][1].setValue(0.3)
    dialog.editors["seed"][1].setValue(1234)
    bar.save_for_chat()
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        window.send("Hello")
    used = window.chat_model.messages()[-1]
    info = window.ctx.store.messages.get(used.id).gen_info
    assert info["sampler"]["temperature"] == 0.3 and info["sampler"]["seed"] == 1234
    assert window.ctx.settings.temperature != 0.3  # the general settings are untouched


def test_a_session_too_big_for_the_cap_is_shown_under_model(qtbot, make_window):
    """The engine could not save a chat under the cap: Settings → Model says so."""
    from PySide6.QtWidgets import QLabel

    from app.core.engine.sessions import write_notice

    window = make_window()
    text = "Not saved: the session of 9000 tokens would take 900 MB, more than the 512 MB cap"
    write_notice(window.ctx.paths.cache / "sessions", text)
    dialog = window.show_settings()
    labels = [w.text() for w in dialog.sections["Model"].findChildren(QLabel)]
    assert text in labels
