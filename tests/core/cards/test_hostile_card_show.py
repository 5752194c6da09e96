"""Issue 21, point 10: `parlor card show` never sends a card's control sequences to the
terminal (OSC 52 writes the clipboard, OSC 0 sets the window title, 0x9b is a one-byte CSI)."""

from __future__ import annotations

import argparse
import json

import pytest

from app.commands import card as card_command
from app.core.cards import new_card, save_card

OSC52 = "\x1b]52;c;cm0gLXJmIH4K\x07"
TITLE = "\x1b]0;pwned\x1b\\"
HOSTILE = f"Eve{OSC52}{TITLE}\x9b31m\u202egnp.exe"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="parlor")
    card_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["card", *argv])
    return args.handler(args)


def _no_controls(text: str) -> bool:
    return not any(
        (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in text
    )


@pytest.fixture
def hostile_card(tmp_path):
    card = new_card(HOSTILE)
    card.description = f"line one\n\tindented {OSC52} line"
    path = tmp_path / "eve.json"
    save_card(card, path)
    return path


def test_show_escapes_control_characters_but_keeps_newlines_and_tabs(hostile_card, capsys):
    assert run("show", str(hostile_card)) == 0
    out = capsys.readouterr().out
    assert _no_controls(out)
    assert "Eve\\u001b]52;c;cm0gLXJmIH4K\\u0007" in out and "\\u009b31m\\u202e" in out
    assert "  line one\n  \tindented" in out


def test_show_json_stays_valid_json_with_the_original_text(hostile_card, capsys):
    assert run("show", str(hostile_card), "--json") == 0
    out = capsys.readouterr().out
    assert _no_controls(out)
    assert json.loads(out)["data"]["name"] == HOSTILE


def test_errors_escape_a_hostile_file_name(tmp_path, capsys):
    bad = tmp_path / f"x{TITLE}.json"
    bad.write_text("{not json", encoding="utf-8")
    assert run("show", str(bad)) == 1
    err = capsys.readouterr().err
    assert _no_controls(err) and "\\u001b]0;pwned" in err


def test_chat_list_and_search_escape_names_titles_and_snippets(store_with_hostile_chat, capsys):
    from app.commands import chat as chat_command

    parser = argparse.ArgumentParser(prog="parlor")
    chat_command.register(parser.add_subparsers(dest="command"))
    for argv in (["chat", "list"], ["chat", "list", "--json"], ["chat", "search", "hello"]):
        args = parser.parse_args(argv)
        assert args.handler(args) == 0
        out = capsys.readouterr().out
        assert "Eve" in out and _no_controls(out), argv


@pytest.fixture
def store_with_hostile_chat():
    from app.core.appdata.paths import default_paths
    from app.core.store import Store

    paths = default_paths().ensure()
    store = Store(paths.database)
    character = store.characters.add({"name": HOSTILE})
    chat = store.chats.new(character, [f"hello {OSC52}"], title=f"title {TITLE}")
    store.close()
    return chat


def test_parlor_prompt_shows_escapes_on_a_terminal_and_stays_exact_in_a_pipe(
    hostile_card, capsys, monkeypatch
):
    import sys

    from app.cli import main

    assert main(["prompt", "--card", str(hostile_card)]) == 0
    piped = capsys.readouterr().out
    assert OSC52 in piped  # exactly what the model receives
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["prompt", "--card", str(hostile_card)]) == 0
    shown = capsys.readouterr().out
    assert _no_controls(shown) and "\\u001b]52;c;" in shown
