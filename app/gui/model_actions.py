"""Getting a model into the window: open a file, download, load, or use a server."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QMessageBox,
)

from app.core.appdata.secrets import HUB_TOKEN, SecretsError
from app.core.engine import ModelInfo
from app.core.engine.devices import layers_text
from app.gui.models.convert_dialog import open_gguf
from app.gui.models.download_dialog import DownloadDialog
from app.gui.plain_text import plain_tip
from app.gui.status_text import model_title


class ModelActions:
    """Mixed into MainWindow; uses its widgets, controller, worker and context."""

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            self.tr("Open a GGUF model"),
            str(self.ctx.paths.models),
            self.tr("GGUF models (*.gguf);;All files (*)"),
        )
        if path:
            self.open_model_file(path)

    def open_model_file(self, path: str):
        """Load `path`, converting an old mixture-of-experts layout first when needed."""
        self._opener = open_gguf(path, self)
        self._opener.ready.connect(self.load_model)
        self._opener.failed.connect(self._show_error)
        return self._opener

    def load_model(self, path: str, n_gpu_layers: int | None = None) -> bool:
        """Check the file, then load it on the worker thread. False if the file is bad."""
        return self.session.load_file(path, n_gpu_layers)

    def connect_engine(self) -> None:
        """Connect an engine that needs no file (a remote server): the server's model."""
        self.session.connect_server()

    def _connect_session(self) -> None:
        session = self.session
        session.status.connect(self.model_label.setText)
        session.header_read.connect(self._on_header_read)
        session.loading_changed.connect(self._set_loading)
        session.loaded.connect(self._on_loaded)
        session.failed.connect(self._on_load_failed)
        session.rejected.connect(self._show_error)
        session.warning.connect(self._show_error)

    def _on_header_read(self, summary: str) -> None:
        self.model_summary = summary
        self.model_label.setToolTip(plain_tip(summary))  # names from the GGUF header
        self.statusBar().showMessage(summary, 10000)

    def _set_loading(self, loading: bool) -> None:
        """While a model loads: no sending, and Stop cancels the load."""
        for w in (self.open_button, self.send_button, self.open_action):
            w.setEnabled(not loading)
        self.stop_button.setEnabled(loading or self.controller.busy)

    def stop_or_cancel(self) -> None:
        if self.session.loading:
            self.session.cancel()
        else:
            self.controller.stop()

    def _on_loaded(self, info: ModelInfo) -> None:
        if not info.metadata.get("remote"):
            self.ctx.settings.model_path = info.path
            self.ctx.save_settings()
        self.controller.set_model(info)
        self._show_model(info)
        if info.warnings:
            self.statusBar().showMessage(" ".join(info.warnings), 15000)
        self.model_loaded.emit(info)

    def _on_load_failed(self, message: str) -> None:
        self._show_model(None)
        self.model_failed.emit(message)
        self._show_error(message)

    def _show_model(self, info: ModelInfo | None) -> None:
        self.banner.setVisible(info is None)
        if info is None:
            self.model_label.setText(self.tr("No model loaded"))
            return
        self.model_label.setText(
            self.tr("{0} · context {1} · {2}").format(
                model_title(info), info.n_ctx, layers_text(info.n_gpu_layers, info.effective)
            )
        )

    def show_download(self) -> DownloadDialog:
        try:
            token = self.ctx.secrets.get(HUB_TOKEN)
        except SecretsError as exc:
            self.statusBar().showMessage(str(exc), 10000)
            token = None
        dialog = DownloadDialog.for_app(self.ctx.paths, self.ctx.settings, self, token=token)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.model_ready.connect(self._offer_load)
        dialog.show()
        self._download_dialog = dialog
        return dialog

    def _offer_load(self, path: str, n_gpu_layers: int, n_cpu_moe: int = 0) -> QMessageBox:
        """After a download: offer to load it, with GPU layers from the memory estimate."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            self.tr("Model ready"),
            self.tr("{0} is ready. Load it now ({1} GPU layers)?").format(
                Path(path).name, n_gpu_layers
            ),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )

        def answered(button: int) -> None:
            if button == QMessageBox.StandardButton.Yes:
                self.ctx.settings.n_gpu_layers = n_gpu_layers
                self.ctx.settings.n_cpu_moe = n_cpu_moe  # the picker's expert split
                self.open_model_file(path)  # the one opening path, as for Open and start-up

        box.finished.connect(answered)
        box.open()
        self._load_offer = box
        return box
