"""A crashed engine child is logged with llama.cpp's last lines, read from the file its
stderr goes to."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import pytest

from app.core.engine import EngineCrashed, LoadParams, SamplingParams
from app.core.engine.local import LocalEngine


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_childs_stderr_goes_to_the_llama_log(tiny_llama_path, tmp_path):
    path = tmp_path / "logs" / "llama.log"
    eng = LocalEngine(stderr_path=str(path))
    eng.load(LoadParams(model_path=str(tiny_llama_path), n_ctx=512))
    try:
        assert os.readlink(f"/proc/{eng._proc.pid}/fd/2") == str(path)
    finally:
        eng.unload()


def test_a_crash_logs_llama_cpps_last_lines(tiny_llama_path, tmp_path, caplog):
    path = tmp_path / "llama.log"
    eng = LocalEngine(stderr_path=str(path))
    eng.load(LoadParams(model_path=str(tiny_llama_path), n_ctx=512))
    with open(path, "a", encoding="utf-8") as f:  # as llama.cpp would, just before dying
        f.write("ggml.c:1234: GGML_ASSERT(buf != NULL) failed\n")
    caplog.set_level(logging.ERROR)
    with pytest.raises(EngineCrashed):
        for _piece in eng.stream("Go on.", SamplingParams(max_tokens=400), threading.Event()):
            os.kill(eng._proc.pid, signal.SIGKILL)
    record = next(r for r in caplog.records if "stopped unexpectedly" in r.getMessage())
    assert "GGML_ASSERT(buf != NULL) failed" in record.getMessage()
    assert "exit code -9" in record.getMessage()
