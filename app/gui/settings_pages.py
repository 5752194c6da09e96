"""The settings pages that act rather than hold a value: Data (backups, export, import,
secrets, diagnostics) and Server (use an OpenAI-compatible server instead of a local model)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.appdata.logs import diagnostics
from app.core.appdata.secrets import HUB_TOKEN, SecretsError, remote_key_name
from app.core.chat.context import AppContext
from app.core.chat.job import SAMPLER_KEYS, sampling_from
from app.core.engine import SamplingParams
from app.core.engine.base import breakers_text
from app.core.engine.preset_import import import_file
from app.core.engine.presets import PresetError, SamplerPresets, overrides_between
from app.core.store import Store, StoreError
from app.core.store.backup import BackupError, list_snapshots, restore_snapshot, snapshot
from app.core.store.export_all import ExportError, export_everything, import_everything


def _warn(widget: QWidget, text: str) -> QMessageBox:
    """A non-modal warning: the window stays usable, and tests are never blocked."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Parlor", text, parent=widget)
    box.setModal(False)
    box.show()
    widget.last_error = text
    return box


class DataPage(QWidget):
    data_replaced = Signal()  # the database was restored or imported: reload everything
    last_error = ""

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        lay = QVBoxLayout(self)
        folder = QLabel(self.tr("Data folder: {0}").format(ctx.paths.data))
        folder.setWordWrap(True)
        lay.addWidget(folder)
        lay.addWidget(
            QLabel(
                self.tr(
                    "Backups (a snapshot is taken every day and before "
                    "every upgrade of the database):"
                )
            )
        )
        self.snapshots = QListWidget()
        self.snapshots.setAccessibleName(self.tr("Backups"))
        lay.addWidget(self.snapshots, 1)
        row = QHBoxLayout()
        for text, slot in (
            (self.tr("Back up now"), self.back_up_now),
            (self.tr("Restore the selected backup"), self._restore_selected),
            (self.tr("Export everything…"), self._export),
            (self.tr("Import…"), self._import),
            (self.tr("Copy diagnostics"), self.copy_diagnostics),
        ):
            button = QPushButton(text)
            button.clicked.connect(slot)
            row.addWidget(button)
        lay.addLayout(row)
        form = QFormLayout()
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText(self.tr("for gated models; HF_TOKEN also works"))
        self.token.setAccessibleName(self.tr("Hugging Face token"))
        form.addRow(self.tr("Hugging Face token"), self.token)
        self.mirror = QLineEdit(ctx.settings.hf_endpoint)
        self.mirror.setPlaceholderText(self.tr("https://huggingface.co (or a mirror)"))
        self.mirror.setAccessibleName(self.tr("Model hub address"))
        self.mirror.editingFinished.connect(self._save_mirror)
        form.addRow(self.tr("Model hub address"), self.mirror)
        self.where = QLabel()
        self.where.setWordWrap(True)
        form.addRow("", self.where)
        lay.addLayout(form)
        self.refresh()

    def _warn(self, text: str) -> None:
        self._box = _warn(self, text)

    def refresh(self) -> None:
        self.snapshots.clear()
        for snap in list_snapshots(self.ctx.paths.database):
            item = QListWidgetItem(snap.label)
            item.setData(256, str(snap.path))
            self.snapshots.addItem(item)
        self.where.setText(self.ctx.secrets.where())

    def _save_mirror(self) -> None:
        self.ctx.settings.hf_endpoint = self.mirror.text().strip()

    def save_token(self) -> None:
        if self.token.text():
            try:
                self.ctx.secrets.set(HUB_TOKEN, self.token.text())
            except SecretsError as exc:
                self._warn(str(exc))
            self.token.clear()

    def back_up_now(self) -> None:
        try:
            snapshot(self.ctx.paths.database, "manual")
        except BackupError as exc:
            self._warn(str(exc))
        self.refresh()

    def restore(self, snapshot_path: Path) -> None:
        """Swap the database for the snapshot (the current one is snapshotted first)."""
        self.ctx.store.close()
        try:
            restore_snapshot(snapshot_path, self.ctx.paths.database)
        except BackupError as exc:
            self._warn(str(exc))
        finally:
            self._reopen()
        self.refresh()

    def _reopen(self) -> None:
        try:
            self.ctx.store = Store(self.ctx.paths.database)
        except StoreError as exc:
            self._warn(str(exc))
            return
        self.data_replaced.emit()

    def _restore_selected(self) -> None:
        item = self.snapshots.currentItem()
        if item is not None:
            self.restore(Path(item.data(256)))

    def export_to(self, target: Path) -> None:
        try:
            export_everything(self.ctx.paths, target, self.ctx.secrets.known_values())
        except (ExportError, OSError, StoreError) as exc:
            self._warn(str(exc))

    def import_from(self, source: Path) -> dict | None:
        self.ctx.store.close()
        try:
            return import_everything(source, self.ctx.paths)
        except (ExportError, OSError, StoreError) as exc:
            self._warn(str(exc))
            return None
        finally:
            self._reopen()

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, self.tr("Export everything"), "parlor-export.zip", "Zip (*.zip)"
        )
        if path:
            self.export_to(Path(path))

    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Import an export"), "", "Zip (*.zip)")
        if path:
            from app.gui.data_import_job import start_import_everything

            start_import_everything(self, Path(path))  # off the GUI thread, with Cancel

    def copy_diagnostics(self) -> str:
        text = diagnostics(self.ctx.paths.logs, self.ctx.secrets.known_values())
        QApplication.clipboard().setText(text)
        return text


