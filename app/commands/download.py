"""`parlor download [REPO] (--quant METHOD | --file NAME) [--dest DIR] [--no-convert]`.

No REPO: the default model; neither --quant nor --file: the quant recommended for this
machine. Same resume and verification as the dialog: run it again after any interruption.
Then the file goes through the same opening path as everywhere (`app.core.chat.open_model`):
a file in the old MoE layout is converted, so what it prints can be loaded as it says.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from app.core.appdata.machine import GB, read_machine
from app.core.appdata.paths import default_paths
from app.core.appdata.settings import Settings
from app.core.chat.open_model import (
    ModelCheck,
    OpenCancelled,
    OpenError,
    ReadyModel,
    prepare_model,
)
from app.core.hub import catalog as cat
from app.core.hub.downloads import (
    DownloadError,
    GgufModel,
    Hub,
    Progress,
    download,
    human_size,
    parse_repo_ref,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "download",
        help="download a GGUF model, resumable and verified",
        description="Download a GGUF model from the Hugging Face hub. An interrupted download "
        "resumes when the same command is run again; the file appears under its "
        "name only once its sha256 matches the hub's.",
    )
    parser.add_argument(
        "repo", nargs="?", metavar="REPO", help="repository id or URL (default: the default model)"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--quant", metavar="METHOD", help="quant method, e.g. Q4_K_M")
    which.add_argument("--file", metavar="NAME", help="file name in the repository")
    parser.add_argument(
        "--dest",
        type=Path,
        metavar="DIR",
        help="folder to download into (default: Parlor's models folder)",
    )
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="a hub mirror (default: Settings → Data → Model hub address, "
        "else HF_ENDPOINT, else huggingface.co)",
    )
    parser.add_argument(
        "--no-convert",
        action="store_true",
        help="keep a file in the old MoE layout as it is (it will not load "
        "until converted with `parlor convert`)",
    )
    parser.add_argument(
        "--keep-original",
        action="store_true",
        help="after converting, keep the downloaded original as NAME.legacy.gguf (twice the disk)",
    )
    parser.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="do not ask; convert and remove the original unless --keep-original",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    catalog = cat.load_catalog()
    paths_ = default_paths()
    endpoint = args.endpoint or Settings.load(paths_.settings_file).hf_endpoint or None
    hub = Hub(endpoint=endpoint)
    dest = args.dest or paths_.models
    bar = TextProgress()
    try:
        repo_id, url_file = parse_repo_ref(args.repo) if args.repo else (catalog.repo_id, None)
        model, why = choose(hub, repo_id, catalog, quant=args.quant, file=args.file or url_file)
        parts = f" in {len(model.files)} parts" if len(model.files) > 1 else ""
        print(f"{repo_id}: {model.name}, {human_size(model.size)}{parts}. {why}".rstrip())
        paths = download(repo_id, model, dest, hub=hub, progress=bar, wait_for_other=True)
    except DownloadError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\nStopped. What was downloaded is kept; run the same command to resume.",
            file=sys.stderr,
        )
        return 130
    more = f" and {len(paths) - 1} more parts" if len(paths) > 1 else ""
    print(
        f"Saved {paths[0]}{more}"
        if bar.fetched
        else f"Already installed: {paths[0]}{more}; nothing was fetched."
    )
    return _open(paths[0], args, split=len(paths) > 1)


def _open(path: Path, args: argparse.Namespace, *, split: bool) -> int:
    """The opening path up to the load: a legacy file is converted unless --no-convert."""
    if args.no_convert or split:
        print(f"Load it with: parlor --model {path}")
        return 0
    from app.commands.convert import ProgressBar, _load_check

    try:
        ready: ReadyModel = prepare_model(
            path,
            keep_original=lambda c: _keep_original(c, args),
            progress=ProgressBar(),
            verify=_load_check,
        )
    except OpenCancelled as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 130
    except OpenError as exc:
        print(f"\nerror: {_after_download(path, exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nCancelled; the downloaded file is unchanged.", file=sys.stderr)
        return 130
    if ready.conversion is not None:
        print(ready.summary())
    print(f"Load it with: parlor --model {ready.path}")
    return 0


def _after_download(path: Path, exc: OpenError) -> str:
    reason = str(exc).removeprefix(f"Cannot open {path}: ")
    if reason != str(exc):
        return f"{path} was downloaded and verified, but Parlor cannot open it: {reason}"
    return str(exc)


def _keep_original(
    check: ModelCheck, args: argparse.Namespace, stdin: TextIO | None = None
) -> bool:
    """--keep-original or --yes decide; else ask on a terminal; else remove it (the manifest
    remembers the source, so nothing is downloaded again)."""
    stdin = stdin or sys.stdin
    print(
        f"{check.path.name} uses the old mixture-of-experts layout (January 2024) that "
        "llama.cpp no longer loads; converting it (the quantized data is copied unchanged)."
    )
    if args.keep_original or args.yes or not stdin.isatty():
        return bool(args.keep_original)
    answer = input(
        f"Keep the original as well ({human_size(check.path.stat().st_size)} more disk)? [y/N] "
    )
    return answer.strip().lower() in ("y", "yes")


def choose(
    hub: Hub,
    repo_id: str,
    catalog: cat.Catalog,
    *,
    quant: str | None = None,
    file: str | None = None,
) -> tuple[GgufModel, str]:
    """The model to fetch, and a line saying why it was chosen."""
    models = hub.list_gguf(repo_id)
    if not models:
        raise DownloadError(f"{repo_id} has no GGUF files.")
    ours = repo_id.lower() == catalog.repo_id.lower()
    if file:
        return _by_file(models, repo_id, file), ""
    if quant:
        entry = catalog.by_quant(quant) if ours else None
        if entry is not None:
            return _by_file(models, repo_id, entry.file), ""
        return _by_quant(models, repo_id, quant), ""
    return _recommended(models, repo_id, catalog if ours else None)


def _by_file(models: list[GgufModel], repo_id: str, file: str) -> GgufModel:
    for model in models:
        names = {model.name, model.name.rsplit("/", 1)[-1]}
        names.update(n for f in model.files for n in (f.path, f.name))
        if file in names:
            return model
    raise DownloadError(
        f"{repo_id} has no GGUF file {file!r}. It has: " + ", ".join(m.name for m in models)
    )


def _by_quant(models: list[GgufModel], repo_id: str, quant: str) -> GgufModel:
    found = [m for m in models if (m.quant or "").upper() == quant.upper()]
    if len(found) == 1:
        return found[0]
    if not found:
        have = sorted({m.quant for m in models if m.quant})
        raise DownloadError(
            f"{repo_id} has no {quant.upper()} file. Quants found: "
            + (", ".join(have) or "none (use --file)")
        )
    raise DownloadError(
        f"{repo_id} has several {quant.upper()} files: "
        + ", ".join(m.name for m in found)
        + ". Pick one with --file."
    )


def _recommended(
    models: list[GgufModel], repo_id: str, catalog: cat.Catalog | None
) -> tuple[GgufModel, str]:
    machine = read_machine()
    if catalog is not None:
        rec, rows = cat.evaluate(catalog, machine)
    else:
        entries = [cat.entry_for_file(m.name, m.size, m.quant) for m in models if m.complete]
        rec, rows = cat.evaluate(entries, machine)
    if rec.entry is None:
        raise DownloadError(f"{rec.message} Pass --quant or --file to download one anyway.")
    model = _by_file(models, repo_id, rec.entry.file)
    plan = next(r.plan for r in rows if r.entry == rec.entry)
    return model, (f"Recommended for this machine: {rec.why}; it would run {plan.describe()}.")


def _human_time(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _amounts(done: int, total: int) -> str:
    """'0.50/1.00 GB': both in the unit of the total, so the line does not jump about."""
    if total >= GB:
        return f"{done / GB:.2f}/{total / GB:.2f} GB"
    return f"{done / 1e6:.1f}/{total / 1e6:.1f} MB"


class TextProgress:
    """A one-line progress bar on a terminal; a line every 5% anywhere else."""

    def __init__(self, stream: TextIO | None = None, width: int = 28) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self._last_line = ""
        self._last_step = -1
        self._last_phase = ""
        self._last_time = 0.0
        self.fetched = False  # whether any byte was downloaded (not all installed already)
        self._last_note = ""

    def __call__(self, p: Progress) -> None:
        self.fetched = self.fetched or p.phase == "downloading"
        if p.note and p.note != self._last_note:
            self.stream.write(("\n" if self.tty else "") + p.note + "\n")
        self._last_note = p.note
        filled = int(self.width * p.fraction)
        bar = "#" * filled + "-" * (self.width - filled)
        line = (
            f"{p.phase:<11} [{bar}] {100 * p.fraction:5.1f}%  "
            f"{_amounts(p.done, p.total)}  {p.speed / 1e6:6.1f} MB/s  "
            f"ETA {_human_time(p.eta)}"
        )
        if self.tty:
            self.stream.write("\r" + line.ljust(len(self._last_line)))
            if p.phase == "done":
                self.stream.write("\n")
        else:
            step = int(p.fraction * 20)
            now = time.monotonic()
            if step != self._last_step or p.phase != self._last_phase or now - self._last_time > 30:
                self.stream.write(line + "\n")
                self._last_step, self._last_time = step, now
        self._last_phase = p.phase
        self._last_line = line
        self.stream.flush()
