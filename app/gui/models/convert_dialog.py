"""Converting an old split-expert MoE GGUF from the GUI, in the background.

"Open GGUF…" calls `open_gguf(path, parent)`, the window's side of the one opening path
(`app.core.chat.open_model`): the core checks the header; a file in the current layout is
ready at once; a legacy one opens `ConvertDialog`, which asks whether to keep the original,
converts on a worker through the core (which records the conversion in a downloaded file's
manifest; the main window stays usable, the dialog is not modal), and says `converted(path)`.
The download dialog reuses `conversion_work` and `conversion_text` for its own progress area.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QProgressBar,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.core.chat.open_model import ModelCheck, check_model, convert_for_opening
from app.core.convert.moe import extra_disk_bytes
from app.core.convert.plan import describe_group, plan_conversion
from app.core.gguf.header import GGUFHeader
from app.core.hub.downloads import human_size
from app.gui.models.jobs import JobSlot, rate, time_left
from app.gui.models.progress_job import ProgressJob
from app.gui.models.states import ConversionState

Verify = Callable[[Path], object]


def load_check(path: Path) -> bool:
    """The real check before a converted file replaces anything: llama.cpp loads it in a
    child process and generates a few tokens."""
    from app.core.engine.load_check import load_and_generate

    load_and_generate(path)
    return True


def conversion_work(path: Path, keep_original: bool, verify: Verify | None):
    """The blocking conversion as a Job's work: reports (stage, done, total), returns the
    ConvertResult. OpenError's message is what the user reads."""

    def work(report, cancel: threading.Event):
        def progress(stage: str, done: int, total: int) -> None:
            report((stage, done, total), stage not in ("converting", "recording") or done >= total)

        return convert_for_opening(
            check_model(path),
            progress=progress,
            cancel=cancel,
            keep_original=keep_original,
            verify=verify,
        )

    return work


class ConversionMeter:
    """Speed and time left from the (stage, done, total) reports of one conversion."""

    def __init__(self) -> None:
        self.started: float | None = None

    def text(self, stage: str, done: int, total: int) -> str:
        if stage == "verifying":
            return "Checking the converted file (llama.cpp loads it and writes a few words)…"
        if stage == "recording":
            return "Recording the converted file's checksum, so it is never downloaded again…"
        if stage != "converting":
            return "Converting…"
        now = time.monotonic()
        self.started = self.started or now
        speed = done / (now - self.started) if now > self.started else 0.0
        left = time_left((total - done) / speed) if speed else ""
        parts = [f"Converting: {human_size(done)} of {human_size(total)}", rate(speed), left]
        return " · ".join(p for p in parts if p)


def show_conversion_progress(
    bar: QProgressBar, label: QLabel, meter: ConversionMeter, report: tuple[str, int, int]
) -> None:
    """The bar and line of a conversion; the load check has no fraction, so the bar is busy."""
    stage, done, total = report
    if stage == "verifying":
        bar.setRange(0, 0)
    else:
        bar.setRange(0, 1000)
        bar.setValue(int(1000 * done / total) if total else 0)
    label.setText(meter.text(stage, done, total))


def conversion_text(header: GGUFHeader) -> str:
    """What the user is told before a conversion, with the disk it needs."""
    lines = [
        f"{header.name} uses an older mixture-of-experts layout that current llama.cpp "
        "cannot load. Parlor converts it (the quantized data is copied unchanged) and needs "
        f"{human_size(extra_disk_bytes(header))} of extra disk for a few minutes."
    ]
    lines += ["Mixed types: " + describe_group(g) for g in plan_conversion(header).mixed_groups]
    return "\n".join(lines)


