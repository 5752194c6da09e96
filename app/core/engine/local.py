"""llama.cpp in a supervised child process, behind the `Engine` interface.

The parent never imports llama_cpp: a bad file or an out-of-memory kill ends the child,
and the caller gets `EngineCrashed` with what was streamed so far intact. Unloading ends
the child, so the memory really returns to the system.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, NoReturn

from app.core.engine.base import (
    EngineCrashed,
    EngineError,
    LoadParams,
    ModelInfo,
    PromptLayout,
    SamplingParams,
    StreamStats,
)
from app.core.engine.child_stderr import default_stderr_path, last_lines, serve_with_stderr

UNLOAD_WAIT_S = 15  # the child finishes writing the last saved session before it exits
POLL_S = 0.01  # how often a waiting parent looks at the cancel flag and the child's health
log = logging.getLogger(__name__)
CRASH_ADVICE = (
    "Try fewer GPU layers, a smaller context size or a smaller quant of the model; "
    "the chat and the text written so far are kept."
)


class LocalEngine:
    """One child process per loaded model. Not thread-safe: one owner thread calls it."""

    def __init__(self, stderr_path: str | None = None) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self.stderr_path = stderr_path or str(default_stderr_path())
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        # [stop flag, 0]: one byte the child and llama.cpp's abort callback read directly
        self._abort = self._ctx.RawArray("b", 2)
        self.info: ModelInfo | None = None
        self.last_stats: StreamStats | None = None

    # --- process management -----------------------------------------------------------
    def _start(self) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        self._proc = self._ctx.Process(
            target=serve_with_stderr,
            args=(self.stderr_path, child, self._abort),
            name="parlor-llama",
            daemon=True,
        )
        self._proc.start()
        child.close()
        self._conn = parent

    def unload(self) -> None:
        """End the child; llama.cpp's memory goes back to the system with it."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = self.info = None
        if proc is None or conn is None:
            return
        try:
            conn.send(("quit",))
        except OSError:
            pass
        proc.join(timeout=UNLOAD_WAIT_S)
        if proc.is_alive():
            proc.kill()
            proc.join()
        conn.close()

    def _receive(self, cancel: threading.Event | None = None) -> tuple[Any, ...] | None:
        """Wait for the next message; None when `cancel` is set (checked before each one)."""
        conn, proc = self._conn, self._proc
        if conn is None or proc is None:
            raise EngineError("No model is loaded.")
        while cancel is None or not cancel.is_set():
            if conn.poll(POLL_S):
                break
            if not proc.is_alive():
                self._crashed()
        else:
            return None
        try:
            message: tuple[Any, ...] = conn.recv()
        except (EOFError, OSError):
            self._crashed()
        return message

    def _crashed(self) -> NoReturn:
        if self._proc is not None:
            self._proc.join(timeout=1)  # the pipe can break before the exit is reaped
        code = self._proc.exitcode if self._proc else None
        tail = last_lines(self.stderr_path)
        log.error(
            "the engine process stopped unexpectedly (exit code %s); llama.cpp's last lines:\n%s",
            code,
            "\n".join(tail) if tail else "(none)",
        )
        self._proc = self._conn = self.info = None
        raise EngineCrashed(
            f"The model process stopped unexpectedly (exit code {code}). " + CRASH_ADVICE
        )

    def _request(
        self, message: tuple[Any, ...], cancel: threading.Event | None = None
    ) -> tuple[Any, ...]:
        self._pipe().send(message)
        return self._reply(cancel)

    def _pipe(self) -> Connection:
        if self._proc is None or self._conn is None:
            raise EngineError("No model is loaded.")
        return self._conn

    def _reply(self, cancel: threading.Event | None = None) -> tuple[Any, ...]:
        reply = self._receive(cancel)
        if reply is None:
            return ("cancelled",)
        if reply[0] == "error":
            raise EngineError(reply[1])
        return reply

    # --- the Engine interface ---------------------------------------------------------
    def load(
        self,
        params: LoadParams,
        cancel: threading.Event | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> ModelInfo:
        """Start a fresh child and load `params.model_path`; cancel kills the child.

        `progress(fraction)` is called on this thread as llama.cpp reads the file.
        """
        self.unload()
        self._start()
        try:
            reply = self._request(("load", asdict(params)), cancel)
            while reply[0] == "progress":
                if progress is not None:
                    progress(reply[1])
                reply = self._reply(cancel)
        except EngineError:
            self.unload()
            raise
        if reply[0] == "cancelled":
            self.unload()
            raise EngineError("Loading was cancelled.")
        self.info = ModelInfo(**reply[1])
        return self.info

    def count_tokens(self, texts: list[str]) -> list[int]:
        counts: list[int] = self._request(("tokenize", list(texts)))[1]
        return counts

    def stream(
        self,
        prompt: str,
        params: SamplingParams,
        cancel: threading.Event,
        layout: PromptLayout | None = None,
    ) -> Iterator[str]:
        """Yield text pieces as llama.cpp makes them; stops within one piece of `cancel`.

        `layout` marks the prompt's permanent part, which a context shift keeps intact."""
        pipe = self._pipe()
        self._abort[0] = 0
        self.last_stats = None
        pipe.send(("generate", prompt, asdict(params), asdict(layout) if layout else None))
        finished = False
        try:
            while True:
                reply = self._receive(cancel)
                if reply is None:
                    break
                if reply[0] == "token":
                    yield reply[1]
                    continue
                finished = True
                if reply[0] == "error":
                    raise EngineError(reply[1])
                self.last_stats = StreamStats(**reply[1])
                _log_reply(self.last_stats)
                return
        finally:
            if not finished:
                self._finish_cancelled()

    def _finish_cancelled(self) -> None:
        """Tell the child to stop and read up to its "done" so the pipe is clean again."""
        if self._proc is None:  # it crashed; nothing to drain
            return
        self._abort[0] = 1
        try:
            while True:
                reply = self._receive()
                if reply is None:  # only a cancel gives None, and none was passed
                    return
                if reply[0] == "done":
                    self.last_stats = StreamStats(**reply[1])
                    self.last_stats.stopped = True
                    _log_reply(self.last_stats)
                    return
                if reply[0] == "error":
                    return
        except EngineCrashed:
            return


def _log_reply(stats: StreamStats) -> None:
    """One line per reply in parlor.log: what the cache saved, then llama.cpp's own report,
    so the benchmark's figures can be checked against llama.cpp's counters."""
    for note in stats.notes:
        log.warning("saved sessions: %s", note)
    shift = (
        f", {stats.shifted_tokens} shifted past {stats.removed_tokens} removed"
        if stats.shifted_tokens
        else ""
    )
    log.info(
        "reply: %d prompt tokens, %d reused%s, %d evaluated by llama.cpp%s; %s",
        stats.prompt_tokens,
        stats.reused_tokens,
        shift,
        stats.evaluated_tokens,
        f" ({stats.full_read_reason})" if stats.full_read_reason else "",
        stats.llama_perf or "no llama.cpp report",
    )
