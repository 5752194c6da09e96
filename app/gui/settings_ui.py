"""The settings dialog and what applying it does to the open window."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QApplication,
    QLabel,
)

from app.core.engine.local import LocalEngine
from app.gui.instruct_page import attach_instruct_page
from app.gui.settings_dialog import SettingsDialog
from app.gui.settings_pages import DataPage, SamplerPresetBar, ServerPage
from app.gui.theme import apply_theme

# Settings that only take effect when the model is loaded again.
LOAD_KEYS = {"n_ctx", "n_gpu_layers", "n_threads", "n_batch", "flash_attn", "kv_type",
             "use_mmap", "use_mlock", "session_cap_mb"}


class SettingsActions:
    """Mixed into MainWindow; uses its widgets, controller, worker and context."""

    def show_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.ctx.settings, self)
        dialog.applied.connect(self.apply_settings)
        data, server = DataPage(self.ctx), ServerPage(self.ctx)
        self.preset_bar = SamplerPresetBar(self.ctx, dialog, self.controller.chat_id)
        dialog.add_to_section("Generation", self.preset_bar)
        dialog.add_page(self.tr("Server"), server)
        dialog.add_page(self.tr("Data"), data)
        attach_instruct_page(dialog, self.ctx.settings, self.ctx.save_settings)
        info = self.controller.info
        if info is not None and info.n_ctx_train:  # beside Context size: what the model knows
            dialog.add_to_section("Model", QLabel(self.tr(
                "The loaded model was trained on {0} tokens and runs with a {1}-token "
                "context.").format(info.n_ctx_train, info.n_ctx), wordWrap=True))
        dialog.applied.connect(lambda _changed: (data.save_token(), data._save_mirror(),
                                                 self.ctx.save_settings()))
        data.data_replaced.connect(self._on_data_replaced)
        server.connect_requested.connect(self.use_server)
        server.local_requested.connect(self.use_local)
        dialog.show()
        self._settings_dialog, self.data_page, self.server_page = dialog, data, server
        return dialog

    def _on_data_replaced(self) -> None:
        """A backup was restored or an export imported: show what is there now."""
        self.controller.chat_id = None
        self.library.store = self.ctx.store
        self.library.reload()
        self._load_characters()

    def use_server(self, url: str, api_key: str, mode: str) -> None:
        from app.core.engine.remote import RemoteEngine

        if self.controller.busy or self.session.loading:
            return
        self.session.swap_engine(lambda: RemoteEngine(url, api_key=api_key or None, mode=mode),
                                 self.connect_engine)

    def use_local(self) -> None:
        if self.controller.busy or self.session.loading:
            return
        self.controller.set_model(None)
        self._show_model(None)
        path = self.ctx.settings.model_path
        self.session.swap_engine(LocalEngine, (lambda: self.load_model(path)) if path else None)

    def apply_settings(self, changed: set) -> None:
        """Apply what changed now; only model parameters need the model reloaded."""
        s = self.ctx.settings
        try:
            self.ctx.save_settings()
        except OSError as exc:
            self._show_error(self.tr("The settings could not be saved:\n{0}").format(exc))
        apply_theme(QApplication.instance(), s.theme, s.font_size)
        self.composer.enter_sends = s.enter_sends
        self.chat_view.itemDelegate().book = s.chat_layout == "book"
        self.controller.reload()
        if changed & LOAD_KEYS and self.controller.info is not None \
                and not self.controller.busy and s.model_path:
            self.load_model(s.model_path)

