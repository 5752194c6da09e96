"""Start the window: build the context, the worker, and show the main window."""

from __future__ import annotations

import os
import sys

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from app.core.context import AppContext
from app.core.engine.local import LocalEngine
from app.core.resources import resources_dir
from app.core.store import StoreError
from app.gui.main_window import MainWindow
from app.gui.workers import GenerationWorker, WorkerThread


def make_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("Parlor")
    app.setOrganizationName("Parlor")
    app.setDesktopFileName("parlor")
    app.setWindowIcon(QIcon(str(resources_dir() / "parlor.png")))
    return app


def open_main_window(ctx: AppContext, engine=None) -> MainWindow:
    """The main window over `engine` (a fresh local llama.cpp engine by default)."""
    worker = WorkerThread(GenerationWorker(engine or LocalEngine()))
    return MainWindow(ctx, worker)


def remote_engine(url: str, api_key: str | None):
    from app.core.engine.remote import RemoteEngine

    return RemoteEngine(url, api_key=api_key or os.environ.get("PARLOR_API_KEY"),
                        mode="completion")


def run_gui(args) -> int:
    app = make_application()
    try:
        ctx = AppContext.create()
    except (StoreError, OSError) as exc:
        QMessageBox.critical(None, "Parlor", f"Parlor cannot start:\n{exc}")
        return 1
    if args.remote:
        window = open_main_window(ctx, remote_engine(args.remote, args.api_key))
        window.show()
        window.connect_engine()
    else:
        window = open_main_window(ctx)
        window.show()
        model = args.model or ctx.settings.model_path
        if model:
            window.load_model(model)
        else:
            from app.core.machine import read_machine
            from app.gui.first_run import maybe_first_run

            window._first_run = maybe_first_run(window, read_machine)
    code = app.exec()
    ctx.close()
    return code