class ServerPage(QWidget):
    """Use a served model (llama-server, KoboldCpp, vLLM, Ollama…) instead of a local file."""

    connect_requested = Signal(str, str, str)  # url, api key, mode
    local_requested = Signal()

    def __init__(self, ctx: AppContext, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        form = QFormLayout(self)
        self.url = QLineEdit(ctx.settings.extra.get("remote_url", ""))
        self.url.setPlaceholderText("http://127.0.0.1:8080")
        self.url.setAccessibleName(self.tr("Server address"))
        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText(self.tr("optional"))
        self.key.setAccessibleName(self.tr("API key"))
        self.mode = QComboBox()
        self.mode.setAccessibleName(self.tr("Mode"))
        self.mode.addItem(self.tr("Text completion (Parlor builds the prompt)"), "completion")
        self.mode.addItem(self.tr("Chat completion (the server applies its template)"), "chat")
        form.addRow(self.tr("Server address"), self.url)
        form.addRow(self.tr("API key"), self.key)
        form.addRow(self.tr("Mode"), self.mode)
        connect = QPushButton(self.tr("Use this server"))
        local = QPushButton(self.tr("Use a local model again"))
        connect.clicked.connect(self._connect)
        local.clicked.connect(self.local_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(connect)
        buttons.addWidget(local)
        form.addRow(buttons)

    def _connect(self) -> None:
        url = self.url.text().strip()
        if not url:
            return
        key = self.key.text() or self.ctx.secrets.get(remote_key_name(url)) or ""
        if self.key.text():
            self.ctx.secrets.set(remote_key_name(url), self.key.text())
        self.ctx.settings.extra["remote_url"] = url
        self.connect_requested.emit(url, key, self.mode.currentData())


class SamplerPresetBar(QWidget):
    """Named sampler presets (built-in and saved), and samplers for one chat only."""

    def __init__(self, ctx: AppContext, dialog, chat_id: int | None, parent=None) -> None:
        super().__init__(parent)
        self.ctx, self.dialog, self.chat_id = ctx, dialog, chat_id
        self.presets = SamplerPresets(ctx.paths.config / "sampler_presets")
        self.names = QComboBox()
        self.names.setAccessibleName(self.tr("Sampler preset"))
        self.name = QLineEdit()
        self.name.setPlaceholderText(self.tr("name for the current samplers"))
        self.name.setAccessibleName(self.tr("New preset name"))
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel(self.tr("Preset")))
        row.addWidget(self.names)
        for text, slot in ((self.tr("Use"), self.use), (self.tr("Save as"), self.save)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            row.addWidget(button)
            if text == self.tr("Use"):
                row.addWidget(self.name)
        chat_only = QPushButton(self.tr("For this chat only"))
        chat_only.setToolTip(
            self.tr("Keep these samplers for the open chat; the others keep the general ones")
        )
        chat_only.clicked.connect(self.save_for_chat)
        chat_only.setEnabled(chat_id is not None)
        row.addWidget(chat_only)
        load = QPushButton(self.tr("Import…"))
        load.setToolTip(self.tr("A SillyTavern or KoboldCpp sampler preset (.json)"))
        load.clicked.connect(self._on_import)
        row.addWidget(load)
        row.addWidget(self.status)
        self.refresh()

    def refresh(self) -> None:
        self.names.clear()
        self.names.addItems(self.presets.names())

    def _current(self) -> SamplingParams:
        values = self.dialog.values()
        return SamplingParams(**{k: values[k] for k in SAMPLER_KEYS})

    def use(self, name: str | None = None) -> None:
        try:
            params = self.presets.get(name or self.names.currentText())
        except PresetError as exc:
            self.status.setText(str(exc))
            return
        shown = {k: getattr(params, k) for k in SAMPLER_KEYS}
        shown["dry_sequence_breakers"] = breakers_text(params.dry_sequence_breakers)
        self.dialog.set_values(shown)

    def _on_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Import a sampler preset"), "", self.tr("Presets (*.json)")
        )
        if path:
            self.import_file(Path(path))

    def import_file(self, path: Path) -> None:
        """Save the file as a preset and use it; say what of it llama.cpp has no use for."""
        try:
            name, got = import_file(self.presets, path)
        except (PresetError, OSError) as exc:
            self.status.setText(str(exc))
            return
        self.refresh()
        self.names.setCurrentText(name)
        self.use(name)
        note = self.tr("Imported the {0} preset “{1}”.").format(got.source, name)
        if got.ignored:
            note += " " + self.tr("Not used (no such sampler here): {0}").format(
                ", ".join(got.ignored)
            )
        self.status.setText(note)
        self.status.setToolTip(note)

    def save(self) -> None:
        name = self.name.text().strip()
        if not name:
            self.status.setText(self.tr("Give the preset a name first."))
            return
        try:
            self.presets.save(name, self._current())
        except (PresetError, OSError) as exc:
            self.status.setText(str(exc))
            return
        self.refresh()
        self.names.setCurrentText(name)
        self.status.setText(self.tr("Saved."))

    def save_for_chat(self) -> None:
        general = sampling_from(self.ctx.settings, [])
        extra = self.ctx.store.chats.extra(self.chat_id)
        extra["sampler"] = overrides_between(general, self._current())
        self.ctx.store.chats.set_extra(self.chat_id, extra)
        self.status.setText(self.tr("This chat keeps its own samplers."))
