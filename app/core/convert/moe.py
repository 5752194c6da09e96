"""Convert a legacy split-expert mixture-of-experts GGUF to the merged layout llama.cpp loads.

Streaming, tensor by tensor, through one fixed buffer, so memory stays flat whatever the file's
size. Safety first: the source is validated and the free disk checked before anything is
written; the output goes to a hidden temporary file next to its destination, is verified
(header, tensor table, metadata bytes, sampled data, and an optional real load supplied by the
caller), and only then renamed into place atomically. Cancel, a full disk or any other error
removes the temporary file and leaves the original untouched; temporary files left by a crashed
process are removed by the next conversion in that folder.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from io import RawIOBase
from pathlib import Path
from typing import IO

from app.core.convert.plan import ExpertGroup, Plan, describe_group, plan_conversion
from app.core.gguf.ggml_types import type_name
from app.core.gguf.header import GGUFError, GGUFHeader, TensorInfo, moe_layout, validate_gguf
from app.core.gguf.writer import encode_header, layout_offsets

log = logging.getLogger(__name__)

CHUNK = 16 << 20  # bytes copied per read; the only large buffer
REQUANT_CHUNK = 4 << 20  # float32 values dequantized at a time in a mixed group
DISK_MARGIN = 64 << 20
TMP_SUFFIX = ".parlor-tmp"
SAMPLE = 4096

Progress = Callable[[str, int, int], None]  # (stage, done, total)
Cancel = threading.Event | Callable[[], bool] | None  # set or True: stop


class ConvertError(Exception):
    """The conversion did not happen; the original file is untouched."""


class ConvertCancelled(ConvertError):
    pass


class NotEnoughDisk(ConvertError):
    def __init__(self, folder: Path, needed: int, free: int):
        super().__init__(
            f"Converting needs {needed / 2**30:.1f} GB free in {folder}, but only "
            f"{free / 2**30:.1f} GB is free."
        )
        self.needed, self.free = needed, free


@dataclass
class MixedGroup:
    """A group of experts that had to become one type: what it was, what it became, the cost."""

    name: str
    types: dict[str, list[int]]  # type name -> expert indices
    target: str
    rel_rmse: dict[int, float] = field(default_factory=dict)  # requantized expert -> error

    @property
    def max_rel_rmse(self) -> float:
        return max(self.rel_rmse.values(), default=0.0)


@dataclass
class ConvertResult:
    converted: bool
    layout: str  # what the source held: legacy, merged or dense
    src: Path
    dst: Path | None = None  # the converted file
    original: Path | None = None  # where the original is now; None once removed
    groups: int = 0
    copied_groups: int = 0
    mixed: list[MixedGroup] = field(default_factory=list)
    bytes_written: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        if not self.converted:
            what = {
                "merged": "already uses the merged expert layout",
                "dense": "is not a mixture-of-experts model",
            }.get(self.layout, self.layout)
            return f"{self.src.name} {what}; nothing to convert."
        speed = self.bytes_written / max(self.seconds, 1e-9) / 2**20
        lines = [
            f"Merged {self.groups} expert groups ({self.copied_groups} copied unchanged) "
            f"into {self.dst}: {self.bytes_written / 2**20:.1f} MB in {self.seconds:.1f} s "
            f"({speed:.0f} MB/s)."
        ]
        for g in self.mixed:
            kinds = ", ".join(f"{k} {v}" for k, v in g.types.items())
            lines.append(
                f"  {g.name} mixed types ({kinds}): converted to {g.target}, "
                f"max relative RMS error {g.max_rel_rmse:.2e}"
            )
        lines.append(f"Original kept at {self.original}." if self.original else "Original removed.")
        return "\n".join(lines)


def needs_conversion(header: GGUFHeader) -> bool:
    return moe_layout(header) == "legacy"


def extra_disk_bytes(header: GGUFHeader) -> int:
    """Free disk a conversion needs next to the model, for the download dialog to announce."""
    return plan_conversion(header).output_size() + DISK_MARGIN


def cleanup_stale_temps(folder: Path) -> list[Path]:
    """Remove temporary files whose converting process no longer runs (it crashed)."""
    removed = []
    for p in folder.glob(f".*{TMP_SUFFIX}"):
        pid = p.name[: -len(TMP_SUFFIX)].rsplit(".", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        import psutil

        return bool(psutil.pid_exists(pid))
    except ImportError:  # pragma: no cover - psutil is a dependency
        return True


class _Sink:
    """The temporary output file; every byte goes through `write` (tests inject errors here)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.f = open(path, "xb", buffering=0)
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = self.f.write(view)
            view = view[n:]
            self.written += n

    def pad_to(self, pos: int) -> None:
        if pos > self.written:
            self.write(bytes(pos - self.written))

    def close(self, sync: bool) -> None:
        if sync:
            os.fsync(self.f.fileno())
        self.f.close()


