"""`parlor recommend [--ram GB] [--vram GB] [--json]`: which quant of the default model fits."""

from __future__ import annotations

import argparse
import json
import sys

from app.core.appdata.machine import GB, Machine, describe, machine_from_sizes, read_machine
from app.core.hub import catalog as cat


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recommend",
        help="show which quant of the default model fits this machine",
        description="Print the default model's quants with whether and how each would run, "
        "and the recommended one. GB = 10^9 bytes.",
    )
    parser.add_argument(
        "--ram", type=_gb, metavar="GB", help="total RAM to assume instead of reading it"
    )
    parser.add_argument(
        "--vram",
        type=_gb,
        metavar="GB",
        help="dedicated GPU memory to assume instead of probing (0: no GPU)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def _gb(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"not a size in GB: {text}")
    return value


def machine_for(ram_gb: float | None, vram_gb: float | None) -> Machine:
    """The probed machine with what the user gave in place of the probes."""
    if ram_gb is not None and vram_gb is not None:
        return machine_from_sizes(ram_gb, vram_gb)
    return read_machine().with_overrides(ram_gb, vram_gb)


def run(args: argparse.Namespace) -> int:
    machine = machine_for(args.ram, args.vram)
    catalog = cat.load_catalog()
    rec, rows = cat.evaluate(catalog, machine)
    if args.json:
        print(json.dumps(as_json(machine, rec, rows), indent=2))
        return 0
    for problem in machine.problems:
        print(f"note: {problem}", file=sys.stderr)
    print(render_table(catalog, machine, rec, rows))
    return 0


def _round(num_bytes: int) -> float:
    return round(num_bytes / GB, 2)


def as_json(machine: Machine, rec: cat.Recommendation, rows: list[cat.Row]) -> dict:
    vram = machine.offload_vram  # what llama.cpp can use, not every card seen
    return {
        "ram_gb": _round(machine.ram_total),
        "vram_gb": _round(vram),
        "usable_gb": _round(rec.usable_bytes),
        "recommended": rec.entry.quant if rec.entry else None,
        "entries": [_row_json(row, rec) for row in rows],
    }


def _row_json(row: cat.Row, rec: cat.Recommendation) -> dict:
    entry, plan = row.entry, row.plan
    return {
        "name": entry.name,
        "quant": entry.quant,
        "bits": entry.bits,
        "file": entry.file,
        "size_gb": _round(entry.size_bytes),
        "max_ram_gb": _round(entry.max_ram_bytes),
        "use_case": entry.use_case,
        "fits": row.fits,
        "missing_gb": _round(row.missing_bytes),
        "recommended": entry == rec.entry,
        "run": plan.mode,
        "gpu_layers": plan.gpu_layers,
        "n_layer": plan.n_layer,
        "layers_estimated": plan.layers_estimated,
        "fits_now": plan.fits_now,
    }


def _size(entry: cat.Entry, num_bytes: int) -> str:
    return f"{'~' if entry.approximate else ''}{cat.format_gb(num_bytes)} GB"


def render_table(
    catalog: cat.Catalog, machine: Machine, rec: cat.Recommendation, rows: list[cat.Row]
) -> str:
    vram = machine.offload_vram  # what llama.cpp can use, not every card seen
    reserved = cat.reserved_bytes(machine.ram_total)
    lines = [
        f"{catalog.name} ({catalog.repo_id})",
        f"This machine: {describe(machine)}",
        f"Usable for a model: {cat.format_gb(rec.usable_bytes)} GB = "
        f"{cat.format_gb(machine.ram_total)} GB RAM - {cat.format_gb(reserved)} GB kept for "
        f"the system + {cat.format_gb(vram)} GB VRAM",
        "",
    ]
    table = [("", "Quant", "Size", "Max RAM", "Fits", "Runs", "Use case")]
    tight = False
    for row in rows:
        mark = "*" if row.entry == rec.entry else ""
        runs = row.plan.describe()
        if row.fits and row.plan.fits_now is False:
            runs += " !"
            tight = True
        fit = "yes" if row.fits else f"no, {cat.format_gb(row.missing_bytes)} GB short"
        table.append(
            (
                mark,
                row.entry.quant,
                _size(row.entry, row.entry.size_bytes),
                _size(row.entry, row.entry.max_ram_bytes),
                fit,
                runs,
                row.entry.use_case,
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
    for r in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    lines.append("")
    if tight:
        free = (machine.ram_available or 0) + machine.offload_free_vram
        lines.append(
            f"! fits this machine, but not the {cat.format_gb(free)} GB free right "
            "now: close other programs before loading it."
        )
    lines.append(rec.message)
    return "\n".join(lines)
