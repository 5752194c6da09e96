"""Getting a model into the window: open a file, download, load, or use a server.

`ModelControls` is owned by the main window. It turns the user's model actions into requests
to the `ModelSession` and shows the session's state on the window's widgets (the model label,
the no-model banner, which buttons work while a load runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.core.appdata.secrets import HUB_TOKEN, SecretsError
from app.core.engine import ModelInfo
from app.core.engine.devices import layers_text
from app.gui.models.convert_dialog import GgufOpener, open_gguf
from app.gui.models.download_dialog import DownloadDialog
from app.gui.plain_text import plain_tip
from app.gui.status_text import model_title

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow


class ModelControls(QObject):
    loaded = Signal(object)  # ModelInfo, once the controller uses it
    failed = Signal(str)  # a load failed for good
    error = Signal(str)  # something to show the user in a message box

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._ctx, self._session = window.ctx, window.session
        self.summary = ""  # the header summary of the file loaded or loading
        self.opener: GgufOpener | None = None  # the last file opened, converting or not
        self.download_dialog: DownloadDialog | None = None
        self.load_offer: QMessageBox | None = None  # "load it now?" after a download
        session = self._session
        session.status.connect(window.model_label.setText)
        session.header_read.connect(self._on_header_read)
        session.loading_changed.connect(self._set_loading)
        session.loaded.connect(self._on_loaded)
        session.failed.connect(self._on_load_failed)
        session.rejected.connect(self.error)
        session.warning.connect(self.error)

    # --- what the user asks for ------------------------------------------------------------
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._window,
            self.tr("Open a GGUF model"),
            str(self._ctx.paths.models),
            self.tr("GGUF models (*.gguf);;All files (*)"),
        )
        if path:
            self.open_file(path)

    def open_file(self, path: str) -> GgufOpener:
        """Load `path`, converting an old mixture-of-experts layout first when needed."""
        self.opener = open_gguf(path, self._window)
        self.opener.ready.connect(self.load)
        self.opener.failed.connect(self.error)
        return self.opener

    def load(self, path: str, n_gpu_layers: int | None = None) -> bool:
        """Check the file, then load it on the worker thread. False if the file is bad."""
        return self._session.load_file(path, n_gpu_layers)

    def connect_server(self) -> None:
        """Connect an engine that needs no file (a remote server): the server's model."""
        self._session.connect_server()

    def stop_or_cancel(self) -> None:
        if self._session.loading:
            self._session.cancel()
        else:
            self._window.controller.stop()

    def show_download(self) -> DownloadDialog:
        try:
            token = self._ctx.secrets.get(HUB_TOKEN)
        except SecretsError as exc:
            self._window.statusBar().showMessage(str(exc), 10000)
            token = None
        dialog = DownloadDialog.for_app(
            self._ctx.paths, self._ctx.settings, self._window, token=token
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.model_ready.connect(self.offer_load)
        dialog.show()
        self.download_dialog = dialog
        return dialog

    def offer_load(self, path: str, n_gpu_layers: int, n_cpu_moe: int = 0) -> QMessageBox:
        """After a download: offer to load it, with GPU layers from the memory estimate."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            self.tr("Model ready"),
            self.tr("{0} is ready. Load it now ({1} GPU layers)?").format(
                Path(path).name, n_gpu_layers
            ),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self._window,
        )

        def answered(button: int) -> None:
            if button == QMessageBox.StandardButton.Yes:
                self._ctx.settings.n_gpu_layers = n_gpu_layers
                self._ctx.settings.n_cpu_moe = n_cpu_moe  # the picker's expert split
                self.open_file(path)  # the one opening path, as for Open and start-up

        box.finished.connect(answered)
        box.open()
        self.load_offer = box
        return box

    # --- what the window shows -------------------------------------------------------------
    def show_model(self, info: ModelInfo | None) -> None:
        w = self._window
        w.banner.setVisible(info is None)
        if info is None:
            w.model_label.setText(self.tr("No model loaded"))
            return
        w.model_label.setText(
            self.tr("{0} · context {1} · {2}").format(
                model_title(info), info.n_ctx, layers_text(info.n_gpu_layers, info.effective)
            )
        )

    def _on_header_read(self, summary: str) -> None:
        self.summary = summary
        self._window.model_label.setToolTip(plain_tip(summary))  # names from the GGUF header
        self._window.statusBar().showMessage(summary, 10000)

    def _set_loading(self, loading: bool) -> None:
        """While a model loads: no sending, and Stop cancels the load."""
        w = self._window
        for widget in (w.open_button, w.send_button, w.open_action):
            widget.setEnabled(not loading)
        w.stop_button.setEnabled(loading or w.controller.busy)

    def _on_loaded(self, info: ModelInfo) -> None:
        if not info.metadata.get("remote"):
            self._ctx.settings.model_path = info.path
            self._ctx.save_settings()
        self._window.controller.set_model(info)
        self.show_model(info)
        if info.warnings:
            self._window.statusBar().showMessage(" ".join(info.warnings), 15000)
        self.loaded.emit(info)

    def _on_load_failed(self, message: str) -> None:
        self.show_model(None)
        self.failed.emit(message)
        self.error.emit(message)
