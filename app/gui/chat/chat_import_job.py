"""The Chats dialog's "Import SillyTavern chat…", off the GUI thread.

A 10 MB chat (20,000 messages) took about 1.5 s to read and check and 5–8 s to write here,
so both run in a `ProgressJob`: reading with `read_st_file`, writing with
`import_st_chat(parsed=...)` in its one transaction (the store's lock keeps the GUI
thread's own writes out of it; one that comes meanwhile waits for the commit). Cancel
during the read ends the job at once and writes nothing; once the write has begun
(`start_writing`) it commits whole, and the dialog waits for that and says so.

Malformed lines are asked about on the GUI thread, through the dialog's own box, with the
file as read; a Yes starts the import again with `accept_all`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.chat_io import ChatIOError, ImportResult, import_st_chat
from app.core.chat_io.st_read import StFile, read_st_file
from app.gui.models.jobs import Report
from app.gui.models.progress_job import ProgressJob, Step


@dataclass
class NeedsAnswer:
    """The file has malformed lines: the user is asked before anything is written."""

    parsed: StFile


def start_chat_import(dialog: Any, path: str, *, accept_all: bool = False) -> ProgressJob:
    """Read and import `path` for the dialog's character; malformed lines are asked about
    through the dialog's box unless `accept_all` (the user already said yes)."""
    name = Path(path).name
    store, character_id = dialog.store, dialog.character_id
    job = ProgressJob(
        dialog,
        dialog.tr("Import a SillyTavern chat"),
        dialog.tr("Reading {0}…").format(name),
    )
    dialog.import_job = job

    def work(report: Report, cancel: threading.Event) -> ImportResult | NeedsAnswer:
        parsed = _read(path)
        if parsed.problems and not accept_all:
            return NeedsAnswer(parsed)
        job.start_writing(cancel)  # Cancel from here on waits for the commit
        report(Step(0, 0, f"Saving {name} ({len(parsed.messages):,} messages)…"), milestone=True)
        return import_st_chat(store, path, character_id, accept=lambda _p: True, parsed=parsed)

    def done(outcome: ImportResult | NeedsAnswer) -> None:
        if isinstance(outcome, NeedsAnswer):  # the box asks; the dialog says "not imported"
            dialog.import_file(
                path, lambda problems: dialog._ask_later(path, problems), parsed=outcome.parsed
            )
        else:
            _report(dialog, name, outcome)

    def failed(message: str) -> None:
        dialog._say(message if message.startswith(str(path)) else f"{name}: {message}")

    return job.start(
        work,
        on_success=done,
        on_failure=failed,
        on_cancel=lambda _message: dialog._say(
            dialog.tr("Import of {0} cancelled; nothing was added.").format(name)
        ),
        name="import-chat",
    )


def _report(dialog: Any, name: str, result: ImportResult) -> None:
    """As the dialog reports its own imports: select the chat, say what was skipped."""
    dialog.reload(select=result.chat_id)
    dialog.chats_changed.emit()
    notes = [str(p) for p in result.problems] + result.warnings
    text = dialog.tr("Imported {0} ({1} messages).").format(name, result.messages)
    dialog._say(" ".join([text, *([dialog.tr("Skipped:")] if result.problems else []), *notes]))


def _read(path: str) -> StFile:
    try:
        return read_st_file(path)
    except ChatIOError:
        raise
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
        raise ChatIOError(f"{path}: could not be read ({type(exc).__name__}: {exc})") from None
