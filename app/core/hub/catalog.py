"""Model catalogs and the rule that picks the right quant for a machine.

The rule is exact so that users and tests can rely on it (GB = 10^9 bytes, as on model cards):

    usable = total RAM - max(2 GB, 10% of total RAM) + dedicated VRAM llama.cpp can use
             (no VRAM on Apple Silicon, where the GPU's memory is the RAM; none when the
             bundled llama.cpp enumerates no GPU device, whatever cards the machine has)
    an entry fits when its "Max RAM required" <= usable ("~19 GB" reads as 19)
    recommended = the fitting entry with the largest size; among equal sizes, the one whose
                  use case says "recommended" (and not "not recommended")

How an entry would run (all on the GPU, N of M layers, CPU only) is an estimate on top of that,
and so is the softer warning about the memory free right now.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.core.appdata.machine import Machine
from app.core.appdata.resources import resources_dir
from app.core.hub.offload import OffloadPlan

GB = 1_000_000_000
DEFAULT_CATALOG = "mistraltrix-4x9b.json"
FALLBACK_N_LAYER = 32  # when neither the GGUF nor the catalog says; a 7B-class model's depth
CONTEXT_OVERHEAD = 2 * GB  # "Max RAM = size + 2 GB" on cards: about a 4k context at this size

_SIZE = re.compile(r"^\s*(~)?\s*(\d+(?:\.\d+)?)\s*(?:GB)?\s*$", re.IGNORECASE)


def parse_gb(text: str | float | int) -> tuple[int, bool]:
    """'~19 GB' -> (19_000_000_000, True): bytes and whether the card marked it approximate."""
    if isinstance(text, (int, float)):
        return int(Decimal(str(text)) * GB), False
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size in GB: {text!r}")
    return int(Decimal(match.group(2)) * GB), bool(match.group(1))


def format_gb(num_bytes: int | float) -> str:
    """19e9 -> '19', 22.43e9 -> '22.4'."""
    text = f"{num_bytes / GB:.1f}"
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Entry:
    name: str
    quant: str
    bits: int | None
    size_bytes: int
    max_ram_bytes: int
    use_case: str
    file: str
    approximate: bool = False

    @property
    def card_recommends(self) -> bool:
        text = self.use_case.lower().replace("not recommended", "")
        return "recommended" in text


@dataclass(frozen=True)
class Catalog:
    name: str
    repo_id: str
    entries: tuple[Entry, ...]
    n_layer: int | None = None
    n_layer_estimate: int | None = None

    def by_quant(self, quant: str) -> Entry | None:
        return next((e for e in self.entries if e.quant.upper() == quant.upper()), None)

    def by_file(self, file: str) -> Entry | None:
        return next((e for e in self.entries if e.file == file), None)


def _entry(row: dict[str, Any]) -> Entry:
    size, size_approx = parse_gb(row["size"])
    max_ram, ram_approx = parse_gb(row["max_ram"])
    return Entry(
        row["name"],
        row["quant"],
        row.get("bits"),
        size,
        max_ram,
        row.get("use_case", ""),
        row["file"],
        size_approx or ram_approx,
    )


def load_catalog(path: Path | str | None = None) -> Catalog:
    path = Path(path) if path else resources_dir() / "catalog" / DEFAULT_CATALOG
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return Catalog(
        name=data["name"],
        repo_id=data["repo_id"],
        entries=tuple(_entry(row) for row in data["quants"]),
        n_layer=data.get("n_layer"),
        n_layer_estimate=data.get("n_layer_estimate"),
    )


def quant_bits(quant: str | None) -> int | None:
    """Q4_K_M -> 4, IQ2_XS -> 2, BF16 -> 16; None when the name says nothing."""
    match = re.search(r"(\d+)", quant or "")
    return int(match.group(1)) if match else None


def entry_for_file(
    file: str, size_bytes: int, quant: str | None, overhead_bytes: int = CONTEXT_OVERHEAD
) -> Entry:
    """An entry for any GGUF found on the hub: Max RAM = size + context overhead."""
    return Entry(
        file, quant or "?", quant_bits(quant), size_bytes, size_bytes + overhead_bytes, "", file
    )


# ---------------------------------------------------------------------------------------------
# The rule


def reserved_bytes(ram_total: int) -> int:
    return max(2 * GB, math.ceil(ram_total / 10))


def usable_bytes(machine: Machine, *, gpu_offload: bool = True) -> int:
    """RAM less what the OS keeps, plus the dedicated VRAM llama.cpp can use."""
    vram = machine.offload_vram if gpu_offload else 0
    return machine.ram_total - reserved_bytes(machine.ram_total) + vram


def fits(entry: Entry, usable: int) -> bool:
    return entry.max_ram_bytes <= usable


@dataclass(frozen=True)
class Recommendation:
    usable_bytes: int
    entry: Entry | None  # None: nothing fits
    smallest: Entry | None  # the entry nearest to fitting, when nothing fits
    missing_bytes: int  # how much more memory the smallest needs; 0 when something fits

    @property
    def why(self) -> str:
        """'needs 19 GB, this machine can give 22.4 GB'."""
        target = self.entry or self.smallest
        if target is None:
            return "the catalog is empty"
        need, have = format_gb(target.max_ram_bytes), format_gb(self.usable_bytes)
        if need == have and target.max_ram_bytes != self.usable_bytes:
            have = f"{self.usable_bytes / GB:.2f}"  # "needs 22.7, can give 22.7" reads wrong
        return f"needs {need} GB, this machine can give {have} GB"

    @property
    def message(self) -> str:
        if self.entry is not None:
            return f"Recommended: {self.entry.quant} ({self.entry.file}): {self.why}."
        if self.smallest is None:
            return "The catalog is empty."
        return (
            f"Nothing fits this machine. The smallest, {self.smallest.quant} "
            f"({self.smallest.file}), {self.why}: "
            f"{format_gb(self.missing_bytes)} GB missing."
        )


def recommend(
    entries: Iterable[Entry], machine: Machine, *, gpu_offload: bool = True
) -> Recommendation:
    entries = list(entries)
    usable = usable_bytes(machine, gpu_offload=gpu_offload)
    fitting = [e for e in entries if fits(e, usable)]
    if fitting:
        best = max(fitting, key=lambda e: (e.size_bytes, e.card_recommends))
        return Recommendation(usable, best, None, 0)
    if not entries:
        return Recommendation(usable, None, None, 0)
    smallest = min(entries, key=lambda e: (e.max_ram_bytes, e.size_bytes))
    return Recommendation(usable, None, smallest, smallest.max_ram_bytes - usable)


# ---------------------------------------------------------------------------------------------
# How an entry would run


@dataclass(frozen=True)
class RunPlan:
    mode: str  # "gpu" (all layers), "partial", "cpu" or "none" (does not fit at all)
    gpu_layers: int  # N of the model's n_layer blocks on the GPU
    n_layer: int
    layers_estimated: bool  # n_layer guessed, not read from the GGUF or the catalog
    fits_now: bool | None  # fits in the RAM + VRAM free right now; None when unknown
    cpu_only_build: bool = False  # the bundled llama.cpp has no usable GPU backend
    offload: OffloadPlan | None = None  # a MoE's expert split, when it beats whole layers
    gpu_did_not_start: bool = False  # the build has a GPU backend that found no GPU

    @property
    def n_gpu_layers(self) -> int:
        """The llama.cpp setting for this plan (-1: everything, output layer included)."""
        return -1 if self.mode == "gpu" else self.gpu_layers

    def describe(self) -> str:
        layers = f"{'~' if self.layers_estimated else ''}{self.n_layer}"
        if self.mode == "partial" and self.offload is not None:
            return f"partly on the GPU: {self.offload.describe()}"
        return {
            "gpu": "fully on the GPU",
            "partial": f"partly on the GPU ({self.gpu_layers} of {layers} layers)",
            "cpu": self._on_the_cpu(),
            "none": "not at all",
        }[self.mode]

    def _on_the_cpu(self) -> str:
        if self.gpu_did_not_start:  # why is on the machine line (llama_runtime.summary)
            return "on the CPU: this build's GPU backend found no GPU"
        if self.cpu_only_build:
            return "on the CPU: this build runs on the CPU only"
        return "on the CPU only"


def plan_run(
    entry: Entry,
    machine: Machine,
    *,
    n_layer: int | None = None,
    n_layer_estimate: int | None = None,
    gpu_offload: bool = True,
) -> RunPlan:
    """Where the layers would go. Each of n_layer blocks, plus the output layer, is taken as
    an equal share of Max RAM; the GPU takes as many blocks as its budget holds."""
    estimated = n_layer is None
    layers = n_layer or n_layer_estimate or FALLBACK_N_LAYER
    fits_now = _fits_now(entry, machine)
    cpu_build = machine.runtime is not None and not machine.can_offload
    failed = cpu_build and bool(machine.runtime and machine.runtime.gpu_problems)
    if not fits(entry, usable_bytes(machine, gpu_offload=gpu_offload)):
        return RunPlan("none", 0, layers, estimated, fits_now, cpu_build, gpu_did_not_start=failed)
    budget = machine.gpu_budget if gpu_offload else 0
    if budget >= entry.max_ram_bytes:
        return RunPlan("gpu", layers, layers, estimated, fits_now, cpu_build)
    on_gpu = min(layers, budget * (layers + 1) // entry.max_ram_bytes)
    mode = "partial" if on_gpu > 0 else "cpu"
    return RunPlan(mode, on_gpu, layers, estimated, fits_now, cpu_build, gpu_did_not_start=failed)


def _fits_now(entry: Entry, machine: Machine) -> bool | None:
    if machine.ram_available is None:
        return None
    vram_free = machine.offload_free_vram
    return entry.max_ram_bytes <= machine.ram_available + vram_free


@dataclass(frozen=True)
class Row:
    entry: Entry
    fits: bool
    missing_bytes: int
    plan: RunPlan


def evaluate(
    catalog: Catalog | Sequence[Entry],
    machine: Machine,
    *,
    n_layer: int | None = None,
    gpu_offload: bool = True,
) -> tuple[Recommendation, list[Row]]:
    """The recommendation and one row per entry, for tables (CLI and dialog alike)."""
    if isinstance(catalog, Catalog):
        entries = list(catalog.entries)
        n_layer = n_layer or catalog.n_layer
        estimate = catalog.n_layer_estimate
    else:
        entries, estimate = list(catalog), None
    rec = recommend(entries, machine, gpu_offload=gpu_offload)
    rows = [
        Row(
            e,
            fits(e, rec.usable_bytes),
            max(0, e.max_ram_bytes - rec.usable_bytes),
            plan_run(
                e, machine, n_layer=n_layer, n_layer_estimate=estimate, gpu_offload=gpu_offload
            ),
        )
        for e in entries
    ]
    return rec, rows
