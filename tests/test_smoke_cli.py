"""`python -m app --smoke-test` as installers and CI run it: a real process, one JSON line;
and the chain a new user goes through from the command line: download → convert → smoke
test, against a hub on 127.0.0.1 driven by the real huggingface_hub client."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from app.cli import main as cli
from app.core.appdata.machine import machine_from_sizes
from app.core.chat.open_model import CONVERTER
from app.core.gguf.header import moe_layout, read_header
from app.core.hub.manifest import read_manifest
from tests.hub_server import FakeHub, point_huggingface_hub_at
from tests.tiny_models import write_tiny_llama

CATALOG_REPO = "Kquant03/MistralTrix-4x9B-ERP-GGUF"
RECOMMENDED_16GB = "ggml-model-q2_k.gguf"  # what the catalog recommends for 16 GB of RAM


def _run(*args: str, home) -> subprocess.CompletedProcess:
    env = dict(os.environ, PARLOR_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, env=env, timeout=240
    )


def _smoke_json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_smoke_test_chats_once_and_prints_one_json_line(tiny_llama_path, tmp_path):
    result = _smoke_json(
        _run(
            "--smoke-test",
            "--model",
            str(tiny_llama_path),
            "--prompt",
            "Hi!",
            "--max-tokens",
            "12",
            home=tmp_path,
        )
    )
    assert result["model"] == "Parlor tiny test model"
    assert result["tokens"] == 12
    assert result["reply"].strip()
    assert result["tokens_per_s"] > 0 and result["ttft_s"] > 0


def test_smoke_test_with_a_broken_model_fails_clearly(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00")
    done = _run("--smoke-test", "--model", str(broken), home=tmp_path)
    assert done.returncode != 0
    assert "broken.gguf" in done.stderr
    assert done.stdout == ""


def test_smoke_test_converts_an_old_layout_instead_of_failing(tmp_path):
    legacy = write_tiny_llama(tmp_path / "old.gguf", n_expert=4, legacy_experts=True)
    done = _run("--smoke-test", "--model", str(legacy), "--max-tokens", "4", home=tmp_path)
    assert _smoke_json(done)["tokens"] == 4
    assert (
        "Converted old.gguf from the old mixture-of-experts layout to the current one "
        f"(the original is kept as {tmp_path / 'old.legacy.gguf'})." in done.stderr
    )
    assert moe_layout(read_header(legacy)) == "merged"


@pytest.fixture
def hub_with_old_default_model(monkeypatch, tmp_path):
    """The default model's repository with its recommended file in the January-2024 layout."""
    (tmp_path / "src").mkdir()
    legacy = write_tiny_llama(tmp_path / "src" / RECOMMENDED_16GB, n_expert=4, legacy_experts=True)
    with FakeHub() as hub:
        hub.add_file(CATALOG_REPO, RECOMMENDED_16GB, legacy.read_bytes())
        point_huggingface_hub_at(monkeypatch, hub.url, tmp_path)
        monkeypatch.setattr("app.commands.download.read_machine", lambda: machine_from_sizes(16))
        yield hub, legacy


def test_download_convert_smoke_test_and_a_second_download_fetches_nothing(
    hub_with_old_default_model, tmp_path, capsys
):
    hub, legacy = hub_with_old_default_model
    dest = tmp_path / "models"
    assert cli(["download", "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    final = dest / RECOMMENDED_16GB
    assert f"Saved {final}" in out
    assert (
        f"Converted {RECOMMENDED_16GB} from the old mixture-of-experts layout to the current "
        "one (the original was removed)."
    ) in out
    assert out.rstrip().endswith(f"Load it with: parlor --model {final}")
    assert moe_layout(read_header(final)) == "merged"
    manifest = read_manifest(final)
    assert manifest.sha256 == hashlib.sha256(legacy.read_bytes()).hexdigest()
    assert manifest.conversion.converter == CONVERTER
    assert manifest.conversion.sha256 == hashlib.sha256(final.read_bytes()).hexdigest()

    result = _smoke_json(
        _run("--smoke-test", "--model", str(final), "--max-tokens", "4", home=tmp_path / "home")
    )
    assert result["tokens"] == 4

    converted = final.read_bytes()
    fetched = len(hub.ranges(RECOMMENDED_16GB))
    assert cli(["download", "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert f"Already installed: {final}; nothing was fetched." in out
    assert len(hub.ranges(RECOMMENDED_16GB)) == fetched
    assert final.read_bytes() == converted
    assert sorted(p.name for p in dest.iterdir()) == [
        RECOMMENDED_16GB,
        RECOMMENDED_16GB + ".parlor.json",
    ]


def test_download_can_keep_the_original_or_skip_the_conversion(
    hub_with_old_default_model, tmp_path, capsys
):
    dest = tmp_path / "models"
    assert cli(["download", "--dest", str(dest), "--keep-original"]) == 0
    out = capsys.readouterr().out
    backup = dest / "ggml-model-q2_k.legacy.gguf"
    assert f"(the original is kept as {backup})" in out
    assert moe_layout(read_header(backup)) == "legacy"
    assert read_manifest(backup).conversion is None  # the original is the plain download

    other = tmp_path / "other"
    assert cli(["download", "--dest", str(other), "--no-convert"]) == 0
    out = capsys.readouterr().out
    assert "Converted" not in out
    assert moe_layout(read_header(other / RECOMMENDED_16GB)) == "legacy"
    assert (
        cli(["convert", str(other / RECOMMENDED_16GB), "--delete-original", "--no-load-check"]) == 0
    )
    manifest = read_manifest(other / RECOMMENDED_16GB)
    assert manifest.conversion is not None  # `parlor convert` records it too
    assert cli(["download", "--dest", str(other)]) == 0
    assert "nothing was fetched" in capsys.readouterr().out


class _Terminal:
    """stdin as a person at a terminal: isatty, with an answer ready."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    "answer, flags, keep",
    [
        ("y", [], True),
        ("", [], False),
        ("n", [], False),
        (None, ["--yes"], False),
        (None, ["--keep-original"], True),
        (None, ["--yes", "--keep-original"], True),
    ],
)
def test_download_asks_about_the_original_on_a_terminal_unless_told(
    tmp_path, monkeypatch, capsys, answer, flags, keep
):
    from app.cli import build_parser
    from app.commands.download import _keep_original
    from app.core.chat.open_model import check_model

    legacy = write_tiny_llama(tmp_path / "old.gguf", n_expert=4, legacy_experts=True)
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or answer)
    args = build_parser().parse_args(["download", *flags])
    assert _keep_original(check_model(legacy), args, _Terminal()) is keep
    assert bool(asked) == (answer is not None)
    if asked:
        assert asked[0].startswith("Keep the original as well (") and asked[0].endswith(
            " more disk)? [y/N] "
        )
    assert (
        "old.gguf uses the old mixture-of-experts layout (January 2024) that llama.cpp "
        "no longer loads; converting it" in capsys.readouterr().out
    )
