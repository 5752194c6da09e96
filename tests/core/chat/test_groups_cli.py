"""`parlor prompt --card A --card B …`: the prompt for a group's next speaker."""

from __future__ import annotations

import json

from app.cli import main


def _card(tmp_path, name, desc, **data):
    path = tmp_path / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "spec": "chara_card_v2",
                "spec_version": "2.0",
                "data": {"name": name, "description": desc, "first_mes": f"I am {name}.", **data},
            }
        )
    )
    return str(path)


def _run(capsys, *argv):
    code = main(["prompt", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_named_speaker_gets_a_swap_prompt(tmp_path, capsys):
    """group-chats.js: a new group chat opens with every member's first message
    (`getGroupChat`); in swap mode only the speaker's card is sent."""
    a = _card(tmp_path, "Ann", "Ann forges.")
    b = _card(tmp_path, "Bob", "Bob sings.")
    code, out, err = _run(
        capsys, "--card", a, "--card", b, "--speaker", "bob", "--template", "Alpaca", "--json"
    )
    assert code == 0 and "speaker: Bob" in err
    built = json.loads(out)
    assert built["speaker"] == "Bob"
    assert "Bob sings." in built["prompt"] and "Ann forges." not in built["prompt"]
    assert "Ann: I am Ann." in built["prompt"] and built["prompt"].rstrip().endswith("Bob:")
    assert "\nAnn:" in built["stop"]


def test_join_mode_and_the_natural_pick_from_a_chat(tmp_path, capsys):
    """`activateNaturalOrder`: the member named in the last message speaks next."""
    a = _card(tmp_path, "Ann", "Ann forges.")
    b = _card(tmp_path, "Bob", "Bob sings.")
    chat = tmp_path / "group.jsonl"
    chat.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"name": "Ann", "is_user": False, "mes": "Hello."},
                {"name": "Uma", "is_user": True, "mes": "Sing for us, Bob!"},
            ]
        )
    )
    code, out, err = _run(
        capsys, "--card", a, "--card", b, "--chat", str(chat), "--group-mode", "join"
    )
    assert code == 0 and "speaker: Bob" in err
    assert "Ann forges.\nBob sings." in out


def test_an_unknown_speaker_is_named_in_the_error(tmp_path, capsys):
    a = _card(tmp_path, "Ann", "Ann forges.")
    b = _card(tmp_path, "Bob", "Bob sings.")
    code, out, err = _run(capsys, "--card", a, "--card", b, "--speaker", "Zed")
    assert code == 1 and "--speaker 'Zed' is none of the cards: Ann, Bob" in err and not out


def test_parlor_group_import_list_and_export(tmp_path, capsys):
    from tests.core.chat_io.test_groups_st_files import _write_st_folder

    group_file = _write_st_folder(tmp_path / "st")
    code, out, err = _run_cli(capsys, "group", "import", str(group_file))
    assert code == 0 and out.startswith("group 1: 1 chat(s)")
    assert "added with only their names: Ann, Bob" in err
    code, out, _ = _run_cli(capsys, "group", "list", "--json")
    assert json.loads(out) == [
        {"id": 1, "name": "Inn", "members": ["Ann", "Bob"], "muted": ["Bob"], "chats": [1]}
    ]
    code, out, _ = _run_cli(capsys, "group", "export", "1", str(tmp_path / "out"))
    assert code == 0 and out.splitlines()[0].endswith("1727000000000.json")
    code, _, err = _run_cli(capsys, "group", "import", str(tmp_path / "none.json"))
    assert code == 1 and "no such file" in err


def _run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
