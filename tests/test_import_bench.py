"""`bench/import_bench.py` runs end to end (quick size); its figures go in the benchmark
table, so only their shape and sanity are checked here."""

from __future__ import annotations

import pytest

from bench import import_bench


@pytest.mark.slow
def test_the_import_bench_measures_both_ways(qapp):
    result = import_bench.run(quick=True)
    assert result["messages"] == 2000 and result["file_mb"] > 0.5
    for kind in ("gui_thread", "background"):
        figures = result[kind]
        assert figures["total_ms"] > 0 and figures["blocked_ms"] >= 0
        assert len(figures["blocked_runs_ms"]) == 1
    # on the GUI thread, the whole import blocks it
    assert result["gui_thread"]["blocked_ms"] >= 0.5 * result["gui_thread"]["total_ms"]
