"""Load a GGUF with llama.cpp in a child process and generate a few tokens.

A child, because llama.cpp can abort the whole process on a bad file; its log goes to a
temporary file so that a failure can say what llama.cpp said ("tensor ... not found").
This is the load check `parlor convert` uses; the app passes its engine's own.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


class LoadCheckError(Exception):
    """llama.cpp could not load the file or generate from it; `log` holds its last words."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


def _child(path: str, n_tokens: int, log_path: str, conn: Connection) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 2)
    try:
        from llama_cpp import Llama

        from app.core.engine.template_guard import disable_gguf_template_compilation

        disable_gguf_template_compilation()  # a converted file's templates stay uncompiled
        llm = Llama(model_path=path, n_ctx=128, n_gpu_layers=0, verbose=True, seed=1)
        out: Any = llm.create_completion("Hello", max_tokens=n_tokens, temperature=0.0)
        conn.send(("ok", out["choices"][0]["text"]))
    except Exception as e:  # reported to the parent, which raises
        conn.send(("error", f"{type(e).__name__}: {e}"))


def _log_tail(log_path: str, lines: int = 6) -> str:
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        return ""
    keep = [ln for ln in text.splitlines() if "error" in ln.lower() or "fail" in ln.lower()]
    return "\n".join((keep or text.splitlines())[-lines:])


def load_and_generate(
    path: str | os.PathLike[str], n_tokens: int = 4, timeout: float = 600.0
) -> str:
    """The generated text; LoadCheckError with llama.cpp's error lines if it fails."""
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as log:
        log_path = log.name
    try:
        proc = ctx.Process(target=_child, args=(str(path), n_tokens, log_path, send), daemon=True)
        proc.start()
        send.close()
        result = None
        try:
            if recv.poll(timeout):
                result = recv.recv()
        except EOFError:  # the child died before answering
            pass
        proc.join(10 if result else 0)
        if proc.is_alive():
            proc.kill()
            proc.join()
        tail = _log_tail(log_path)
        if result is None:
            why = "timed out" if proc.exitcode in (None, -9) else f"exit code {proc.exitcode}"
            raise LoadCheckError(
                f"llama.cpp stopped while loading {Path(path).name} ({why})"
                + (f": {tail}" if tail else ""),
                tail,
            )
        if result[0] != "ok":
            raise LoadCheckError(
                f"llama.cpp could not load {Path(path).name}: {result[1]}"
                + (f" ({tail})" if tail else ""),
                tail,
            )
        return str(result[1])
    finally:
        recv.close()
        Path(log_path).unlink(missing_ok=True)
