"""`parlor bench --only overflow,sessions --json`: a chat past the limit, figures from
llama.cpp; what saved sessions cost.

Shapes and consistency only: the targets belong to docs/benchmarks.md, measured on a
quiet machine, not to a test on a shared one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys


def _bench(home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", "bench", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PARLOR_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"},
    )


def test_overflow_reports_every_turn_past_the_limit_and_the_log_has_llama_cpps_counts(tmp_path):
    out = _bench(tmp_path, "--quick", "--only", "overflow,sessions", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert set(result) == {"overflow", "sessions", "machine"}  # only what was asked for
    _check_sessions(result["sessions"])
    assert set(result["overflow"]) == {"1024", "2048"}
    log = (tmp_path / "logs" / "parlor.log").read_text()
    reports = re.findall(r"prompt eval time = [\d.]+ ms / (\d+) tokens", log)
    replies = 0
    for size in result["overflow"].values():
        turns = size["turns"]
        assert len(turns) == 8
        for t in turns:
            assert set(t) >= {"prompt_tokens", "evaluated_tokens", "new_tokens"}
            assert 0 < t["evaluated_tokens"] < t["prompt_tokens"]
            assert t["dropped_messages"] > 0  # past the limit indeed
        fraction = sum(t["evaluated_tokens"] for t in turns) / sum(
            t["prompt_tokens"] for t in turns
        )
        assert abs(size["evaluated_fraction"] - fraction) < 1e-12
        assert size["max_excess"] == max(t["evaluated_tokens"] - t["new_tokens"] for t in turns)
        # the shift keeps each turn to the new text plus the template's markup
        assert size["max_excess"] <= 64 and size["full_reads"] == 0
        replies += size["turns_before_limit"] + len(turns)
        # the figures are llama.cpp's: its report for each of these turns says the same
        assert [t["evaluated_tokens"] for t in turns] == [
            int(n) for n in reports[replies - len(turns) : replies]
        ]
    # the overflow run came first; the sessions run's replies follow in the log
    assert len(reports) >= replies


def test_an_unknown_benchmark_name_is_refused_with_the_names(tmp_path):
    out = _bench(tmp_path, "--only", "overflow,nonsense")
    assert out.returncode == 2
    assert "unknown benchmark nonsense" in out.stderr and "overflow" in out.stderr


def _check_sessions(sessions: dict) -> None:
    assert set(sessions) == {"1024", "2048"}
    for size in sessions.values():
        assert size["state_bytes"] > 0  # the first idle save wrote the whole state
        # each ordinary reply appends its own tokens only, never the state again
        assert len(size["bytes_per_reply"]) == 2 * len(size["rounds"]) == 2
        assert all(0 < b < 0.25 * size["state_bytes"] for b in size["bytes_per_reply"])
        assert size["reply_fraction"] < 2 * size["new_token_fraction"] + 0.01
        assert size["restored_tokens"] > 0  # back in the first chat: its file was used
        assert size["copy_ms"] >= 0 and size["blocked_ms"] >= 0
        low, high = size["spread"]["blocked_ms"]
        assert low <= size["blocked_ms"] <= high
