import json

import pytest

from app.commands import prompt as prompt_command
from app.core.prompt import Message, PromptInput, build_prompt, estimate_tokens, preset
from app.core.prompt.st_chat import read_st_chat

CARD = {
    "name": "Alice",
    "description": "{{char}} is a fox.",
    "personality": "sly",
    "scenario": "",
    "first_mes": "Hello, {{user}}!",
    "mes_example": "",
    "character_book": {
        "entries": [
            {
                "keys": ["dragon"],
                "content": "Dragons sleep.",
                "enabled": True,
                "insertion_order": 1,
                "name": "dragons",
            }
        ]
    },
}


@pytest.fixture
def fake_card(monkeypatch):
    monkeypatch.setattr(prompt_command, "load_card_data", lambda path: dict(CARD))


def run(capsys, *argv):
    from app.cli import main

    code = main(["prompt", "--card", "alice.png", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_chat(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_prints_the_exact_prompt(fake_card, capsys):
    code, out, _ = run(capsys, "--user", "Bob")
    greeting = [Message("assistant", "Hello, {{user}}!")]
    expected = build_prompt(
        PromptInput(CARD, "Bob", history=greeting), preset("chatml"), estimate_tokens, 4096, 512
    ).text
    assert code == 0
    assert out == expected
    assert out.endswith("Hello, Bob!<|im_end|>\n<|im_start|>assistant\n")


def test_json_output(fake_card, capsys, tmp_path):
    chat = write_chat(
        tmp_path / "chat.jsonl",
        [
            {
                "user_name": "Bob",
                "character_name": "Alice",
                "create_date": "2024-1-1 @10h 00m 00s 000ms",
                "chat_metadata": {},
            },
            {"name": "Alice", "is_user": False, "mes": "Hello, Bob!", "swipes": ["Hello, Bob!"]},
            {"name": "Bob", "is_user": True, "mes": "Tell me about the dragon."},
            {"name": "Narrator", "is_user": False, "is_system": True, "mes": "hidden note"},
        ],
    )
    code, out, _ = run(capsys, "--chat", str(chat), "--template", "mistral", "--json")
    data = json.loads(out)
    assert code == 0
    assert {"prompt", "tokens", "parts", "dropped_messages", "lore"} <= set(data)
    assert data["lore"] == ["dragons"]
    assert data["dropped_messages"] == 0
    # an entry without a position goes after the character definition (SillyTavern)
    assert "Alice's personality: sly\n\nDragons sleep. [/INST]" in data["prompt"]
    assert data["lore_trace"][0]["fired"] and data["lore_trace"][0]["entry"] == "dragons"
    assert "hidden note" not in data["prompt"]
    assert data["tokens"] == sum(p["tokens"] for p in data["parts"])
    assert all(set(p) == {"name", "tokens", "text"} for p in data["parts"])
    assert "\nBob:" in data["stop"]  # the user's name came from the chat


def test_small_context_drops_messages(fake_card, capsys, tmp_path):
    rows = [{"user_name": "Bob"}]
    for i in range(60):
        rows.append({"name": "x", "is_user": i % 2 == 1, "mes": f"message {i} " + "word " * 20})
    code, out, err = run(
        capsys,
        "--chat",
        str(write_chat(tmp_path / "c.jsonl", rows)),
        "--ctx",
        "1024",
        "--reply-tokens",
        "256",
        "--json",
    )
    data = json.loads(out)
    assert code == 0 and data["dropped_messages"] > 0 and data["tokens"] <= 768
    assert "message 59" in data["prompt"] and "message 0 " not in data["prompt"]


def test_missing_model_and_bad_chat_are_errors(fake_card, capsys, tmp_path):
    code, out, err = run(capsys, "--model", str(tmp_path / "none.gguf"))
    assert code == 1 and "no such model file" in err and out == ""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user_name": "Bob"}\n{"mes": "ok", "is_user": true}\nnot json\n')
    code, _, err = run(capsys, "--chat", str(bad))
    assert code == 1 and "line 3" in err


def test_unreadable_card_is_an_error(monkeypatch, capsys):
    def broken(path):
        raise ValueError("not a character card")

    monkeypatch.setattr(prompt_command, "load_card_data", broken)
    code, out, err = run(capsys)
    assert code == 1 and "not a character card" in err


def test_template_overrides_the_models_with_its_tokenizer(fake_card, capsys, tmp_path):
    """--model gives the tokenizer, --template (here a SillyTavern instruct preset) the format."""
    from tests.tiny_models import write_tiny_llama

    model = write_tiny_llama(tmp_path / "tiny.gguf", chat_template=CHATML_JINJA)
    code, out, err = run(
        capsys, "--model", str(model), "--template", "Mistral V2 & V3", "--user", "Bob", "--json"
    )
    data = json.loads(out)
    assert code == 0 and data["prompt"].startswith("[INST] ")
    assert data["prompt"].endswith("[/INST] Alice:")
    assert data["tokens"] > len(data["prompt"]) / 3.5  # the tiny model's tokenizer counted


def test_unknown_template_is_refused(fake_card, capsys):
    with pytest.raises(SystemExit):
        run(capsys, "--template", "nonesuch")


def test_st_chat_reader_keeps_names_and_skips_hidden(tmp_path):
    chat = read_st_chat(
        write_chat(
            tmp_path / "c.jsonl",
            [
                {"user_name": "You", "character_name": "Alice"},
                {"name": "Alice", "is_user": False, "mes": "Hi"},
                {"name": "You", "is_user": True, "mes": "Yo"},
                {"name": "Alice", "is_user": False, "is_system": True, "mes": "hidden"},
            ],
        )
    )
    assert chat.metadata["character_name"] == "Alice"
    assert chat.messages == [Message("assistant", "Hi", "Alice"), Message("user", "Yo", "You")]


def test_a_placeholder_user_name_gives_way_to_the_users_lines(tmp_path):
    """The header's `user_name` "unused" names nobody: the user is who the user's lines say
    (SillyTavern's `name` on `is_user` lines), as the chat exporter already reads it."""
    lines = [
        {"user_name": "unused", "character_name": "unused"},
        {"name": "Sam", "is_user": True, "mes": "Hi"},
    ]
    assert read_st_chat(write_chat(tmp_path / "c.jsonl", lines)).user_name == "Sam"
    named = [{"user_name": "Bea"}, *lines[1:]]
    assert read_st_chat(write_chat(tmp_path / "n.jsonl", named)).user_name == "Bea"


def test_real_card_file(tmp_path, capsys):
    pytest.importorskip("app.core.cards")
    card = tmp_path / "alice.json"
    card.write_text(
        json.dumps(
            {
                "spec": "chara_card_v3",
                "spec_version": "3.0",
                "data": {
                    **CARD,
                    "tags": [],
                    "creator": "",
                    "character_version": "",
                    "creator_notes": "",
                    "system_prompt": "",
                    "post_history_instructions": "",
                    "alternate_greetings": [],
                    "group_only_greetings": [],
                    "extensions": {},
                },
            }
        ),
        encoding="utf-8",
    )
    from app.cli import main

    assert main(["prompt", "--card", str(card), "--user", "Bob"]) == 0
    assert "Alice is a fox." in capsys.readouterr().out


CHATML_JINJA = (
    "{{ bos_token }}{% for message in messages %}{{'<|im_start|>' + message['role'] + "
    "'\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_model_template_and_tokenizer(fake_card, capsys, tmp_path):
    from tests.tiny_models import write_tiny_llama

    model = write_tiny_llama(tmp_path / "tiny.gguf", chat_template=CHATML_JINJA)
    code, out, err = run(capsys, "--model", str(model), "--user", "Bob", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["prompt"].startswith("<|im_start|>system\n")  # BOS left to the tokenizer
    assert data["prompt"].endswith("Hello, Bob!<|im_end|>\n<|im_start|>assistant\n")
    assert "</s>" in data["stop"]  # the model's EOS, read from its header
    assert data["tokens"] == sum(p["tokens"] for p in data["parts"]) > 0
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        assert "estimates" in err
    else:
        assert "estimates" not in err
        # the tiny vocabulary spells most of this prompt letter by letter
        assert data["tokens"] > len(data["prompt"]) / 3.5


def test_model_without_a_template_gets_a_preset(fake_card, capsys, tmp_path):
    from tests.tiny_models import write_tiny_llama

    model = write_tiny_llama(tmp_path / "bare.gguf")
    code, out, err = run(capsys, "--model", str(model))
    assert code == 0 and out.startswith("<|im_start|>system\n")  # ChatML when nothing is known
    assert "has no chat template of its own" in err and "--template" in err
