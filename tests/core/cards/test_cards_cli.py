"""`parlor card show` and `parlor card convert`."""

from __future__ import annotations

import argparse
import json

import pytest

from app.commands import card as card_command
from app.core.cards import load_card, to_v2_json, to_v3_json
from tests.card_fixtures import FIXTURES, fx


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="parlor")
    card_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["card", *argv])
    return args.handler(args)


def test_show_json_prints_spec_version_and_data(capsys):
    assert run("show", str(FIXTURES / "v2_full.json"), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["spec", "spec_version", "data"]
    assert out["spec"] == "chara_card_v3" and out["spec_version"] == "3.0"
    assert out["data"]["name"] == "Seraphina"
    assert out["data"]["group_only_greetings"] == []


def test_show_text(capsys, tmp_path):
    png = tmp_path / "hana.png"
    png.write_bytes(fx.v3_png())
    assert run("show", str(png)) == 0
    out = capsys.readouterr().out
    assert "Name:       Hana Kim (nickname: Hana)" in out
    assert "Lorebook:   2 entries" in out and "PNG 2x2" in out
    assert "어서 오세요" in out


def test_show_prints_warnings_to_stderr(capsys):
    assert run("show", str(FIXTURES / "drifted_types.json"), "--json") == 0
    captured = capsys.readouterr()
    assert "warning: 'creation_date' was in milliseconds" in captured.err
    assert json.loads(captured.out)["data"]["tags"] == ["robot", "sci-fi", "test"]


def test_show_error_goes_to_stderr_with_nonzero_exit(capsys, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert run("show", str(bad)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {bad}: not a PNG file\n"


@pytest.mark.parametrize("source", ["v2_full.json", "v3_full.json", "v1_tavern.json"])
@pytest.mark.parametrize("suffix", [".png", ".json", ".charx"])
def test_convert_between_formats(tmp_path, source, suffix):
    out = tmp_path / f"out{suffix}"
    assert run("convert", str(FIXTURES / source), str(out)) == 0
    original, converted = load_card(FIXTURES / source), load_card(out)
    expected, got = to_v3_json(original), to_v3_json(converted)
    if suffix == ".charx":
        expected["data"].pop("assets", None)
        got["data"].pop("assets", None)
    assert got == expected


def test_convert_to_v2_json(tmp_path):
    out = tmp_path / "v2.json"
    assert run("convert", str(FIXTURES / "v2_full.json"), str(out), "--v2") == 0
    assert json.loads(out.read_text("utf-8")) == fx.load_json("v2_full.json")
    assert to_v2_json(load_card(out)) == fx.load_json("v2_full.json")


def test_convert_with_an_image(tmp_path):
    image = tmp_path / "face.png"
    image.write_bytes(fx.png_with())
    out = tmp_path / "out.png"
    assert run("convert", str(FIXTURES / "v3_full.json"), str(out), "--image", str(image)) == 0
    assert load_card(out).avatar == image.read_bytes()


def test_convert_charx_to_png_warns_about_assets(tmp_path, capsys):
    source = tmp_path / "hana.charx"
    source.write_bytes(fx.v3_charx())
    assert run("convert", str(source), str(tmp_path / "hana.png")) == 0
    assert "embedded CharX file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,message",
    [
        (("convert", "missing.json", "out.png"), "missing.json: no such file"),
        (("convert", "{v2}", "out.txt"), "unknown card format '.txt'"),
        (("convert", "{v2}", "out.png", "--image", "nope.png"), "nope.png: could not be read"),
        (("convert", "{v2}", "out.png", "--image", "{v2}"), "not a PNG image"),
    ],
)
def test_convert_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    argv = tuple(a.replace("{v2}", str(FIXTURES / "v2_full.json")) for a in argv)
    assert run(*argv) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_registered_with_the_main_parser():
    parser = argparse.ArgumentParser(prog="parlor")
    card_command.register(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["card"])  # an action is required
