"""The log file and Help → "Copy diagnostics".

One rotating file in the logs folder (1 MB, five old files kept). Every record passes a
filter that masks secrets, including those in tracebacks, before any handler writes it, so
neither the log nor the diagnostics built from it can carry a token or an API key.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import platform
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from app.core.appdata.secrets import redact

if TYPE_CHECKING:
    from app.core.appdata.machine import Machine

LOG_FILE = "parlor.log"
MAX_BYTES = 1_000_000
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "parlor-file"


class RedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments and any traceback of a record.

    `values` is called for each record so secrets set after logging started are covered.
    """

    def __init__(self, values: Callable[[], Iterable[str]] = tuple):
        super().__init__()
        self.values = values

    def filter(self, record: logging.LogRecord) -> bool:
        known = list(self.values())
        record.msg = redact(record.getMessage(), known)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, known)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, known)
        return True


def setup_logging(
    logs_dir: Path, secret_values: Callable[[], Iterable[str]] = tuple, level: int = logging.INFO
) -> logging.Handler:
    """Send the root logger to the rotating file; a second call replaces the first handler."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    handler = logging.handlers.RotatingFileHandler(
        logs_dir / LOG_FILE, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter(secret_values))
    root.addHandler(handler)
    root.setLevel(min(root.level or level, level))
    return handler


def install_excepthooks() -> None:
    """Unhandled exceptions, on the main thread or any other, go to the log with their
    traceback (then to the previous hook, which prints them as before)."""
    previous_sys, previous_thread = sys.excepthook, threading.excepthook
    crash_log = logging.getLogger("parlor.crash")

    def sys_hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            crash_log.critical("unhandled %s", kind.__name__, exc_info=(kind, value, tb))
        previous_sys(kind, value, tb)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not SystemExit:
            name = args.thread.name if args.thread else "?"
            crash_log.critical(
                "unhandled %s in thread %s",
                args.exc_type.__name__,
                name,
                exc_info=args.exc_value or True,
            )
        previous_thread(args)

    if getattr(sys.excepthook, "_parlor", False):
        return  # installed already (a second window in the same process)
    setattr(sys_hook, "_parlor", True)  # noqa: B010 - a mark on a function object
    setattr(thread_hook, "_parlor", True)  # noqa: B010
    sys.excepthook, threading.excepthook = sys_hook, thread_hook


def text_for_log(text: str, debug: bool) -> str:
    """What the log may say about chat text: only its length, unless the user turned on
    "Log message text" (Settings → Diagnostics) to help with a bug report."""
    return repr(text) if debug else f"<{len(text)} characters>"


def last_lines(logs_dir: Path, count: int = 40) -> list[str]:
    """The last `count` lines of the current log file (none if there is no log yet)."""
    try:
        with open(logs_dir / LOG_FILE, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in deque(f, maxlen=count)]
    except OSError:
        return []


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _machine_lines(machine: Machine | None) -> list[str]:
    from app.core.appdata.machine import describe, read_machine

    machine = machine or read_machine()
    lines = [f"Memory/GPU: {describe(machine)}"]
    lines += [f"Probe note: {p}" for p in machine.problems]
    return lines


def diagnostics(
    logs_dir: Path,
    secret_values: Iterable[str] = (),
    machine: Machine | None = None,
    log_lines: int = 40,
) -> str:
    """Text for Help → "Copy diagnostics": versions, OS, CPU, GPU, memory, the log's end.

    Everything passes `redact`, so a secret that reached the log anyway is still masked.
    """
    from app import __version__

    lines = [
        f"Parlor {__version__}",
        f"Python {platform.python_version()} ({sys.executable and Path(sys.executable).name})",
        f"OS: {platform.platform()}",
        f"CPU: {_cpu_name()} ({os.cpu_count()} threads)",
        *_machine_lines(machine),
        f"llama-cpp-python {_version('llama_cpp_python')}, "
        f"PySide6-Essentials {_version('PySide6-Essentials')}",
        "",
        f"Last {log_lines} log lines:",
        *last_lines(logs_dir, log_lines),
    ]
    return redact("\n".join(lines), secret_values)


def write_error_message(exc: OSError, what: str) -> str:
    """A sentence for the user when saving `what` failed: the file and the likely cause."""
    import errno

    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EFBIG: "the disk is full or the file is too large",
        errno.EROFS: "the disk is read-only",
        errno.EACCES: "Parlor may not write there",
        errno.EPERM: "Parlor may not write there",
        getattr(errno, "EDQUOT", -1): "the disk quota is used up",
    }
    reason = reasons.get(exc.errno, exc.strerror or str(exc))
    where = f" ({exc.filename})" if exc.filename else ""
    return f"Could not save {what}{where}: {reason}. What was saved before is unchanged."
