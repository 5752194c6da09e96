"""`<file>.parlor.json`: what a model file in the models folder was installed from.

Written when a download is installed (repository, revision, the remote path, its checksum
and size) and extended when the file is converted (the converter and the sha256 and size of
the result). "Already installed" is decided by the recorded source checksum, so a converted
file, whose bytes differ from the hub's, is still recognised as the install of its source
and never fetched again or overwritten by it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from app.core.hub.remote import RemoteFile

SUFFIX = ".parlor.json"
SCHEMA = 1


@dataclass(frozen=True)
class Conversion:
    converter: str  # which converter and version wrote the file
    sha256: str  # of the converted file, as it is on disk
    size: int


@dataclass(frozen=True)
class Manifest:
    repo_id: str
    revision: str
    remote_path: str
    size: int  # of the source, as on the hub
    sha256: str | None = None  # the source's LFS sha256
    git_sha1: str | None = None  # or, for a small file kept in git, its blob id
    conversion: Conversion | None = None

    @classmethod
    def for_download(cls, repo_id: str, revision: str, file: RemoteFile) -> Manifest:
        return cls(repo_id, revision, file.path, file.size, file.sha256, file.git_sha1)

    @property
    def source_digest(self) -> str:
        return (self.sha256 or self.git_sha1 or "").lower()

    @property
    def installed_size(self) -> int:
        """The size the file on disk has: the converted one's, or the source's."""
        return self.conversion.size if self.conversion else self.size

    def is_install_of(self, file: RemoteFile) -> bool:
        return bool(file.digest) and file.digest == self.source_digest

    def converted(self, conversion: Conversion) -> Manifest:
        return replace(self, conversion=conversion)


def manifest_path(model: Path) -> Path:
    return model.with_name(model.name + SUFFIX)


def read_manifest(model: Path) -> Manifest | None:
    """The manifest next to `model`; None when there is none or it cannot be read (then the
    file is treated as unknown and checked by its bytes, nothing is lost)."""
    try:
        data = json.loads(manifest_path(model).read_text(encoding="utf-8"))
        conversion = data.pop("conversion", None)
        data.pop("schema", None)
        return Manifest(**data, conversion=Conversion(**conversion) if conversion else None)
    except (OSError, ValueError, TypeError):
        return None


def write_manifest(model: Path, manifest: Manifest) -> None:
    """Atomically: a manifest is either the old one or the new one, never half written."""
    path = manifest_path(model)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps({"schema": SCHEMA, **asdict(manifest)}, indent=1) + "\n", encoding="utf-8"
    )
    os.replace(tmp, path)


def move_manifest(src: Path, dst: Path) -> None:
    """Follow a model file that was renamed (the original kept as `<stem>.legacy.gguf`)."""
    if manifest_path(src).is_file():
        os.replace(manifest_path(src), manifest_path(dst))
