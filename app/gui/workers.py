"""The generation worker: one QObject on its own QThread owns the engine (C3).

Requests come in as queued signals; text goes out in batches about every 50 ms (C8),
never one signal per token. Stop is a threading.Event the GUI sets directly, because this
thread's event loop is busy while it generates (C4).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.engine import (
    Engine,
    EngineCrashed,
    EngineError,
    LoadParams,
    PromptLayout,
    SamplingParams,
)
from app.gui.engine_log import log_load_failed, log_load_start, log_loaded

BATCH_S = 0.05
log = logging.getLogger(__name__)


class GenerationWorker(QObject):
    loaded = Signal(object)  # ModelInfo
    load_failed = Signal(str, bool)  # message, whether the engine process crashed
    load_progress = Signal(float)  # 0..1 as llama.cpp reads the file
    started = Signal(object)  # the prompt object the job built
    token_batch = Signal(str)
    stream_rate = Signal(int, float)  # tokens so far, tokens per second so far
    finished = Signal(object)  # StreamStats
    failed = Signal(str, bool)  # message, whether the engine process crashed
    engine_swapped = Signal()  # `swap_engine` has run: the new engine is in place
    tokens_counted = Signal(int, object)  # request id, counts (None: no exact count)

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.cancel = threading.Event()
        self.load_cancel = threading.Event()

    @Slot(object)
    def load(self, params: LoadParams) -> None:
        """The caller clears `load_cancel` before asking: a Stop pressed before this slot
        runs must still cancel."""
        start = time.monotonic()
        log_load_start(params)
        try:
            info = self.engine.load(params, self.load_cancel, progress=self.load_progress.emit)
        except EngineError as exc:
            log_load_failed(params, exc)
            self.load_failed.emit(str(exc), isinstance(exc, EngineCrashed))
            return
        except Exception as exc:  # noqa: BLE001 - a bug here must not leave the window waiting
            log_load_failed(params, exc)
            self.load_failed.emit(f"{type(exc).__name__}: {exc}", False)
            return
        log_loaded(info, time.monotonic() - start)
        self.loaded.emit(info)

    @Slot(object, object)
    def generate(self, build: Callable, sampling: SamplingParams) -> None:
        """`build(count_tokens)` makes the prompt here, off the GUI thread, then we stream."""
        try:
            prompt = build(self.engine.count_tokens)
            self.started.emit(prompt)
            stops = tuple(dict.fromkeys((*prompt.stop, *sampling.stop)))
            # the layout lets the engine shift its cache past dropped history (context shift)
            self._stream(
                prompt.text, replace(sampling, stop=stops), PromptLayout(prompt.permanent_chars)
            )
        except EngineCrashed as exc:
            self.failed.emit(str(exc), True)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the window as text
            log.error("generation failed", exc_info=True)
            self.failed.emit(str(exc) or type(exc).__name__, False)

    def _stream(
        self, prompt: str, sampling: SamplingParams, layout: PromptLayout | None = None
    ) -> None:
        pending, last, count, first = [], time.monotonic(), 0, None
        for piece in self.engine.stream(prompt, sampling, self.cancel, layout):
            pending.append(piece)
            count += 1
            now = time.monotonic()
            first = first or now
            if now - last >= BATCH_S:
                self.token_batch.emit("".join(pending))
                rate = (count - 1) / (now - first) if now > first else 0.0
                self.stream_rate.emit(count, rate)
                pending, last = [], now
        if pending:
            self.token_batch.emit("".join(pending))
        self.finished.emit(self.engine.last_stats)

    @Slot(int, object)
    def count_tokens(self, request: int, texts: list[str]) -> None:
        """Exact counts for the window (the card editor) by the engine's own tokenizer, in
        its child process; queued behind any reply. None when there is no exact count: no
        model, a server without a tokenizer, or a failure."""
        counts = None
        try:
            counts = list(self.engine.count_tokens(list(texts)))
        except Exception:  # noqa: BLE001 - the editor then shows its estimate
            log.debug("token count failed", exc_info=True)
        if not getattr(self.engine, "counts_are_exact", True):
            counts = None  # a server's estimate is no better than the editor's
        self.tokens_counted.emit(request, counts)

    @Slot()
    def unload(self) -> None:
        self.engine.unload()

    @Slot(object)
    def swap_engine(self, make_engine: Callable[[], Engine]) -> None:
        """Replace the engine on this thread, the only one that touches it (C3).

        Queued like every request, so a load or a reply already asked for finishes first and
        the old engine is never unloaded under it. `make_engine` runs here too: building a
        remote engine may open a connection.
        """
        self.engine.unload()
        self.engine = make_engine()
        self.engine_swapped.emit()


class WorkerThread:
    """Owns the QThread and shuts it down in a fixed order (C5)."""

    def __init__(self, worker: GenerationWorker) -> None:
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName("parlor-generation")
        worker.moveToThread(self.thread)
        self.thread.start()

    def shutdown(self) -> None:
        self.worker.cancel.set()
        self.worker.load_cancel.set()
        self.thread.quit()
        self.thread.wait()
        self.worker.engine.unload()
