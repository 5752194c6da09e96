"""Log lines for model loads: what was asked, what llama.cpp really runs with, how long it
took, and why it failed. Paths are shown by file name; no chat text is involved."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from app.core.engine import EngineError, LoadParams, ModelInfo

log = logging.getLogger("parlor.model")


def _asked(params: LoadParams) -> str:
    values = asdict(params)
    for key in ("model_path", "session_dir"):
        if values.get(key):
            values[key] = Path(values[key]).name
    return ", ".join(f"{k}={v}" for k, v in values.items() if k != "model_path")


def log_load_start(params: LoadParams) -> None:
    log.info("loading %s (%s)", Path(params.model_path).name or "?", _asked(params))


def log_loaded(info: ModelInfo, seconds: float) -> None:
    effective = ", ".join(f"{k}={v}" for k, v in info.effective.items()) or "not reported"
    log.info(
        "loaded %s in %.1f s: %s, context %d (trained %d), %d layers, GPU layers %d; "
        "effective: %s%s",
        Path(info.path).name,
        seconds,
        info.name,
        info.n_ctx,
        info.n_ctx_train,
        info.n_layer,
        info.n_gpu_layers,
        effective,
        "; warnings: " + " | ".join(info.warnings) if info.warnings else "",
    )


def log_load_failed(params: LoadParams, exc: BaseException) -> None:
    # A bug (not an EngineError) keeps its traceback; a refused file needs only the cause.
    log.error(
        "loading %s failed: %s",
        Path(params.model_path).name or "?",
        f"{type(exc).__name__}: {exc}",
        exc_info=not isinstance(exc, EngineError),
    )
