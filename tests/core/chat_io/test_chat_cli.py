"""`parlor chat import|export|list|search` end to end, on the test's PARLOR_HOME."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.appdata.paths import default_paths
from app.core.store import Store

FIXTURES = Path(__file__).parents[2] / "fixtures" / "chats"
CARD = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {"name": "Alice", "description": "A librarian.", "first_mes": "Oh, hello!"},
}


@pytest.fixture
def card(tmp_path):
    path = tmp_path / "alice.json"
    path.write_text(json.dumps(CARD), encoding="utf-8")
    return path


def run(capsys, *argv):
    from app.cli import main

    code = main(["chat", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_import_for_a_missing_character_needs_consent(card, capsys):
    code, _, err = run(capsys, "import", FIXTURES / "old_style.jsonl", "--card", card)
    assert code == 1 and "Alice" in err and "--create-missing" in err
    code, out, err = run(
        capsys, "import", FIXTURES / "old_style.jsonl", "--card", card, "--create-missing"
    )
    assert code == 0 and "Imported 6 messages as chat 1" in out and "Added Alice" in err
    code, out, _ = run(capsys, "import", FIXTURES / "new_style.jsonl", "--card", card)
    assert code == 0  # the second import finds her
    store = Store(default_paths().database)
    assert [r.name for r in store.characters.list()] == ["Alice"]
    assert len(store.chats.all()) == 2
    store.close()


def test_list_export_and_search(card, capsys, tmp_path):
    run(capsys, "import", FIXTURES / "old_style.jsonl", "--card", card, "--create-missing")
    code, out, _ = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [(r["id"], r["character_name"], r["message_count"]) for r in rows] == [
        (1, "Alice", 6)
    ]
    code, out, _ = run(capsys, "list")
    assert "Alice: old_style" in out
    for ext in ("jsonl", "md", "txt"):
        code, out, _ = run(capsys, "export", 1, tmp_path / f"out.{ext}")
        assert code == 0 and f"({ext})" in out
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[3])["swipes"] == ["A story about dragons.", "A book about lighthouses."]
    assert "A book about lighthouses." in (tmp_path / "out.md").read_text(encoding="utf-8")
    code, out, _ = run(capsys, "search", "lighthouses", "--json")
    assert [(h["chat_id"], h["character_name"]) for h in json.loads(out)] == [(1, "Alice")]


def test_malformed_file_is_refused_unless_bad_lines_are_skipped(card, capsys):
    bad = FIXTURES / "malformed.jsonl"
    code, _, err = run(capsys, "import", bad, "--card", card, "--create-missing")
    assert code == 1 and "line 3" in err and "line 5" in err and "--skip-bad-lines" in err
    code, out, _ = run(capsys, "import", bad, "--card", card, "--skip-bad-lines")
    assert code == 0 and "Imported 3 messages" in out


def test_bad_ids_and_files_are_errors_not_tracebacks(card, capsys, tmp_path):
    code, _, err = run(capsys, "export", 42, tmp_path / "x.jsonl")
    assert code == 1 and "No chat with id 42" in err
    code, _, err = run(capsys, "import", FIXTURES / "old_style.jsonl", "--character", 7)
    assert code == 1 and "No character with id 7" in err
    code, _, err = run(
        capsys, "import", tmp_path / "none.jsonl", "--card", card, "--create-missing"
    )
    assert code == 1 and "none.jsonl" in err
    code, _, err = run(
        capsys, "import", FIXTURES / "old_style.jsonl", "--card", tmp_path / "nocard.png"
    )
    assert code == 1 and "nocard.png" in err