class _Job:
    """State of one running conversion: source, sink, buffer, progress and cancel."""

    def __init__(
        self,
        plan: Plan,
        src_f: RawIOBase,
        sink: _Sink,
        progress: Progress | None,
        cancel: Cancel,
        raw_kv: bytes,
    ) -> None:
        self.plan, self.src, self.sink, self.raw_kv = plan, src_f, sink, raw_kv
        self.progress, self.cancel = progress, cancel
        self.buf = bytearray(CHUNK)
        self.done, self.total = 0, sum(t.nbytes for t in plan.out)
        self.mixed: dict[str, MixedGroup] = {}

    def check_cancel(self) -> None:
        c = self.cancel
        if c is not None and (c.is_set() if hasattr(c, "is_set") else c()):
            raise ConvertCancelled("Conversion cancelled; the original file is unchanged.")

    def advance(self, n: int) -> None:
        self.done += n
        if self.progress:
            self.progress("converting", self.done, self.total)

    def read_exact(self, pos: int, n: int) -> memoryview:
        view = memoryview(self.buf)[:n]
        self.src.seek(pos)
        got = 0
        while got < n:
            k = self.src.readinto(view[got:])
            if not k:
                raise GGUFError(
                    f"{self.plan.header.name} ended early at byte {pos + got}; "
                    "was it changed while converting?"
                )
            got += k
        return view

    def copy(self, t: TensorInfo) -> None:
        start, left = self.plan.header.data_offset + t.offset, t.nbytes
        while left:
            self.check_cancel()
            n = min(left, CHUNK)
            self.sink.write(self.read_exact(start, n))
            start, left = start + n, left - n
            self.advance(n)

    def group(self, g: ExpertGroup) -> None:
        for i, expert in enumerate(g.experts):
            if expert.ggml_type == g.target_type:
                self.copy(expert)
            else:
                self.requantize(g, i, expert)

    def requantize(self, g: ExpertGroup, index: int, t: TensorInfo) -> None:
        import numpy as np

        from app.core.convert import kquants

        row_len, n_rows = t.shape[0], t.shape[1]
        row_bytes = t.nbytes // n_rows
        step = max(1, min(n_rows, REQUANT_CHUNK // row_len, CHUNK // row_bytes))
        err = ref = 0.0
        for r0 in range(0, n_rows, step):
            self.check_cancel()
            rows = min(step, n_rows - r0)
            raw = self.read_exact(
                self.plan.header.data_offset + t.offset + r0 * row_bytes, rows * row_bytes
            )
            x = kquants.dequantize(raw, t.ggml_type, row_len)
            q = kquants.quantize(x, g.target_type)
            y = kquants.dequantize(q.tobytes(), g.target_type, row_len)
            err += float(np.square(y - x, dtype=np.float64).sum())
            ref += float(np.square(x, dtype=np.float64).sum())
            self.sink.write(q.tobytes())
            self.advance(q.nbytes)
        report = self.mixed.setdefault(
            g.name, MixedGroup(g.name, g.types, type_name(g.target_type))
        )
        report.rel_rmse[index] = (err / ref) ** 0.5 if ref else 0.0

    def run(self) -> None:
        plan = self.plan
        self.sink.write(encode_header(plan.header, self.raw_kv, plan.out))
        base = self.sink.written
        offsets = layout_offsets(plan.out, plan.header.alignment)
        for src, off in zip(plan.sources, offsets, strict=True):
            self.sink.pad_to(base + off)
            if isinstance(src, ExpertGroup):
                self.group(src)
            else:
                self.copy(src)


def _read_raw_kv(f: IO[bytes], header: GGUFHeader) -> bytes:
    start, end = header.kv_span
    f.seek(start)
    return f.read(end - start)


def _check_disk(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise NotEnoughDisk(folder, needed, free)


def _backup_name(src: Path) -> Path:
    for i in range(1000):
        tag = ".legacy" if i == 0 else f".legacy-{i}"
        candidate = src.with_name(f"{src.stem}{tag}{src.suffix}")
        if not candidate.exists():
            return candidate
    raise ConvertError(f"Too many backups of {src.name} already exist.")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; its renames are durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(tmp: Path, src: Path, final: Path, keep_original: bool) -> Path | None:
    """Move the verified file into place; return where the original is now (None: removed)."""
    in_place = final.exists() and os.path.samefile(final, src)
    if not in_place:
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        if keep_original:
            return src
        src.unlink()
        return None
    if not keep_original:
        os.replace(tmp, src)
        _fsync_dir(src.parent)
        return None
    backup = _backup_name(src)
    try:
        os.link(src, backup)  # the original's data stays reachable through the backup name
    except OSError:  # no hard links here (FAT, some network shares): rename, then replace
        os.rename(src, backup)
        try:
            os.replace(tmp, src)
        except OSError:
            os.rename(backup, src)
            raise
    else:
        try:
            os.replace(tmp, src)
        except OSError:
            backup.unlink(missing_ok=True)
            raise
    _fsync_dir(src.parent)
    return backup


def _verify_output(tmp: Path, plan: Plan, raw_kv: bytes, src_path: Path) -> None:
    """The written file's header, tensor table and metadata are what was planned; data sampled."""
    try:
        got = validate_gguf(tmp)
    except GGUFError as e:
        raise ConvertError(f"The converted file failed its check: {e}") from e
    want = [(t.name, t.shape, t.ggml_type, t.nbytes) for t in plan.out]
    have = [(t.name, t.shape, t.ggml_type, t.nbytes) for t in got.tensors]
    problems = []
    if have != want:
        problems.append("its tensor table differs from the plan")
    elif moe_layout(got) != "merged":
        problems.append(f"its layout is {moe_layout(got)}")
    else:
        with open(tmp, "rb") as out, open(src_path, "rb") as src:
            if _read_raw_kv(out, got) != raw_kv:
                problems.append("its metadata differs from the original's")
            elif not _samples_match(plan, got, src, out):
                problems.append("its tensor data differs from the original's")
    if problems:
        raise ConvertError("The converted file failed its check: " + "; ".join(problems))


def _samples_match(plan: Plan, got: GGUFHeader, src: IO[bytes], out: IO[bytes]) -> bool:
    """Compare the first and last bytes of every copied tensor or expert with the source."""
    for src_t, out_t in zip(plan.sources, got.tensors, strict=True):
        parts = src_t.experts if isinstance(src_t, ExpertGroup) else [src_t]
        pos = got.data_offset + out_t.offset
        for part in parts:
            if isinstance(src_t, ExpertGroup) and part.ggml_type != src_t.target_type:
                pos += out_t.nbytes // len(parts)
                continue
            n = min(SAMPLE, part.nbytes)
            for delta in (0, part.nbytes - n):
                src.seek(plan.header.data_offset + part.offset + delta)
                out.seek(pos + delta)
                if src.read(n) != out.read(n):
                    return False
            pos += part.nbytes
    return True


def convert_legacy_moe(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str] | None = None,
    *,
    progress: Progress | None = None,
    cancel: Cancel = None,
    keep_original: bool = True,
    verify: Callable[[Path], object] | None = None,
    overwrite: bool = False,
) -> ConvertResult:
    """Convert `src` to the merged expert layout.

    dst None (or src itself) converts in place: the converted file takes src's name and the
    original is kept as `<stem>.legacy.gguf` or removed, per `keep_original`. `verify(path)` is
    called on the finished temporary file before it is renamed; returning False or raising
    rejects it. `cancel` is a threading.Event or a callable returning True to stop.
    """
    started = time.monotonic()
    src = Path(src)
    header = validate_gguf(src)
    layout = moe_layout(header)
    if layout != "legacy":
        return ConvertResult(False, layout, src, original=src)
    plan = plan_conversion(header)
    final = Path(dst) if dst is not None else src
    if final.exists() and not os.path.samefile(final, src) and not overwrite:
        raise ConvertError(f"{final} already exists.")
    cleanup_stale_temps(final.parent)
    _check_disk(final.parent, plan.output_size() + DISK_MARGIN)
    tmp = final.parent / f".{final.name}.{os.getpid()}{TMP_SUFFIX}"
    log.info(
        "converting %s to the merged expert layout: %d expert groups, %d of mixed types",
        src.name,
        len(plan.groups),
        len(plan.mixed_groups),
    )
    try:
        job = _write(plan, src, tmp, progress, cancel)
        if progress:
            progress("verifying", 0, 1)
        _verify_output(tmp, plan, job.raw_kv, src)
        _run_user_verify(verify, tmp)
        job.check_cancel()
        original = _commit(tmp, src, final, keep_original)
    except BaseException as exc:
        log.warning("converting %s stopped: %s: %s", src.name, type(exc).__name__, exc)
        tmp.unlink(missing_ok=True)
        raise
    if progress:
        progress("done", 1, 1)
    log.info(
        "converted %s in %.1f s (%d bytes written)",
        final.name,
        time.monotonic() - started,
        job.sink.written,
    )
    return ConvertResult(
        True,
        layout,
        src,
        final,
        original,
        len(plan.groups),
        len(plan.groups) - len(plan.mixed_groups),
        list(job.mixed.values()),
        job.sink.written,
        time.monotonic() - started,
    )


def _write(plan: Plan, src: Path, tmp: Path, progress: Progress | None, cancel: Cancel) -> _Job:
    with open(src, "rb", buffering=0) as f:
        raw_kv = _read_raw_kv(f, plan.header)
        sink = _Sink(tmp)
        job = _Job(plan, f, sink, progress, cancel, raw_kv)
        try:
            job.run()
            sink.close(sync=True)
        except OSError as e:
            sink.close(sync=False)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ConvertError(
                    f"The disk ran full while writing {tmp.name}; the original file is unchanged."
                ) from e
            raise ConvertError(
                f"Writing {tmp.name} failed ({e.strerror or e}); the original file is unchanged."
            ) from e
        except BaseException:
            sink.close(sync=False)
            raise
    return job


def _run_user_verify(verify: Callable[[Path], object] | None, path: Path) -> None:
    if verify is None:
        return
    try:
        ok = verify(path)
    except ConvertError:
        raise
    except Exception as e:
        raise ConvertError(f"The converted file did not load: {e}") from e
    if ok is False:
        raise ConvertError("The converted file did not pass the load check.")


__all__ = [
    "ConvertCancelled",
    "ConvertError",
    "ConvertResult",
    "MixedGroup",
    "NotEnoughDisk",
    "cleanup_stale_temps",
    "convert_legacy_moe",
    "describe_group",
    "extra_disk_bytes",
    "needs_conversion",
]
