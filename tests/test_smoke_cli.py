"""`python -m app --smoke-test` as installers and CI run it: a real process, one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _run(*args: str, home) -> subprocess.CompletedProcess:
    env = dict(os.environ, PARLOR_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          env=env, timeout=240)


def test_smoke_test_chats_once_and_prints_one_json_line(tiny_llama_path, tmp_path):
    done = _run("--smoke-test", "--model", str(tiny_llama_path), "--prompt", "Hi!",
                "--max-tokens", "12", home=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
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
