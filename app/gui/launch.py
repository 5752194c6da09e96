"""Start the window: build the context, the worker, and show the main window."""

from __future__ import annotations

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


def open_main_window(ctx: AppContext) -> MainWindow:
    worker = WorkerThread(GenerationWorker(LocalEngine()))
    return MainWindow(ctx, worker)


def run_gui(args) -> int:
    app = make_application()
    try:
        ctx = AppContext.create()
    except (StoreError, OSError) as exc:
        QMessageBox.critical(None, "Parlor", f"Parlor cannot start:\n{exc}")
        return 1
    window = open_main_window(ctx)
    window.show()
    model = args.model or ctx.settings.model_path
    if model:
        window.load_model(model)
    code = app.exec()
    ctx.close()
    return code
