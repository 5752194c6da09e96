"""Before any byte moves: which files are already installed, where each `.part` goes, and
whether the disk has room (with the margin said out loud)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.hub.errors import DownloadError
from app.core.hub.manifest import Manifest, read_manifest, write_manifest
from app.core.hub.remote import RemoteFile
from app.core.hub.units import human_size
from app.core.hub.verify import Checksum, hash_file

DISK_MARGIN = 64_000_000  # left free beyond the file: a full disk breaks everything else
DiskUsage = Callable[[Path], Any]  # shutil.disk_usage's shape: an object with .free


def part_path(dest: Path, file: RemoteFile) -> Path:
    return Path(dest) / f"{file.name}.part"


def legacy_backup(final: Path) -> Path:
    """Where the converter keeps an original it replaced in place."""
    return final.with_name(f"{final.stem}.legacy{final.suffix}")


@dataclass(frozen=True)
class Source:
    """What a file is installed from: the repository, its revision, the remote file."""

    repo_id: str
    revision: str
    file: RemoteFile

    def manifest(self) -> Manifest:
        return Manifest.for_download(self.repo_id, self.revision, self.file)


def installed(
    dest: Path,
    source: Source,
    cancel: threading.Event | None = None,
    on_hash: Callable[[], None] | None = None,
) -> bool:
    """Whether `dest` already holds this file (as downloaded, or converted from it).

    The manifest decides when there is one. Without one (a file from before manifests, or
    put there by hand) the bytes are checked once and a manifest written; a file that is
    not the hub's is never overwritten: that is an error naming it.
    """
    final = Path(dest) / source.file.name
    if not final.is_file():
        return False
    manifest = read_manifest(final)
    if manifest is not None and manifest.is_install_of(source.file):
        return final.stat().st_size == manifest.installed_size
    if on_hash is not None:
        on_hash()
    if _same_bytes(final, source.file, cancel):
        write_manifest(final, source.manifest())
        return True
    if manifest is None and _same_bytes(legacy_backup(final), source.file, cancel):
        return True  # converted in place before manifests: the original is its proof
    if manifest is not None:
        return False  # an install of an older upload of this file: replace it
    raise DownloadError(
        f"{final} already exists and is not {source.file.path} from {source.repo_id}; "
        "Parlor does not overwrite it. Move or rename it, or download into another folder."
    )


def _same_bytes(path: Path, file: RemoteFile, cancel: threading.Event | None) -> bool:
    if not path.is_file() or path.stat().st_size != file.size:
        return False
    return hash_file(path, Checksum(file), cancel=cancel) == file.digest


@dataclass(frozen=True)
class DiskNeed:
    needed: int  # bytes still to fetch
    free: int
    margin: int = DISK_MARGIN

    @property
    def enough(self) -> bool:
        return self.free >= self.needed + self.margin

    def message(self, dest: Path) -> str:
        return (
            f"Not enough disk space in {dest}: the download needs {human_size(self.needed)} "
            f"more, and Parlor keeps {human_size(self.margin)} free beyond it, so "
            f"{human_size(self.needed + self.margin)} in all; {human_size(self.free)} "
            "are free. Free some space or choose another folder."
        )


def still_to_fetch(dest: Path, files: Sequence[RemoteFile]) -> int:
    needed = 0
    for file in files:
        part = part_path(dest, file)
        have = part.stat().st_size if part.is_file() else 0
        needed += file.size - have if have <= file.size else file.size
    return needed


def check_disk(dest: Path, files: Sequence[RemoteFile], disk_usage: DiskUsage) -> None:
    needed = still_to_fetch(dest, files)
    if needed:
        need = DiskNeed(needed, disk_usage(dest).free)
        if not need.enough:
            raise DownloadError(need.message(dest))