class ConvertDialog(QDialog):
    """Ask keep/remove original, convert in the background, say `converted(path)`."""

    converted = Signal(str)

    def __init__(
        self,
        path: str | Path,
        header: GGUFHeader,
        parent: QWidget | None = None,
        verify: Verify | None = load_check,
    ) -> None:
        super().__init__(parent)
        self.path, self.verify = Path(path), verify
        self.state = ConversionState.ASKING
        self._slot = JobSlot()
        self._meter = ConversionMeter()
        self.setWindowTitle(self.tr("Convert {0}").format(self.path.name))
        self._build(header)

    def _build(self, header: GGUFHeader) -> None:
        layout = QVBoxLayout(self)
        self.intro = QLabel(conversion_text(header))
        self.intro.setTextFormat(Qt.TextFormat.PlainText)  # names from the GGUF header
        self.intro.setWordWrap(True)
        layout.addWidget(self.intro)
        backup = self.path.with_name(f"{self.path.stem}.legacy.gguf").name
        self.keep_button = QRadioButton(self.tr("Keep the original as {0}").format(backup))
        self.remove_button = QRadioButton(
            self.tr("Remove the original once the converted file has loaded")
        )
        self.keep_button.setChecked(True)
        layout.addWidget(self.keep_button)
        layout.addWidget(self.remove_button)
        self.bar = QProgressBar()  # shown from the start: the dialog keeps its size
        self.bar.setRange(0, 1000)
        layout.addWidget(self.bar)
        self.status = QLabel(
            self.tr("The original is not changed until the converted file has loaded.")
        )
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # errors quote file names
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        self.buttons = QDialogButtonBox()
        self.convert_button = self.buttons.addButton(
            self.tr("Convert"), QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.convert_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(520)

    def start(self) -> None:
        self.state = ConversionState.CONVERTING
        for w in (self.convert_button, self.keep_button, self.remove_button):
            w.setEnabled(False)
        self.status.setText(self.tr("Converting…"))
        work = conversion_work(self.path, self.keep_button.isChecked(), self.verify)
        self._slot.start(
            work,
            on_success=self._on_done,
            on_failure=self._on_failed,
            on_progress=self._on_progress,
            on_cancel=self._on_cancelled,
            name="convert",
        )

    def _on_progress(self, report: tuple[str, int, int]) -> None:
        show_conversion_progress(self.bar, self.status, self._meter, report)

    def _on_done(self, result) -> None:
        self.state = ConversionState.DONE
        self.bar.setRange(0, 1000)
        self.bar.setValue(1000)
        self.status.setText(result.summary())
        self.cancel_button.setText(self.tr("Close"))
        self.converted.emit(str(result.dst))
        self.accept()

    def _on_failed(self, message: str) -> None:
        self.state = ConversionState.FAILED
        self.bar.setRange(0, 1000)
        self.status.setText(
            self.tr("The conversion failed; the original file is unchanged.\n{0}").format(message)
        )
        self.cancel_button.setText(self.tr("Close"))

    def _on_cancelled(self, message: str) -> None:
        self.state = ConversionState.CANCELLED
        self.bar.setRange(0, 1000)
        self.status.setText(message)
        self.cancel_button.setText(self.tr("Close"))
        self.cancel_button.setEnabled(True)

    def _on_cancel_clicked(self) -> None:
        if self.state is ConversionState.CONVERTING:
            self.cancel_button.setEnabled(False)
            self.status.setText(self.tr("Cancelling…"))
            self._slot.cancel()
        else:
            self.reject()

    def reject(self) -> None:
        """Closing the window while converting cancels; the original stays untouched."""
        if self.state is ConversionState.CONVERTING:
            self._slot.cancel()
            return
        super().reject()

    def done(self, result: int) -> None:
        self._slot.shutdown()
        super().done(result)


class GgufOpener(QObject):
    """The answer to "Open GGUF…": `ready(path)` with the file to load (converted first when
    it uses the old layout), or `failed(message)`, or `cancelled()`."""

    ready = Signal(str)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dialog: ConvertDialog | None = None
        self.job: ProgressJob | None = None  # the header read, off the GUI thread


def open_gguf(
    path: str | Path,
    parent: QWidget,
    verify: Verify | None = load_check,
) -> GgufOpener:
    """Check `path` and hand back the file to load through the returned object's signals.

    The header is read off the GUI thread (a big or strange file takes seconds, a FIFO
    forever), with a progress dialog and Cancel once it takes a while. The signals come
    from the event loop, never during this call, so connect them first:
    `open_gguf(path, self).ready.connect(self.load)`.
    """
    opener = GgufOpener(parent)
    opener.job = ProgressJob(
        parent,
        opener.tr("Open a model"),
        opener.tr("Reading the header of {0}…").format(Path(path).name),
    )
    opener.job.start(
        lambda _report, _cancel: check_model(path),
        on_success=lambda check: _checked(opener, check, parent, verify),
        on_failure=lambda message: opener.failed.emit(
            message if str(path) in message else f"Cannot open {path}: {message}"
        ),
        on_cancel=lambda _message: opener.cancelled.emit(),
        name="gguf-header",
    )
    return opener


def _checked(opener: GgufOpener, check: ModelCheck, parent: QWidget, verify: Verify | None) -> None:
    if not check.needs_conversion:
        opener.ready.emit(str(check.path))
        return
    dialog = ConvertDialog(check.path, check.header, parent, verify)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.converted.connect(opener.ready)
    dialog.rejected.connect(opener.cancelled)
    opener.dialog = dialog
    dialog.show()
