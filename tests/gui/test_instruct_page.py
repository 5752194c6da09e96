"""Settings → Instruct: every field editable, saved as a named preset, ST JSON in and out."""

from __future__ import annotations

import json

from app.core.appdata.settings import Settings
from app.core.chat.job import PromptJob, TokenCounter
from app.core.prompt import Message, PromptInput
from app.gui.instruct_page import InstructPage
from tests.prompt_models import model_info

INFO = model_info()


def _build(settings: Settings) -> str:
    inp = PromptInput(
        card={"name": "Alice", "description": "A fox."},
        user_name="Bob",
        history=[Message("user", "Hi.")],
    )
    job = PromptJob(inp, INFO, settings, TokenCounter())
    return job(lambda texts: [len(t) // 4 + 1 for t in texts]).text


def test_a_changed_preset_is_saved_under_a_name_and_used(qtbot, tmp_path):
    settings = Settings()
    page = InstructPage(settings)
    qtbot.addWidget(page)
    assert page.editors["input_sequence"].text() == "<|im_start|>user"
    assert page.editors["names_behavior"].currentText() == "always"
    assert page.editors["output_suffix"].text() == "<|im_end|>\\n"  # line breaks as \n
    page.editors["input_sequence"].setText("<|im_start|>human")
    page.editors["names_behavior"].setCurrentText("none")
    page.editors["ctx:story_string"].setPlainText("<|im_start|>system\n{{description}}<|im_end|>")
    assert page.save_as("Mine")
    assert settings.template == "Mine" and settings.context_template == "Mine"
    saved = [json.loads(p) for p in settings.instruct_presets]
    assert [p["name"] for p in saved] == ["Mine"] and saved[0]["output_suffix"] == "<|im_end|>\n"
    text = _build(settings)
    assert text.startswith("<|im_start|>system\nA fox.<|im_end|>\n<|im_start|>human\nHi.")
    assert page.save_as("Mine") and len(settings.instruct_presets) == 1  # replaced, not doubled
    path = tmp_path / "settings.json"
    settings.save(path)
    again = Settings.load(path)  # saved presets survive a restart
    assert again.instruct_presets == settings.instruct_presets and _build(again) == text


def test_a_broken_story_string_is_not_saved_and_says_why(qtbot):
    settings = Settings()
    page = InstructPage(settings)
    qtbot.addWidget(page)
    page.editors["ctx:story_string"].setPlainText("{{#if description}}open")
    assert not page.save_as("Broken")
    assert "never closed" in page.message.text()
    assert settings.instruct_presets == [] and settings.template == "auto"
    assert page.editors["ctx:story_string"].toPlainText() == "{{#if description}}open"


def test_sillytavern_files_import_and_export(qtbot, tmp_path):
    settings = Settings()
    page = InstructPage(settings)
    qtbot.addWidget(page)
    page.presets.setCurrentText("Alpaca")
    page.export_file(str(tmp_path / "alpaca.json"))
    data = json.loads((tmp_path / "alpaca.json").read_text())
    assert data["input_sequence"] == "### Instruction:" and data["names_behavior"] == "force"
    data["name"], data["input_sequence"] = "My Alpaca", "### Question:"
    (tmp_path / "mine.json").write_text(json.dumps(data))
    assert page.import_file(str(tmp_path / "mine.json"))
    assert page.presets.currentText() == "My Alpaca"
    assert page.editors["input_sequence"].text() == "### Question:"
    (tmp_path / "bad.json").write_text("{not json")
    assert not page.import_file(str(tmp_path / "bad.json"))
    assert "not a readable JSON file" in page.message.text()


def test_the_settings_dialog_has_the_page_and_offers_saved_presets(qtbot, make_window):
    window = make_window()
    dialog = window.show_settings()
    qtbot.addWidget(dialog)
    titles = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert "Instruct" in titles
    page = next(w for w in dialog.findChildren(InstructPage))
    assert page.save_as("Saved One")
    box = dialog.editors["template"][1]
    assert box.currentText() == "Saved One"
    dialog.apply()
    assert window.ctx.settings.template == "Saved One"


def test_settings_show_the_models_trained_context(qtbot, make_window, tiny_llama_path):
    from PySide6.QtWidgets import QLabel

    from tests.gui.conftest import load

    window = make_window()
    load(qtbot, window, tiny_llama_path)
    dialog = window.show_settings()
    qtbot.addWidget(dialog)
    texts = [w.text() for w in dialog.sections["Model"].findChildren(QLabel)]
    assert any("trained on 4096 tokens and runs with a 4096-token context" in t for t in texts)
