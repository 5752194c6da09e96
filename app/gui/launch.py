"""Start the window: build the context, the worker, and show the main window."""

from __future__ import annotations

import gc
import logging
import os
import sys

from PySide6.QtCore import qVersion
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from app import __version__
from app.core.appdata.logs import install_excepthooks, setup_logging
from app.core.appdata.paths import default_paths
from app.core.appdata.resources import resources_dir
from app.core.appdata.single_instance import AlreadyRunning
from app.core.chat.context import AppContext
from app.core.engine.local import LocalEngine
from app.core.store.backup import BackupError, daily_snapshot
from app.gui import plain_text
from app.gui.main_window import MainWindow
from app.gui.single_instance import FocusServer, claim_data_folder
from app.gui.startup_failure import offer_recovery
from app.gui.workers import GenerationWorker, WorkerThread

log = logging.getLogger(__name__)


def make_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("Parlor")
    app.setOrganizationName("Parlor")
    app.setDesktopFileName("parlor")
    app.setWindowIcon(QIcon(str(resources_dir() / "parlor.png")))
    if not hasattr(app, "_plain_boxes"):  # message boxes quote untrusted text: plain only
        app._plain_boxes = plain_text.install(app)
    return app


def open_main_window(ctx: AppContext, engine=None) -> MainWindow:
    """The main window over `engine` (a fresh local llama.cpp engine by default)."""
    worker = WorkerThread(GenerationWorker(engine or LocalEngine()))
    return MainWindow(ctx, worker)


def remote_engine(url: str, api_key: str | None):
    from app.core.engine.remote import RemoteEngine

    return RemoteEngine(url, api_key=api_key or os.environ.get("PARLOR_API_KEY"), mode="completion")


def _start(paths, retry: bool = True):
    """Logging, the daily backup and the context; None (after telling the user) on failure.

    Any failure gets the start-up dialog, which may restore a snapshot; then one retry."""
    ctx = None
    try:
        ctx = AppContext.create(paths)
        setup_logging(paths.logs, ctx.secrets.known_values)
        install_excepthooks()
        log.info(
            "Parlor %s starting on Python %s, Qt %s",
            __version__,
            sys.version.split()[0],
            qVersion(),
        )
    except Exception as exc:  # noqa: BLE001 - every start-up failure gets the dialog
        if ctx is not None:
            ctx.close()
        if offer_recovery(paths, exc) and retry:
            return _start(paths, retry=False)
        return None
    try:
        daily_snapshot(paths.database)
    except BackupError as exc:
        log.warning("daily snapshot skipped: %s", exc)
    return ctx


def run_gui(args) -> int:
    app = make_application()
    paths = default_paths()
    try:
        lock = claim_data_folder(paths.data)
    except AlreadyRunning as exc:
        QMessageBox.critical(None, "Parlor", str(exc))
        return 1
    except OSError as exc:  # a read-only or full data folder: a dialog, not a traceback
        offer_recovery(paths, exc)
        return 1
    if lock is None:  # another Parlor has this data folder: it was brought to the front
        return 0
    ctx = _start(paths)
    if ctx is None:
        return 1
    if args.remote:
        window = open_main_window(ctx, remote_engine(args.remote, args.api_key))
        window.show()
        window.models.connect_server()
    else:
        window = open_main_window(ctx)
        window.show()
        model = args.model or ctx.settings.model_path
        if model:
            window.models.open_file(model)  # converts an old MoE layout first if needed
        else:
            from app.core.appdata.machine import read_machine
            from app.gui.first_run import maybe_first_run

            window.first_run = maybe_first_run(window, read_machine)
    window.focus_server = FocusServer(paths.data, window)
    # Everything made so far (Qt wrappers, the catalog, presets) lives as long as the app:
    # out of the collector's sight, a full collection on the GUI thread scans only what the
    # chat makes since (measured: the longest pause during a big import, 300 ms → 120–200 ms).
    gc.freeze()
    code = app.exec()
    ctx.close()
    lock.release()
    return code
