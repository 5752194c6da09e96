"""`parlor bench --quick --json` runs all four engine benchmarks end to end.

Sane values only: timing targets belong to the benchmark table, not to a unit test on a
shared CI machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

KEYS = ("stream_ratio", "followup_eval_fraction", "reopen_ttft_ratio", "max_stall_ms")


@pytest.mark.slow
def test_bench_quick_json_has_the_four_figures_and_their_raw_data(tmp_path):
    env_home = tmp_path / "home"
    out = subprocess.run(
        # the other benchmarks (overflow, sessions, prompt_build, …) have tests of their own
        [
            sys.executable,
            "-m",
            "app",
            "bench",
            "--quick",
            "--json",
            "--only",
            "engine,open_long_chat",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PARLOR_HOME": str(env_home), "QT_QPA_PLATFORM": "offscreen"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    for key in KEYS:
        assert isinstance(result[key], float) and result[key] >= 0, key
    assert result["stream_ratio"] > 0
    stream = result["stream"]
    assert stream["app"]["tokens"] == stream["plain"]["tokens"] > 0  # same work both ways
    assert stream["app"]["batches"] >= 1
    follow = result["followup"]
    assert follow["dropped_messages"] == [0, 0]  # the chat fills the context, nothing cut
    # the follow-up reads only what is new since the last reply: the prefix is stable
    assert 0 < follow["evaluated"] < follow["prompt_tokens"] / 4
    assert result["followup_eval_fraction"] == follow["evaluated"] / follow["prompt_tokens"]
    reopen = result["reopen"]
    assert reopen["restored_tokens"] > reopen["prompt_tokens"] / 2
    assert reopen["session_file_bytes"] > 0
    assert result["machine"]["cores"] >= 1
    opened = result["open_long_chat"]
    assert opened["messages"] == 1000 and result["open_long_chat_ms"] > 0


def test_bench_refuses_a_missing_model(tmp_path, capsys):
    from app.cli import main

    assert main(["bench", "--model", str(tmp_path / "nope.gguf")]) == 2
    assert "not a file" in capsys.readouterr().err
