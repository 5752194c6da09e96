"""`parlor prompt --json` explains the lore: `lore` is the fired names in prompt order and
`lore_trace` every entry with why; global books come with `--world`, the author's note and
scenario from the chat's SillyTavern `chat_metadata`."""

import json
from pathlib import Path

from app.cli import main

CARDS = Path(__file__).resolve().parents[2] / "fixtures"


def run(capsys, *argv):
    code = main(["prompt", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_chat(path, metadata, *messages):
    rows = [{"user_name": "Ann", "character_name": "Seraphina", "chat_metadata": metadata}]
    rows += [{"name": name, "is_user": name == "Ann", "mes": text} for name, text in messages]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_lore_trace_for_card_and_world_books(capsys, tmp_path):
    """A SillyTavern world-info file (`entries` keyed by uid, `disable`, `position` 4 with
    `depth` and `role`) used as a global book next to the card's own."""
    chat = write_chat(
        tmp_path / "c.jsonl",
        {"integrity": "abc"},
        ("Seraphina", "Welcome."),
        ("Ann", "Can we rest at the Docks?"),
        ("Seraphina", "Past the lighthouse."),
        ("Ann", "Is the glade a refuge?"),
    )
    code, out, err = run(
        capsys,
        "--card",
        str(CARDS / "worldinfo" / "seraphina_like.json"),
        "--chat",
        str(chat),
        "--world",
        str(CARDS / "worldinfo" / "harbor_world.json"),
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    trace = {t["entry"]: t for t in data["lore_trace"]}
    assert set(trace["glade"]) == {"entry", "fired", "reason", "position", "tokens"}
    assert trace["glade"]["fired"] and trace["glade"]["tokens"] > 0
    assert trace["glade"]["position"] == "before_char"
    assert trace["Harbor"]["fired"]
    assert trace["Harbor"]["reason"] == "key '/\\bdocks?\\b/i' in message 3 from the end"
    assert trace["Lighthouse"] == {
        "entry": "Lighthouse",
        "fired": True,
        "reason": "key 'lighthouse' in message 2 from the end",
        "position": "at_depth 1 user",
        "tokens": 9,
    }
    assert trace["Ghost"] == {
        "entry": "Ghost",
        "fired": False,
        "reason": "disabled",
        "position": "after_char",
        "tokens": 0,
    }
    assert not trace["shadowfang"]["fired"]
    assert trace["shadowfang"]["reason"] == "no key found in the last 2 messages"
    assert data["lore"][-1] == "Lighthouse"  # in the chat, after the story string's lore
    assert set(data["lore"]) == {n for n, t in trace.items() if t["fired"]}
    prompt = data["prompt"]
    assert prompt.index("Past the lighthouse.") < prompt.index("The lighthouse keeper is blind")
    assert prompt.index("lighthouse keeper") < prompt.index("Is the glade a refuge?")


def test_authors_note_and_scenario_from_chat_metadata(capsys, tmp_path):
    """SillyTavern's `note_prompt`/`note_depth`/`note_position`/`note_role` and
    `chat_metadata.scenario` (which wins over the card's scenario when set)."""
    meta = {
        "note_prompt": "Keep it short.",
        "note_interval": 1,
        "note_position": 1,
        "note_depth": 0,
        "note_role": 0,
        "scenario": "A rainy night at the glade.",
    }
    chat = write_chat(tmp_path / "c.jsonl", meta, ("Seraphina", "Hello."), ("Ann", "Hi."))
    code, out, err = run(
        capsys,
        "--card",
        str(CARDS / "worldinfo" / "seraphina_like.json"),
        "--chat",
        str(chat),
        "--json",
    )
    assert code == 0, err
    prompt = json.loads(out)["prompt"]
    assert "Scenario: A rainy night at the glade." in prompt
    assert prompt.endswith(
        "Hi.<|im_end|>\n<|im_start|>system\nKeep it short.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_a_bad_world_file_is_an_error(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    code, _, err = run(
        capsys, "--card", str(CARDS / "worldinfo" / "seraphina_like.json"), "--world", str(bad)
    )
    assert code == 1 and "bad.json" in err
