"""`parlor prompt`: macros from the chat file's variables, the unknown ones listed in the
JSON, and the example dialogue as turns of the model's own template."""

from __future__ import annotations

import json

import pytest

from app.commands import prompt as prompt_command
from tests.core.prompt.test_prompt_example_turns import CHATML_JINJA
from tests.tiny_models import write_tiny_llama

CARD = {
    "name": "Alice",
    "description": '{{char}} feels {{getvar::mood}}. {{nope}} {{banned "alas"}}',
    "first_mes": "Hello, {{user}}!",
    "mes_example": "<START>\n{{user}}: Who are you?\n{{char}}: A fox.",
}


@pytest.fixture
def fake_card(monkeypatch):
    monkeypatch.setattr(prompt_command, "load_card_data", lambda path: dict(CARD))


def _run(capsys, *argv):
    from app.cli import main

    code = main(["prompt", "--card", "alice.png", "--json", *argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else err


def test_variables_from_the_chat_file_and_unknown_macros_in_the_json(fake_card, capsys, tmp_path):
    chat = tmp_path / "chat.jsonl"
    rows = [
        {
            "user_name": "Bob",
            "character_name": "Alice",
            "chat_metadata": {"variables": {"mood": "calm"}},
        },
        {"name": "Alice", "is_user": False, "mes": "Hi"},
        {"name": "Bob", "is_user": True, "mes": "Mood? {{getvar::mood}}"},
    ]
    chat.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    code, data = _run(capsys, "--chat", str(chat))
    assert code == 0
    assert "Alice feels calm." in data["prompt"] and "Mood? calm" in data["prompt"]
    assert data["unknown_macros"] == ["{{nope}}"] and data["banned_words"] == ["alas"]
    assert "alas" not in data["prompt"]


def test_the_models_template_gets_example_turns(fake_card, capsys, tmp_path):
    model = write_tiny_llama(tmp_path / "tiny.gguf", chat_template=CHATML_JINJA)
    code, data = _run(capsys, "--model", str(model), "--user", "Bob")
    assert code == 0 and "<START>" not in data["prompt"]
    assert (
        "<|im_start|>system\n[Example Chat]<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n"
        "<|im_start|>assistant\nA fox.<|im_end|>\n<|im_start|>system\n[Start a new Chat]"
    ) in data["prompt"]
    assert "examples" in [p["name"] for p in data["parts"]]
