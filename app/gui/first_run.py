"""The first-run guide: this machine's memory, the model that fits, and a way to get it.

Shown once; finishing or skipping it sets `first_run_done` so it never returns.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from app.core.appdata.machine import Machine
from app.core.hub.catalog import evaluate, load_catalog
from app.gui.models.download_dialog import machine_summary
from app.gui.models.machine_probe import MachineProbe

DOWNLOAD, OPEN, SKIP = "download", "open", "skip"


class FirstRunDialog(QDialog):
    chosen = Signal(str)  # DOWNLOAD | OPEN | SKIP

    def __init__(self, machine: Machine | None, parent=None) -> None:
        """`machine` None: the probe is still running; `set_machine` fills the advice in."""
        super().__init__(parent)
        self.setWindowTitle(self.tr("Welcome to Parlor"))
        self.setMinimumWidth(560)
        self.catalog = load_catalog()
        lay = QVBoxLayout(self)
        intro = QLabel(
            self.tr(
                "<h2>Welcome to Parlor</h2>Three steps: get a model, meet a character, chat. "
                "Everything runs on this computer."
            )
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.summary = QLabel(self.tr("Checking this computer's memory and graphics cards…"))
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        self.recommendation = QLabel()
        self.recommendation.setWordWrap(True)
        lay.addWidget(self.recommendation)
        lay.addWidget(QLabel(self.tr("Then say hello to Wren, who is waiting in the inn.")))
        row = QHBoxLayout()
        self.buttons = {}
        for key, text in (
            (DOWNLOAD, self.tr("Download the recommended model…")),
            (OPEN, self.tr("Open a GGUF file I have…")),
            (SKIP, self.tr("Skip for now")),
        ):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, k=key: self._choose(k))
            row.addWidget(button)
            self.buttons[key] = button
        self.buttons[DOWNLOAD].setDefault(True)
        self.buttons[DOWNLOAD].setEnabled(False)
        lay.addLayout(row)
        if machine is not None:
            self.set_machine(machine)

    def set_machine(self, machine: Machine) -> None:
        rec, _rows = evaluate(self.catalog, machine, n_layer=self.catalog.n_layer)
        self.summary.setText(machine_summary(machine, rec.usable_bytes))
        self.recommendation.setText(self._advice(self.catalog.name, rec))
        self.buttons[DOWNLOAD].setEnabled(rec.entry is not None)
        self._fit()

    def _fit(self) -> None:
        """Grow to the advice: it comes after the guide is shown, and a dialog keeps the
        height it opened with, cutting the wrapped lines off."""
        layout = self.layout()
        layout.activate()
        height = layout.totalHeightForWidth(self.width())
        if height > self.height():
            self.resize(self.width(), height)

    def _advice(self, model_name: str, rec) -> str:
        if rec.entry is None:
            return self.tr(
                "{0} is too large for this computer ({1}). Open a smaller GGUF "
                "model instead, or connect to a server."
            ).format(model_name, rec.message)
        label = (
            rec.entry.name
            if rec.entry.name == rec.entry.quant
            else f"{rec.entry.name} ({rec.entry.quant})"
        )
        return self.tr("Recommended: <b>{0}</b> of {1} — {2}.").format(label, model_name, rec.why)

    def _choose(self, key: str) -> None:
        self.chosen.emit(key)
        self.accept()


def maybe_first_run(window, read_machine) -> FirstRunDialog | None:
    """Open the guide over `window` unless it was done before or a model is already set.

    `read_machine` (a 1.5 s device probe) runs off the GUI thread; the guide opens at once
    and gives its advice when the answer comes."""
    settings = window.ctx.settings
    if settings.first_run_done or settings.model_path:
        return None
    dialog = FirstRunDialog(None, window)
    dialog.probe = MachineProbe(read_machine, dialog)
    dialog.probe.ready.connect(dialog.set_machine)
    dialog.finished.connect(lambda _result: dialog.probe.shutdown())
    dialog.probe.start()
    actions = {
        DOWNLOAD: window.models.show_download,
        OPEN: window.models.choose_file,
        SKIP: lambda: None,
    }

    def finish(key: str) -> None:
        settings.first_run_done = True
        window.ctx.save_settings()
        actions[key]()

    dialog.chosen.connect(finish)
    dialog.open()
    return dialog
