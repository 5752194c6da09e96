"""Getting a model into the window: open a file, download, load, or use a server."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QMessageBox,
)

from app.core.appdata.secrets import HUB_TOKEN, SecretsError
from app.core.engine import LoadParams, ModelInfo
from app.core.engine.devices import layers_text
from app.core.gguf.header import GGUFError, estimate_memory, validate_gguf
from app.gui.models.convert_dialog import open_gguf
from app.gui.models.download_dialog import DownloadDialog
from app.gui.plain_text import plain_tip
from app.gui.status_text import model_title


class ModelActions:
    """Mixed into MainWindow; uses its widgets, controller, worker and context."""

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Open a GGUF model"),
                                              str(self.ctx.paths.models),
                                              self.tr("GGUF models (*.gguf);;All files (*)"))
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
        try:
            header = validate_gguf(path)
        except (GGUFError, OSError) as exc:
            self._show_error(self.tr("Cannot open the model:\n{0}").format(exc))
            return False
        s = self.ctx.settings
        self.model_summary = describe_header(header, s.n_ctx, s.kv_type)
        self.model_label.setToolTip(plain_tip(self.model_summary))  # names from the GGUF
        self.statusBar().showMessage(self.model_summary, 10000)
        self.model_label.setText(self.tr("Loading {0}…").format(Path(path).name))
        self._set_loading(True)
        self._loading = LoadParams(
            model_path=str(path), n_ctx=s.n_ctx,
            n_gpu_layers=s.n_gpu_layers if n_gpu_layers is None else n_gpu_layers,
            n_threads=s.n_threads or None, n_batch=s.n_batch, flash_attn=s.flash_attn,
            kv_type=s.kv_type, use_mmap=s.use_mmap, use_mlock=s.use_mlock,
            session_dir=str(self.ctx.paths.cache / "sessions") if s.session_cap_mb else "",
            session_cap_mb=s.session_cap_mb)
        self.worker.worker.load_cancel.clear()
        self._load.emit(self._loading)
        return True

    def connect_engine(self) -> None:
        """Connect an engine that needs no file (a remote server): the server's model."""
        self.model_label.setText(self.tr("Connecting…"))
        self._loading = None
        self._set_loading(True)
        self.worker.worker.load_cancel.clear()
        self._load.emit(LoadParams(model_path="", n_ctx=self.ctx.settings.n_ctx))

    def _set_loading(self, loading: bool) -> None:
        """While a model loads: no sending, and Stop cancels the load."""
        self._is_loading = loading
        for w in (self.open_button, self.send_button, self.open_action):
            w.setEnabled(not loading)
        self.stop_button.setEnabled(loading or self.controller.busy)

    def stop_or_cancel(self) -> None:
        if getattr(self, "_is_loading", False):
            self._loading = None  # a cancelled load is not retried on the CPU
            self.worker.worker.load_cancel.set()
        else:
            self.controller.stop()

    def _on_load_progress(self, fraction: float) -> None:
        if getattr(self, "_is_loading", False) and getattr(self, "_loading", None):
            self.model_label.setText(self.tr("Loading {0}… {1}%").format(
                Path(self._loading.model_path).name, int(fraction * 100)))

    def _on_loaded(self, info: ModelInfo) -> None:
        self._set_loading(False)
        if not info.metadata.get("remote"):
            self.ctx.settings.model_path = info.path
            self.ctx.save_settings()
        self.controller.set_model(info)
        self._show_model(info)
        if info.warnings:
            self.statusBar().showMessage(" ".join(info.warnings), 15000)
        self.model_loaded.emit(info)

    def _on_load_failed(self, message: str) -> None:
        params = getattr(self, "_loading", None)
        if params is not None and params.n_gpu_layers != 0 and params.model_path:
            # A GPU build without its runtime (or a GPU too small) must not leave the user
            # with nothing: run on the CPU and say why.
            self._show_error(self.tr("The GPU could not be used ({0}). Parlor is loading the "
                                     "model on the CPU instead.").format(message))
            self.load_model(params.model_path, n_gpu_layers=0)
            return
        self._set_loading(False)
        self._show_model(None)
        self.model_failed.emit(message)
        self._show_error(self.tr("The model could not be loaded:\n{0}").format(message))

    def _show_model(self, info: ModelInfo | None) -> None:
        self.banner.setVisible(info is None)
        if info is None:
            self.model_label.setText(self.tr("No model loaded"))
            return
        self.model_label.setText(self.tr("{0} · context {1} · {2}").format(
            model_title(info), info.n_ctx, layers_text(info.n_gpu_layers, info.effective)))

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

    def _offer_load(self, path: str, n_gpu_layers: int) -> QMessageBox:
        """After a download: offer to load it, with GPU layers from the memory estimate."""
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Model ready"),
                          self.tr("{0} is ready. Load it now ({1} GPU layers)?").format(
                              Path(path).name, n_gpu_layers),
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)

        def answered(button: int) -> None:
            if button == QMessageBox.StandardButton.Yes:
                self.ctx.settings.n_gpu_layers = n_gpu_layers
                self.open_model_file(path)  # the one opening path, as for Open and start-up

        box.finished.connect(answered)
        box.open()
        self._load_offer = box
        return box


def describe_header(header, n_ctx: int, kv_type: str) -> str:
    """What "Open GGUF…" tells before loading: architecture, layers, experts, training
    context, quant type, and the memory a context of `n_ctx` would need."""
    experts = f", {header.expert_used_count} of {header.expert_count} experts used" \
        if header.expert_count else ""
    try:
        need = estimate_memory(header, n_ctx, kv_type=kv_type)["total_bytes"] / 1e9
        size = f"{need:.1f} GB" if need >= 1 else f"{need * 1000:.0f} MB"
        memory = f"; about {size} with a {n_ctx}-token context"
    except (GGUFError, KeyError, ValueError, ZeroDivisionError):
        memory = ""
    return (f"{header.architecture or 'unknown architecture'}, {header.n_layer} layers"
            f"{experts}, trained on {header.context_length} tokens, "
            f"{header.file_type or 'unknown'} quantization{memory}")
