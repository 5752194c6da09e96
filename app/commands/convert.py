"""`parlor convert IN.gguf [OUT.gguf]`: merge the split experts of an old mixture-of-experts GGUF.

Without OUT the file is converted in place and the original kept as `<name>.legacy.gguf`
(`--delete-original` removes it instead). Ctrl-C cancels and leaves the original untouched.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert an old split-expert MoE GGUF so llama.cpp can load it",
        description="Merge the per-expert tensors of a GGUF written before April 2024 into the "
        "layout current llama.cpp loads. Quantized data is copied unchanged.",
    )
    p.add_argument("input", type=Path, help="the GGUF file to convert")
    p.add_argument(
        "output", type=Path, nargs="?", help="where to write the result (default: convert in place)"
    )
    p.add_argument(
        "--delete-original",
        action="store_true",
        help="remove the original once the converted file is verified",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument(
        "--no-load-check",
        action="store_true",
        help="skip loading the result with llama.cpp before keeping it",
    )
    p.set_defaults(handler=run)


def describe(header, layout: str) -> str:
    experts = (
        f", {header.expert_count} experts ({header.expert_used_count} used per token)"
        if header.expert_count
        else ""
    )
    what = {
        "legacy": "split experts (old layout, needs converting)",
        "merged": "merged experts (current layout)",
        "dense": "not a mixture-of-experts model",
    }[layout]
    return (
        f"{header.name}: {header.architecture or 'unknown architecture'}, "
        f"{header.n_layer} layers{experts}, {header.file_type or 'unknown type'}, "
        f"{len(header.tensors)} tensors; {what}"
    )


class ProgressBar:
    """One line on stderr, redrawn at most ten times a second."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.monotonic()
        self.last = 0.0
        self.tty = self.stream.isatty()
        self.last_pct = -10

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        pct = 100 * done // max(total, 1)
        if stage == "converting" and done < total:
            if self.tty and now - self.last < 0.1:
                return
            if not self.tty and pct < self.last_pct + 10:
                return
        self.last, self.last_pct = now, pct
        if stage != "converting":
            if stage != "done":
                self.stream.write(("\n" if self.tty else "") + f"{stage.capitalize()}…\n")
                self.stream.flush()
            return
        speed = done / max(now - self.start, 1e-6)
        eta = (total - done) / speed if speed else 0
        fill = self.width * done // max(total, 1)
        line = (
            f"[{'#' * fill}{'-' * (self.width - fill)}] {pct:3d}% "
            f"{human(done)}/{human(total)} {human(speed)}/s "
            f"ETA {eta:.0f}s"
        )
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _load_check(path: Path) -> bool:
    from app.core.engine.load_check import load_and_generate

    text = load_and_generate(path)
    print(f"Load check: llama.cpp loaded the converted file and wrote {text!r}")
    return True


def run(args) -> int:
    """The same opening path as the window (`app.core.chat.open_model`): check, convert,
    record the conversion in the manifest of a downloaded file, then say how to load it."""
    from app.core.chat.open_model import (
        OpenCancelled,
        OpenError,
        check_model,
        convert_for_opening,
    )
    from app.core.convert.plan import describe_group, plan_conversion

    try:
        check = check_model(args.input)
    except OpenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(describe(check.header, check.layout))
    if not check.needs_conversion:
        print("Nothing to convert.")
        return 0
    plan = plan_conversion(check.header)
    print(
        f"Merging {len(plan.groups)} expert groups into "
        f"{args.output or args.input} ({human(plan.output_size())})."
    )
    for group in plan.mixed_groups:
        print("Mixed types: " + describe_group(group))
    try:
        result = convert_for_opening(
            check,
            dst=args.output,
            progress=ProgressBar(),
            cancel=threading.Event(),
            keep_original=not args.delete_original,
            overwrite=args.overwrite,
            verify=None if args.no_load_check else _load_check,
        )
    except KeyboardInterrupt:
        print("\nCancelled; the original file is unchanged.", file=sys.stderr)
        return 130
    except OpenCancelled as e:
        print(f"\n{e}", file=sys.stderr)
        return 130
    except OpenError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 1
    print(result.summary())
    print(f"Load it with: parlor --model {result.dst}")
    return 0
