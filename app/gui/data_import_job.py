"""Settings → Data → Import…: an "export everything" zip loaded off the GUI thread.

Reading, checking and inserting a big export takes a while; `import_everything` works on
its own connection while the window's store is closed, so the whole call runs in a
`ProgressJob`. It writes in one transaction and checks Cancel just before the commit, so
Cancel waits for the call's answer (`commits=True`): either everything went in, or
nothing did. The store is reopened whatever happened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.store.export_all import import_everything
from app.gui.models.progress_job import ProgressJob


def start_import_everything(page: Any, source: Path) -> ProgressJob:
    """`page` is the settings' DataPage: its context, `_reopen` and `_warn`."""
    paths = page.ctx.paths
    page.ctx.store.close()
    job = ProgressJob(
        page,
        page.tr("Import an export"),
        page.tr("Importing {0}…").format(Path(source).name),
    )
    page.import_job = job

    def succeeded(counts: dict[str, int]) -> None:
        page.import_counts = counts
        page._reopen()

    def failed(message: str) -> None:
        page._reopen()
        page._warn(message)

    def cancelled(_message: str) -> None:  # the call rolled back before it committed
        page._reopen()
        page._warn(
            page.tr("The import of {0} was cancelled; nothing was added.").format(Path(source).name)
        )

    return job.start(
        lambda _report, cancel: import_everything(Path(source), paths, cancel),
        on_success=succeeded,
        on_failure=failed,
        on_cancel=cancelled,
        commits=True,
        name="import-everything",
    )
