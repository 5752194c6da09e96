"""The Chats dialog's "Import SillyTavern chat…", read off the GUI thread.

Reading and checking every line is the slow part (a chat file may be hundreds of MB, or
a FIFO that never ends); `read_st_file` is pure, so it runs in a `ProgressJob`, and the
dialog's own `import_file` then writes the parsed chat in one transaction on the GUI
thread. A Cancel while reading writes nothing; a file that cannot be read is reported by
the dialog like any other import failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.chat_io import ChatIOError
from app.core.chat_io.st_read import read_st_file
from app.gui.models.progress_job import ProgressJob


def start_chat_import(dialog: Any, path: str, *, accept_all: bool = False) -> ProgressJob:
    """Read `path`, then `dialog.import_file` it; malformed lines are asked about through
    the dialog's box unless `accept_all` (the user already said yes)."""
    name = Path(path).name
    job = ProgressJob(
        dialog,
        dialog.tr("Import a SillyTavern chat"),
        dialog.tr("Reading {0}…").format(name),
    )
    dialog.import_job = job

    def imported(parsed: Any) -> None:
        accept = (
            (lambda _problems: True)
            if accept_all
            else (lambda problems: dialog._ask_later(path, problems))
        )
        dialog.import_file(path, accept, parsed=parsed)

    def failed(message: str) -> None:
        dialog._say(message if message.startswith(str(path)) else f"{name}: {message}")

    return job.start(
        lambda _report, _cancel: _read(path),
        on_success=imported,
        on_failure=failed,
        on_cancel=lambda _message: dialog._say(
            dialog.tr("Import of {0} cancelled; nothing was added.").format(name)
        ),
        name="import-chat",
    )


def _read(path: str) -> Any:
    try:
        return read_st_file(path)
    except ChatIOError:
        raise
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
        raise ChatIOError(f"{path}: could not be read ({type(exc).__name__}: {exc})") from None
