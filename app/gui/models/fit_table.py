"""The quant picker's table: one row per choice (a catalog entry or a hub file), with the
fit badge, how it would run, whether it fits right now, and the machine summary above it.
Only shows what `catalog.evaluate` decided; used by the download dialog and the first-run
guide."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.core.appdata.llama_runtime import summary as runtime_summary
from app.core.appdata.machine import Machine
from app.core.hub import catalog as cat
from app.core.hub.downloads import GgufModel, RemoteFile, human_size
from app.gui.plain_text import plain_tip

COLUMNS = ("Quant", "Size", "Needs", "Fit", "How it would run", "Right now", "About")
FIT_COLUMN, ABOUT_COLUMN = 3, 6
BADGES = {  # plan mode -> (text, text colour, background)
    "gpu": ("Fits", "#1b5e20", "#c8e6c9"),
    "partial": ("Partly on GPU", "#0d47a1", "#bbdefb"),
    "cpu": ("CPU only", "#33691e", "#e6efd8"),
    "none": ("Doesn't fit", "#b71c1c", "#ffcdd2"),
}
WARN = ("#7a5200", "#ffecb3")


@dataclass
class Choice:
    """One row of either table: what to fetch, how it fits, what its header said."""

    repo_id: str
    path: str  # the file (the first part of a split model) whose header is checked
    row: cat.Row
    model: GgufModel | None = None  # None: a catalog entry, its metadata fetched at download
    layout: str | None = None  # "legacy", "merged", "dense" once the header was read
    extra_disk: int = 0
    header_note: str = ""

    @property
    def files(self) -> list[RemoteFile]:
        """The files this choice downloads; their names are all a `.part` needs."""
        if self.model is not None:
            return list(self.model.files)
        return [RemoteFile(self.path, self.row.entry.size_bytes)]


def gb(num_bytes: int, approximate: bool = False) -> str:
    """Card style ('~19 GB') for model sizes; small files (other repositories) in MB."""
    if num_bytes < 100_000_000:
        return human_size(num_bytes)
    return f"{'~' if approximate else ''}{cat.format_gb(num_bytes)} GB"


def machine_summary(machine: Machine, usable: int) -> str:
    """'31.9 GB RAM (20.1 GB free now) · RTX 4060: 8.6 GB VRAM (7.9 GB free)' and the budget."""
    parts = [
        f"{gb(machine.ram_total)} RAM"
        + (f" ({gb(machine.ram_available)} free now)" if machine.ram_available is not None else "")
    ]
    for gpu in machine.gpus:
        if not gpu.dedicated:
            parts.append(f"{gpu.name}: shares the RAM (up to {gb(gpu.total_bytes)})")
            continue
        free = f" ({gb(gpu.free_bytes)} free)" if gpu.free_bytes is not None else ""
        parts.append(f"{gpu.name}: {gb(gpu.total_bytes)} VRAM{free}")
    if not machine.gpus and not machine.can_offload:
        # the probes miss some cards (an Intel GPU, NVIDIA without NVML) that llama.cpp uses
        parts.append("no GPU found, models run on the CPU")
    if machine.runtime is not None:  # seeing a card is not using it: say what llama.cpp can
        parts.append(f"llama.cpp: {runtime_summary(machine.runtime)}")
    plus = ", plus the GPUs' own memory" if machine.offload_vram else ""
    return (
        "This machine: " + " · ".join(parts) + f"\nParlor can give a model up to "
        f"{gb(usable)} (RAM less what the system keeps{plus})."
    )


def _item(text: str, tooltip: str = "") -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)
    item.setToolTip(plain_tip(tooltip or text))  # file names come from the hub
    return item


def row_cells(choice: Choice, recommended: bool) -> list[QTableWidgetItem]:
    row, entry = choice.row, choice.row.entry
    quant = _item(entry.quant + ("  ★ recommended" if recommended else ""), entry.name)
    if recommended:
        font = QFont()
        font.setBold(True)
        quant.setFont(font)
    text, fg, bg = BADGES[row.plan.mode]
    badge = _item(text)
    badge.setForeground(QColor(fg))
    badge.setBackground(QColor(bg))
    badge.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
    how = row.plan.describe() if row.fits else f"{gb(row.missing_bytes)} missing"
    now = _item("")
    if row.fits and row.plan.fits_now is not None:
        now = _item(
            "enough free" if row.plan.fits_now else "⚠ close other apps",
            "Fits in the memory free right now"
            if row.plan.fits_now
            else "More than the memory free right now: close other programs first",
        )
        if not row.plan.fits_now:
            now.setForeground(QColor(WARN[0]))
            now.setBackground(QColor(WARN[1]))
    about = entry.use_case or _file_label(choice)
    return [
        quant,
        _item(gb(entry.size_bytes, entry.approximate)),
        _item(gb(entry.max_ram_bytes, entry.approximate)),
        badge,
        _item(how),
        now,
        _item(about, f"{about}\n{choice.path}"),
    ]


def _file_label(choice: Choice) -> str:
    model = choice.model
    if model is None or model.split_count == 1:
        return choice.path
    missing = "" if model.complete else f", only {len(model.files)} found"
    return f"{model.name} ({model.split_count} parts{missing})"


class FitTable(QTableWidget):
    """A table of choices, one row each, with the recommended one marked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.choices: list[Choice] = []
        self.recommended: Choice | None = None
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(ABOUT_COLUMN, QHeaderView.ResizeMode.Stretch)

    def show_choices(self, choices: list[Choice], recommended: Choice | None) -> None:
        self.choices, self.recommended = choices, recommended
        self.setRowCount(len(choices))
        for index in range(len(choices)):
            self.refresh(index)

    def refresh(self, index: int) -> None:
        choice = self.choices[index]
        for column, item in enumerate(row_cells(choice, choice is self.recommended)):
            self.setItem(index, column, item)

    def current(self) -> Choice | None:
        rows = self.selectionModel().selectedRows()
        return self.choices[rows[0].row()] if rows else None

    def select(self, choice: Choice | None) -> None:
        if choice is not None:
            self.selectRow(self.choices.index(choice))
