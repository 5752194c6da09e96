"""The model download dialog: the quant picker with honest fit badges, any other repository,
a resumable verified download, and the conversion an old MoE file needs before it loads.

Everything that blocks (hub listing, the header read by Range request, the download, the
conversion) runs as a Job off the GUI thread; this module only shows what the Qt-free core
decides (`catalog.evaluate` is the fit rule, `downloads.download` the transfer). Its
dependencies come in through the constructor so tests can give it a fake machine and a hub
on 127.0.0.1; `DownloadDialog.for_app` builds the real ones. The table itself (rows, badges,
the machine summary) lives in `fit_table`.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.appdata.machine import Machine, read_machine
from app.core.convert.moe import extra_disk_bytes
from app.core.gguf.header import (
    GGUFError,
    GGUFHeader,
    estimate_memory,
    moe_layout,
    read_header,
)
from app.core.hub import catalog as cat
from app.core.hub.downloads import (
    DISK_MARGIN,
    DownloadError,
    GgufModel,
    Hub,
    Progress,
    discard_partial,
    download,
    human_size,
    parse_repo_ref,
    partial_bytes,
)
from app.core.hub.offload import plan_for
from app.gui.chat.header import ElidedLabel
from app.gui.models.convert_dialog import (
    ConversionMeter,
    Verify,
    conversion_work,
    load_check,
    show_conversion_progress,
)
from app.gui.models.fit_table import BADGES, Choice, FitTable, gb, machine_summary
from app.gui.models.jobs import JobSlot, rate, time_left
from app.gui.models.machine_probe import MachineProbe, provisional_machine
from app.gui.models.states import DownloadState

__all__ = ["DownloadDialog", "machine_summary"]  # machine_summary: the first-run guide's

PHASES = {
    "checking": "Checking the part downloaded before",
    "retrying": "Reconnecting",
    "verifying": "Verifying the checksum",
    "waiting": "Waiting for the other download",
    "identifying": "Checking the file already in the models folder",
}
ERROR_STYLE = "color: #b71c1c;"


class DownloadDialog(QDialog):
    """Pick a quant (or any repository's GGUF), download it, convert it if it is old, and
    say `model_ready(path, n_gpu_layers)` so the main window can offer to load it."""

    model_ready = Signal(str, int, int)  # path, n_gpu_layers, n_cpu_moe

    def __init__(
        self,
        machine: Machine,
        catalog: cat.Catalog,
        hub: Hub,
        models_dir: Path,
        parent: QWidget | None = None,
        *,
        n_ctx: int = 4096,
        verify: Verify | None = load_check,
        disk_usage: Callable[[Path], object] = shutil.disk_usage,
        probe: Callable[[], Machine] | None = None,
    ) -> None:
        """`probe`: read the machine in the background and show `machine` (the RAM alone)
        until it answers; Download waits for it, so no plan is made on a partial view."""
        super().__init__(parent)
        self.machine, self.catalog, self.hub = machine, catalog, hub
        self.models_dir, self.n_ctx, self.verify = Path(models_dir), n_ctx, verify
        self.disk_usage = disk_usage
        self.state = DownloadState.IDLE
        self.result_path: Path | None = None
        self._active: Choice | None = None  # the choice being downloaded or converted
        self._headers, self._work, self._listing = JobSlot(), JobSlot(), JobSlot()
        self._meter = ConversionMeter()
        self.setWindowTitle(self.tr("Download a model"))
        self.resize(980, 600)
        self.probing = probe is not None
        self._last_listing: tuple[str, str | None, list[GgufModel]] | None = None
        self._build()
        self._show_catalog()
        self._machine_probe = MachineProbe(probe, self) if probe is not None else None
        if self._machine_probe is not None:
            self.machine_label.setText(
                self.machine_label.text()
                + "\n"
                + self.tr("Checking the graphics cards and llama.cpp's devices…")
            )
            self._machine_probe.ready.connect(self.set_machine)
            self._machine_probe.start()

    @classmethod
    def for_app(
        cls, paths, settings, parent: QWidget | None = None, token: str | None = None
    ) -> DownloadDialog:
        """The dialog on this machine, the default catalog, the hub from the settings (the
        mirror in `settings.hf_endpoint`, else HF_ENDPOINT or huggingface.co) and `token`
        (Parlor's stored one; None: huggingface_hub's login or HF_TOKEN)."""
        hub = Hub(
            endpoint=settings.hf_endpoint or settings.extra.get("hf_endpoint") or None,
            token=token or None,
        )
        return cls(
            provisional_machine(),
            cat.load_catalog(),
            hub,
            paths.models,
            parent,
            n_ctx=settings.n_ctx or 8192,  # 0: from the model, at least 8192
            probe=read_machine,  # a 1.5 s device probe: off the GUI thread
        )

    def set_machine(self, machine: Machine) -> None:
        """The probe's answer: the summary, the fit of every row and the pick are redone."""
        self.machine, self.probing = machine, False
        rec, _ = cat.evaluate(self.catalog, machine)
        self.machine_label.setText(machine_summary(machine, rec.usable_bytes))
        if self.state.busy:
            return
        self._show_catalog()
        if self._last_listing is not None:
            self._on_listed(*self._last_listing)
        self._on_selection()

    # --- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        rec, _ = cat.evaluate(self.catalog, self.machine)
        self.machine_label = self._label(machine_summary(self.machine, rec.usable_bytes))
        layout.addWidget(self.machine_label)
        self.tabs = QTabWidget()
        self.tabs.addTab(
            self._catalog_page(), self.tr("{0} (default model)").format(self.catalog.name)
        )
        self.tabs.addTab(self._repo_page(), self.tr("Other repository"))
        self.tabs.currentChanged.connect(lambda _i: self._on_selection())
        layout.addWidget(self.tabs, 1)
        self.why_label = self._label("")
        self.layout_label = self._label("")
        self.disk_label = self._label("")
        self.keep_original = QCheckBox(self.tr("Keep the original file after converting it"))
        self.keep_original.setVisible(False)
        for w in (self.why_label, self.layout_label, self.disk_label, self.keep_original):
            layout.addWidget(w)
        layout.addLayout(self._progress_row())
        layout.addLayout(self._button_row())

    def _label(self, text: str) -> QLabel:
        label = QLabel(text)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def _catalog_page(self) -> QWidget:
        page = QWidget()
        box = QVBoxLayout(page)
        self.catalog_note = self._label(self.tr("From {0}.").format(self.catalog.repo_id))
        self.catalog_table = FitTable()
        self.catalog_table.itemSelectionChanged.connect(self._on_selection)
        box.addWidget(self.catalog_note)
        box.addWidget(self.catalog_table)
        return page

    def _repo_page(self) -> QWidget:
        page = QWidget()
        box = QVBoxLayout(page)
        row = QHBoxLayout()
        self.repo_edit = QLineEdit()
        self.repo_edit.setAccessibleName(self.tr("Repository"))
        self.repo_edit.setPlaceholderText(self.tr("owner/name, or paste a huggingface.co URL"))
        self.repo_edit.returnPressed.connect(self.list_repo)
        self.list_button = QPushButton(self.tr("List GGUF files"))
        self.list_button.clicked.connect(self.list_repo)
        row.addWidget(self.repo_edit, 1)
        row.addWidget(self.list_button)
        self.repo_status = self._label("")
        self.repo_table = FitTable()
        self.repo_table.itemSelectionChanged.connect(self._on_selection)
        box.addLayout(row)
        box.addWidget(self.repo_status)
        box.addWidget(self.repo_table)
        return page

    def _progress_row(self) -> QVBoxLayout:
        box = QVBoxLayout()
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setVisible(False)
        self.progress_label = self._label("")
        box.addWidget(self.bar)
        box.addWidget(self.progress_label)
        return box

    def _button_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.folder_label = ElidedLabel()  # a long home folder must not widen the dialog
        self.folder_label.setText(self.tr("Saves to {0}").format(self.models_dir))
        self.folder_label.setStyleSheet("color: palette(mid);")
        self.download_button = QPushButton(self.tr("Download"))
        self.download_button.setDefault(True)
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button = QPushButton(self.tr("Cancel download"))
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.discard_button = QPushButton(self.tr("Discard the partial download"))
        self.discard_button.setVisible(False)
        self.discard_button.clicked.connect(self.discard)
        self.close_button = QPushButton(self.tr("Close"))
        self.close_button.clicked.connect(self.reject)
        row.addWidget(self.folder_label, 1)
        for button in (
            self.download_button,
            self.discard_button,
            self.cancel_button,
            self.close_button,
        ):
            row.addWidget(button)
        return row

    # --- the two tables ------------------------------------------------------------------
    def _show_catalog(self) -> None:
        rec, rows = cat.evaluate(self.catalog, self.machine)
        self.recommendation = rec
        choices = [Choice(self.catalog.repo_id, r.entry.file, r) for r in rows]
        best = next((c for c in choices if c.row.entry == rec.entry), None)
        self.catalog_table.show_choices(choices, best)
        if rec.entry is None:
            self.catalog_note.setText(rec.message)
            self.catalog_note.setStyleSheet(f"color: {BADGES['none'][1]}; font-weight: bold;")
        fallback = next((c for c in choices if c.row.entry == rec.smallest), None)
        self.catalog_table.select(best or fallback)

    def list_repo(self) -> None:
        """List the GGUF files of the repository typed or pasted in the field."""
        try:
            repo_id, wanted = parse_repo_ref(self.repo_edit.text())
        except DownloadError as exc:
            self.repo_status.setText(str(exc))
            return
        self.repo_status.setText(self.tr("Listing {0}…").format(repo_id))
        self.repo_status.setStyleSheet("")
        self.repo_table.show_choices([], None)
        self._clear_old_error()
        self.list_button.setEnabled(False)
        self._listing.start(
            lambda _r, _c: self.hub.list_gguf(repo_id),
            on_success=lambda models: self._on_listed(repo_id, wanted, models),
            on_failure=self._on_list_failed,
            name="list",
        )

    def _on_list_failed(self, message: str) -> None:
        self.list_button.setEnabled(True)
        self.repo_status.setText(message)
        self.repo_status.setStyleSheet(ERROR_STYLE)
        self.repo_table.show_choices([], None)

    def _clear_old_error(self) -> None:
        """A new attempt starts clean: no red message from the one before."""
        if self.state is DownloadState.FAILED:
            self.state = DownloadState.IDLE
            self.progress_label.setText("")
            self.progress_label.setStyleSheet("")
            self.download_button.setText(self.tr("Download"))

    def _on_listed(self, repo_id: str, wanted: str | None, models: list[GgufModel]) -> None:
        self._last_listing = (repo_id, wanted, models)
        self.list_button.setEnabled(True)
        entries = [cat.entry_for_file(m.name, m.size, m.quant) for m in models]
        loadable = [e for e, m in zip(entries, models, strict=True) if m.complete]
        rec, _ = cat.evaluate(loadable, self.machine)
        _, rows = cat.evaluate(entries, self.machine)
        choices = [
            Choice(repo_id, m.files[0].path, r, m) for m, r in zip(models, rows, strict=True)
        ]
        best = next((c for c in choices if c.row.entry == rec.entry), None)
        self.repo_table.show_choices(choices, best)
        found = (
            self.tr("{0}: {1} GGUF models.").format(repo_id, len(models))
            if models
            else self.tr("{0} has no GGUF files.").format(repo_id)
        )
        self.repo_status.setText(found + ("" if best or not models else " " + rec.message))
        picked = next(
            (
                c
                for c in choices
                if wanted and wanted in {c.path, c.model.name, *(f.path for f in c.model.files)}
            ),
            None,
        )
        self.repo_table.select(picked or best or (choices[0] if choices else None))

    def current_table(self) -> FitTable:
        return self.catalog_table if self.tabs.currentIndex() == 0 else self.repo_table

    def current_choice(self) -> Choice | None:
        return self.current_table().current()

    # --- the selected row: why, layout, disk ---------------------------------------------
    def _on_selection(self) -> None:
        if self.state.busy:
            return
        choice = self.current_choice()
        self.download_button.setEnabled(
            choice is not None and self._loadable(choice) and not self.probing
        )
        self._describe(choice)
        if choice is not None and choice.layout is None and not choice.header_note:
            self._check_header(choice)

    @staticmethod
    def _loadable(choice: Choice) -> bool:
        return choice.model is None or choice.model.complete

    def _describe(self, choice: Choice | None) -> None:
        if choice is None:
            for label in (self.why_label, self.layout_label, self.disk_label):
                label.setText("")
            self.keep_original.setVisible(False)
            return
        self.why_label.setText(self._why(choice))
        self.layout_label.setText(self._layout_text(choice))
        self.keep_original.setVisible(choice.layout == "legacy")
        self.disk_label.setText(self._disk_text(choice))
        self._show_discard(choice)
        self.download_button.setText(
            self.tr("Download") if choice.row.fits else self.tr("Download anyway")
        )

    def _why(self, choice: Choice) -> str:
        row, usable = choice.row, self.recommendation.usable_bytes
        why = cat.Recommendation(usable, row.entry, None, 0).why
        table = self.current_table()
        lead = "Recommended: " if choice is table.recommended else ""
        if not row.fits:
            return f"{row.entry.quant} does not fit: it {why}, {gb(row.missing_bytes)} missing."
        text = f"{lead}{row.entry.quant} {why}; it would run {row.plan.describe()}."
        if row.plan.fits_now is False:
            text += (
                " That is more than the memory free right now: close other programs "
                "before loading it."
            )
        return text

    def _layout_text(self, choice: Choice) -> str:
        if choice.layout == "legacy":
            return (
                f"This file uses an older layout; Parlor converts it after download and "
                f"needs {human_size(choice.extra_disk)} extra disk for a few minutes."
            )
        if choice.layout is not None:
            return ""
        return choice.header_note or "Checking the file's layout…"

    def _disk_text(self, choice: Choice) -> str:
        """The real arithmetic: what is still to fetch, the conversion's room, the margin."""
        size = choice.model.size if choice.model else choice.row.entry.size_bytes
        folder = next(
            (p for p in (self.models_dir, *self.models_dir.parents) if p.exists()), self.models_dir
        )
        try:
            free = self.disk_usage(folder).free
        except OSError:
            return f"The download is {human_size(size)}."
        kept = partial_bytes(self.models_dir, choice.files) if self.models_dir.exists() else 0
        extra = choice.extra_disk if choice.layout == "legacy" else 0
        needed = max(size - kept, 0) + extra
        text = f"The download is {human_size(size)}; {human_size(free)} free on that disk."
        if free >= needed + DISK_MARGIN:
            return text
        parts = [f"{human_size(needed - extra)} still to download"]
        if extra:
            parts.append(f"{human_size(extra)} to convert it")
        parts.append(f"{human_size(DISK_MARGIN)} Parlor keeps free")
        return (
            f"{text}  Not enough free disk space: it needs {human_size(needed + DISK_MARGIN)}"
            f" ({' + '.join(parts)})."
        )

    def _check_header(self, choice: Choice) -> None:
        """Read the header with a Range request: the layout, and the real layer count."""
        hub, repo, path = self.hub, choice.repo_id, choice.path
        self._headers.start(
            lambda _r, _c: hub.read_header(repo, path),
            on_success=lambda h: self._on_header(choice, h),
            on_failure=lambda m: self._on_header_failed(choice, m),
            name="header",
        )

    def _on_header(self, choice: Choice, header: GGUFHeader) -> None:
        choice.layout = moe_layout(header)
        if choice.layout == "legacy":
            choice.extra_disk = extra_disk_bytes(header)
        choice.row = self._refined_row(choice, header)
        for table in (self.catalog_table, self.repo_table):
            if choice in table.choices:
                table.refresh(table.choices.index(choice))
        if choice is self.current_choice():
            self._describe(choice)

    def _on_header_failed(self, choice: Choice, message: str) -> None:
        reason = message.removeprefix(f"{Path(choice.path).name}: ")
        choice.header_note = (
            f"Could not check the file's layout before downloading "
            f"({reason}); it is checked after the download."
        )
        if choice is self.current_choice():
            self._describe(choice)

    def _refined_row(self, choice: Choice, header: GGUFHeader) -> cat.Row:
        """With the header known: the real layer count, and for files outside the catalog a
        Max RAM of size + the KV cache and buffers of this context size."""
        entry = choice.row.entry
        if choice.model is not None:
            est = estimate_memory(header, self.n_ctx)
            entry = replace(
                entry, max_ram_bytes=entry.size_bytes + est.kv_bytes + est.compute_bytes
            )
        _, rows = cat.evaluate([entry], self.machine, n_layer=header.n_layer or None)
        row = rows[0]
        experts = plan_for(header, self.machine, self.n_ctx)  # MoE: experts in RAM instead
        if experts is not None and row.plan.mode == "partial":
            row = replace(row, plan=replace(row.plan, offload=experts))
        return row

    # --- download, then convert ----------------------------------------------------------
    def start_download(self) -> None:
        choice = self.current_choice()
        if choice is None or self.state.busy:
            return
        self._active = choice
        self._headers.drop()
        self._clear_old_error()
        self._set_busy(DownloadState.DOWNLOADING)
        repo, model, hub, dest = choice.repo_id, choice.model, self.hub, self.models_dir

        def work(report, cancel: threading.Event) -> Path:
            files = model or hub.file_info(repo, [choice.path])
            return download(
                repo,
                files,
                dest,
                hub=hub,
                cancel=cancel,
                progress=lambda p: report(p, p.phase != "downloading"),
            )[0]

        self._work.start(
            work,
            on_success=self._on_downloaded,
            on_failure=self._on_failed,
            on_progress=self._on_download_progress,
            on_cancel=self._on_cancelled,
            name="download",
        )

    def _set_busy(self, state: DownloadState) -> None:
        self.state = state
        busy = state.busy
        self.bar.setVisible(busy or self.bar.isVisible())
        for w in (self.download_button, self.tabs, self.keep_original):
            w.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        if busy:
            self.discard_button.setVisible(False)
        self.bar.setRange(0, 1000)
        self.progress_label.setStyleSheet("")
        converting = state is DownloadState.CONVERTING
        self.cancel_button.setText(
            self.tr("Cancel conversion") if converting else self.tr("Cancel download")
        )
        if busy:
            self.bar.setValue(0)

    def _on_download_progress(self, p: Progress) -> None:
        self.bar.setValue(int(1000 * p.fraction))
        amounts = f"{human_size(p.done)} of {human_size(p.total)}"
        if p.note:  # retrying or waiting: why, the next attempt, the bound
            self.progress_label.setText(
                f"{PHASES.get(p.phase, p.phase)}: {p.file} ({amounts}). {p.note}"
            )
            return
        if p.phase in PHASES:
            self.progress_label.setText(f"{PHASES[p.phase]}: {p.file} ({amounts})…")
            return
        parts = [f"Downloading {p.file}: {amounts}", rate(p.speed), time_left(p.eta)]
        self.progress_label.setText(" · ".join(x for x in parts if x))

    def _on_downloaded(self, path: Path) -> None:
        try:
            header = read_header(path)
        except GGUFError as exc:
            self._on_failed(
                f"{path.name} was downloaded and verified, but it is not a GGUF "
                f"model Parlor can read: {exc}"
            )
            return
        if moe_layout(header) != "legacy":
            self._finish(path, header, converted=False)
            return
        self._set_busy(DownloadState.CONVERTING)
        self._meter = ConversionMeter()
        self.progress_label.setText(
            self.tr("Converting {0} to the current layout…").format(path.name)
        )
        work = conversion_work(path, self.keep_original.isChecked(), self.verify)
        self._work.start(
            work,
            on_success=lambda r: self._finish(r.dst, header, converted=True),
            on_failure=self._on_failed,
            on_progress=self._on_convert_progress,
            on_cancel=self._on_cancelled,
            name="convert",
        )

    def _on_convert_progress(self, report: tuple[str, int, int]) -> None:
        show_conversion_progress(self.bar, self.progress_label, self._meter, report)

    def _finish(self, path: Path, header: GGUFHeader, converted: bool) -> None:
        entry = self._active.row.entry if self._active else None
        n_gpu = n_cpu_moe = 0
        if entry is not None:
            plan = cat.plan_run(entry, self.machine, n_layer=header.n_layer or None)
            n_gpu = plan.n_gpu_layers if plan.mode != "none" else 0
            experts = plan_for(header, self.machine, self.n_ctx)  # what the picker showed
            if plan.mode == "partial" and experts is not None:
                n_gpu, n_cpu_moe = experts.n_gpu_layers, experts.n_cpu_moe
        self.result_path = Path(path)
        self._set_busy(DownloadState.READY)
        self.bar.setValue(1000)
        done = "downloaded, verified and converted" if converted else "downloaded and verified"
        in_ram = f", experts of {n_cpu_moe} layers in RAM" if n_cpu_moe else ""
        self.progress_label.setText(
            f"{Path(path).name} is {done}. GPU layers to use: "
            f"{'all' if n_gpu < 0 else n_gpu}{in_ram}."
        )
        self.download_button.setText(self.tr("Download"))
        self.model_ready.emit(str(path), n_gpu, n_cpu_moe)

    def _on_failed(self, message: str) -> None:
        self._set_busy(DownloadState.FAILED)
        self.progress_label.setText(message)
        self.progress_label.setStyleSheet(ERROR_STYLE)
        self.download_button.setText(self.tr("Try again"))
        self._show_discard(self._active)

    def _on_cancelled(self, message: str) -> None:
        was_download = self.state is DownloadState.DOWNLOADING
        self._set_busy(DownloadState.CANCELLED)
        self.progress_label.setText(message)
        self.download_button.setText(
            self.tr("Resume download") if was_download else self.tr("Convert again")
        )
        self._show_discard(self._active)

    def _show_discard(self, choice: Choice | None) -> None:
        """Offered whenever a `.part` of this choice is on disk and nothing is running."""
        idle = not self.state.busy
        kept = (
            partial_bytes(self.models_dir, choice.files)
            if choice is not None and self.models_dir.exists()
            else 0
        )
        self.discard_button.setVisible(idle and kept > 0)
        if kept:
            self.discard_button.setToolTip(
                self.tr("Delete the {0} downloaded so far").format(human_size(kept))
            )

    def discard(self) -> None:
        """Delete the partial download of the selected (or last) choice; a part another window
        is writing is left alone, and that is said."""
        ended = self.state in (DownloadState.CANCELLED, DownloadState.FAILED)
        choice = self._active if ended else None
        choice = choice or self.current_choice()
        if choice is None:
            return
        try:
            freed = discard_partial(self.models_dir, choice.files)
        except DownloadError as exc:
            self.progress_label.setText(str(exc))
            self.progress_label.setStyleSheet(ERROR_STYLE)
            return
        self.state = DownloadState.IDLE
        self.progress_label.setStyleSheet("")
        self.progress_label.setText(
            self.tr("Discarded the partial download ({0}).").format(human_size(freed))
        )
        self.download_button.setText(self.tr("Download"))
        self.bar.setVisible(False)
        self._show_discard(choice)
        self._describe(self.current_choice())

    def cancel(self) -> None:
        """Cancel the download (its .part is kept to resume) or the conversion."""
        if self.state.busy:
            self.cancel_button.setEnabled(False)
            self.progress_label.setText(self.tr("Cancelling…"))
            self._work.cancel()

    def done(self, result: int) -> None:
        """Closing stops every job and waits for it, so no thread outlives the dialog."""
        for slot in (self._work, self._headers, self._listing):
            slot.shutdown()
        if self._machine_probe is not None:
            self._machine_probe.shutdown()
        super().done(result)
