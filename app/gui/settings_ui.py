"""The settings dialog as the window uses it: building it, applying what changed, and
switching between a local model and a server.

`SettingsUi` is owned by the main window. It changes the settings, the chat controller and
the model session itself; what belongs to the window's own widgets (theme, composer, chat
layout, the model label) it asks for with signals, so the window stays the only one that
touches them.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QWidget

from app.core.appdata.llama_runtime import Runtime, probe_runtime
from app.core.chat.context import AppContext
from app.core.engine.local import LocalEngine
from app.gui.chat.controller import ChatController
from app.gui.instruct_page import attach_instruct_page
from app.gui.model_session import ModelSession
from app.gui.runtime_note import RuntimeNote
from app.gui.settings_dialog import SettingsDialog
from app.gui.settings_pages import DataPage, SamplerPresetBar, ServerPage

# Settings that only take effect when the model is loaded again.
LOAD_KEYS = {
    "n_ctx",
    "n_gpu_layers",
    "n_threads",
    "n_batch",
    "flash_attn",
    "kv_type",
    "use_mmap",
    "use_mlock",
    "session_cap_mb",
    "n_cpu_moe",
}


class SettingsUi(QObject):
    applied = Signal(set)  # the names of the settings that changed, already saved
    data_replaced = Signal()  # a backup was restored or an export imported
    model_cleared = Signal()  # the engine was switched; no model until one loads
    error = Signal(str)

    def __init__(
        self, ctx: AppContext, controller: ChatController, session: ModelSession, window: QWidget
    ) -> None:
        super().__init__(window)
        self.ctx, self.controller, self.session, self.window = ctx, controller, session, window
        self.dialog: SettingsDialog | None = None
        self.data_page: DataPage | None = None
        self.server_page: ServerPage | None = None
        self.preset_bar: SamplerPresetBar | None = None
        self.runtime_probe: Callable[[], Runtime] = probe_runtime  # what llama.cpp runs on

    def show(self) -> SettingsDialog:
        dialog = SettingsDialog(self.ctx.settings, self.window)
        dialog.applied.connect(self.apply)
        data, server = DataPage(self.ctx), ServerPage(self.ctx)
        self.preset_bar = SamplerPresetBar(self.ctx, dialog, self.controller.chat_id)
        dialog.add_to_section("Generation", self.preset_bar)
        note = RuntimeNote(self.runtime_probe, dialog)
        note.answered.connect(lambda: dialog.relayout("Model"))
        dialog.add_to_section("Model", note)
        dialog.add_page(self.tr("Server"), server)
        dialog.add_page(self.tr("Data"), data)
        attach_instruct_page(dialog, self.ctx.settings, self.ctx.save_settings)
        self._show_trained_context(dialog)
        self._show_session_notice(dialog)
        dialog.applied.connect(
            lambda _changed: (data.save_token(), data._save_mirror(), self.ctx.save_settings())
        )
        data.data_replaced.connect(self.data_replaced)
        server.connect_requested.connect(self.use_server)
        server.local_requested.connect(self.use_local)
        dialog.show()
        self.dialog, self.data_page, self.server_page = dialog, data, server
        return dialog

    def _show_trained_context(self, dialog: SettingsDialog) -> None:
        info = self.controller.info
        if info is not None and info.n_ctx_train:  # beside Context size: what the model knows
            dialog.add_to_section(
                "Model",
                QLabel(
                    self.tr(
                        "The loaded model was trained on {0} tokens and runs with a {1}-token "
                        "context."
                    ).format(info.n_ctx_train, info.n_ctx),
                    wordWrap=True,
                ),
            )

    def _show_session_notice(self, dialog: SettingsDialog) -> None:
        """Beside the saved-sessions cap: a chat whose session did not fit under it."""
        from app.core.engine.sessions import read_notice

        notice = read_notice(self.ctx.paths.cache / "sessions")
        if notice:
            dialog.add_to_section("Model", QLabel(notice, wordWrap=True))

    def use_server(self, url: str, api_key: str, mode: str) -> None:
        from app.core.engine.remote import RemoteEngine

        if self.controller.busy or self.session.loading:
            return
        self.controller.set_model(None)
        self.model_cleared.emit()
        self.session.swap_engine(
            lambda: RemoteEngine(url, api_key=api_key or None, mode=mode),
            self.session.connect_server,
        )

    def use_local(self) -> None:
        if self.controller.busy or self.session.loading:
            return
        self.controller.set_model(None)
        self.model_cleared.emit()
        path = self.ctx.settings.model_path
        self.session.swap_engine(
            LocalEngine, (lambda: self.session.load_file(path)) if path else None
        )

    def apply(self, changed: set) -> None:
        """Apply what changed now; only model parameters need the model reloaded."""
        s = self.ctx.settings
        try:
            self.ctx.save_settings()
        except OSError as exc:
            self.error.emit(self.tr("The settings could not be saved:\n{0}").format(exc))
        self.controller.reload()
        self.applied.emit(changed)
        if (
            changed & LOAD_KEYS
            and self.controller.info is not None
            and not self.controller.busy
            and s.model_path
        ):
            self.session.load_file(s.model_path)
