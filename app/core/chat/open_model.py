"""Opening a model file, the same way from everywhere: the window's Open and start-up,
`--model`, `--smoke-test`, `parlor download` and `parlor convert`.

    check_model      the GGUF header is read and validated (llama.cpp aborts or says only
                     "Failed to load model" on a damaged file, so it never sees one)
    a choice         an old split-expert MoE layout (January 2024) must be converted; the
                     caller asks whether to keep the original (dialog, prompt or flag)
    convert_for_opening   the conversion, recorded in the file's manifest (converter, sha256
                     and size of the result) so the download code knows it as an install
    load             the caller's: the window loads on its worker thread, the CLI checks
                     with llama.cpp in a child

`prepare_model` runs the first three for callers that can block (the command line); the
window runs them as background jobs. Qt-free.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.core.convert.moe import (
    ConvertCancelled,
    ConvertError,
    ConvertResult,
    convert_legacy_moe,
    extra_disk_bytes,
)
from app.core.gguf.header import GGUFError, GGUFHeader, moe_layout, validate_gguf
from app.core.hub.manifest import (
    Conversion,
    manifest_path,
    read_manifest,
    write_manifest,
)
from app.core.hub.verify import hash_file

CONVERTER = "parlor-moe-merge 1"  # bump when the converter's output changes
Progress = Callable[[str, int, int], None]  # (stage, done, total), as the converter reports
Verify = Callable[[Path], object]


class OpenError(Exception):
    """The file cannot be opened; the message names it and says why and what to do."""


class OpenCancelled(OpenError):
    pass


@dataclass(frozen=True)
class ModelCheck:
    path: Path
    header: GGUFHeader
    layout: str  # "legacy", "merged" or "dense"

    @property
    def needs_conversion(self) -> bool:
        return self.layout == "legacy"

    @property
    def extra_disk(self) -> int:
        """Disk the conversion needs for a few minutes (0 when none is needed)."""
        return extra_disk_bytes(self.header) if self.needs_conversion else 0


@dataclass(frozen=True)
class ReadyModel:
    """The file to load, its header, and the conversion that made it (None: none needed)."""

    path: Path
    header: GGUFHeader
    conversion: ConvertResult | None = None

    def summary(self) -> str:
        if self.conversion is None:
            return f"{self.path.name} is ready to load."
        kept = (
            f"the original is kept as {self.conversion.original}"
            if self.conversion.original
            else "the original was removed"
        )
        return (
            f"Converted {self.path.name} from the old mixture-of-experts layout to the "
            f"current one ({kept})."
        )


def check_model(path: str | Path) -> ModelCheck:
    path = Path(path)
    try:
        header = validate_gguf(path)
    except (GGUFError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise OpenError(f"Cannot open {path}: {reason}") from exc
    return ModelCheck(path, header, moe_layout(header))


def convert_for_opening(
    check: ModelCheck,
    *,
    keep_original: bool,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    verify: Verify | None = None,
    dst: Path | None = None,
    overwrite: bool = False,
) -> ConvertResult:
    """Convert `check.path` (in place unless `dst`), then record it in the manifest."""
    try:
        result = convert_legacy_moe(
            check.path,
            dst,
            progress=progress,
            cancel=cancel,
            keep_original=keep_original,
            verify=verify,
            overwrite=overwrite,
        )
    except ConvertCancelled as exc:
        raise OpenCancelled(str(exc)) from exc
    except (ConvertError, GGUFError, OSError) as exc:
        raise OpenError(f"Converting {check.path.name} failed: {exc}") from exc
    if result.converted:
        record_conversion(result, progress, cancel)
    return result


def record_conversion(
    result: ConvertResult, progress: Progress | None = None, cancel: threading.Event | None = None
) -> None:
    """Carry a downloaded file's manifest over to its conversion. The manifest is named for
    the file, so after an in-place conversion it sits next to the converted file; the kept
    original gets a copy without the conversion. Files without a manifest (not downloaded by
    Parlor) get none: there is no source to record."""
    src, dst = result.src, result.dst
    manifest = read_manifest(src)
    if manifest is None or dst is None:
        return
    size = dst.stat().st_size
    if progress is not None:
        progress("recording", 0, size)  # one line: hashing runs at disk speed
    digest = hash_file(dst, cancel=cancel)
    if result.original is not None and result.original != src:
        write_manifest(result.original, manifest)
    elif result.original is None and dst != src:
        manifest_path(src).unlink(missing_ok=True)  # the source is gone, and so its record
    write_manifest(dst, manifest.converted(Conversion(CONVERTER, digest, size)))


def prepare_model(
    path: str | Path,
    *,
    keep_original: Callable[[ModelCheck], bool],
    convert: bool = True,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    verify: Verify | None = None,
) -> ReadyModel:
    """Check `path`, convert it when its layout needs it (asking `keep_original`), and
    return the file to load. OpenError (OpenCancelled) with a message otherwise."""
    check = check_model(path)
    if not check.needs_conversion:
        return ReadyModel(check.path, check.header)
    if not convert:
        raise OpenError(
            f"{check.path.name} uses the old mixture-of-experts layout (January 2024) that "
            f"llama.cpp no longer loads. Convert it first: parlor convert {check.path}"
        )
    result = convert_for_opening(
        check, keep_original=keep_original(check), progress=progress, cancel=cancel, verify=verify
    )
    assert result.dst is not None  # a legacy file is always converted or an error raised
    return ReadyModel(result.dst, check_model(result.dst).header, result)
