"""`parlor bench --only prompt_build` runs and reports each chat size."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import prompt_bench  # noqa: E402


def test_prompt_bench_reports_cold_and_warm_per_size():
    result = prompt_bench.run(quick=True)
    assert [r["messages"] for r in result["prompt_build"]] == [100, 10_000]
    for row in result["prompt_build"]:
        assert row["warm_ms"] > 0 and row["cold_ms"] > 0 and row["kept_messages"] > 50
    assert result["prompt_build_ms"] == max(r["warm_ms"] for r in result["prompt_build"])
