"""What is on the hub: files with their size and checksum, GGUF models (split parts grouped),
quant names read from file names, pasted references, and `Hub`, the one object that knows
where the hub is and as whom we ask.

Every request goes through huggingface_hub's own HTTP session (`get_session()`), which
drops the `Authorization` header when a redirect leaves the hub's origin (a CDN, a mirror's
storage), so the token goes only to the hub it was given for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import HfApi, constants, hf_hub_url
from huggingface_hub.utils import build_hf_headers, get_session

from app.core.hub.errors import DownloadError, hub_errors, unreachable

if TYPE_CHECKING:
    from app.core.gguf.header import GGUFHeader

PROBE_TIMEOUT = httpx2.Timeout(4.0)  # one quick look before huggingface_hub's own retries


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None = None  # LFS files: the content's sha256
    git_sha1: str | None = None  # small files kept in git: the blob id

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def digest(self) -> str:
        """The checksum the hub gives, lower case; '' when it gives none."""
        return (self.sha256 or self.git_sha1 or "").lower()


@dataclass(frozen=True)
class GgufModel:
    """One loadable model: a single GGUF, or all the parts of a split one."""

    name: str  # the file's path, or for a split model its path without `-0000N-of-0000M`
    quant: str | None
    files: tuple[RemoteFile, ...]
    split_count: int = 1

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def complete(self) -> bool:
        return len(self.files) == self.split_count

    @property
    def first_file(self) -> str:
        """The file to hand llama.cpp (it finds the other parts next to it)."""
        return self.files[0].name


_QUANT = re.compile(
    r"(?<![A-Za-z0-9])("
    r"IQ[1-4]_(?:XXS|XS|S|M|NL|L)|TQ[12]_0|Q[2-8]_K(?:_(?:XXL|XL|L|M|S))?"
    r"|Q[4-8]_[01](?:_[48]_[48])?|MXFP4(?:_MOE)?|BF16|FP16|FP32|F16|F32"
    r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"^(?P<base>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


def quant_from_filename(name: str) -> str | None:
    """'ggml-model-q4_k_m.gguf' -> 'Q4_K_M'; the last quant-looking token of the file name."""
    stem = name.rsplit("/", 1)[-1]
    found = _QUANT.findall(stem)
    if not found:
        return None
    quant = str(found[-1]).upper()
    return {"FP16": "F16", "FP32": "F32"}.get(quant, quant)


def split_info(name: str) -> tuple[str, int, int] | None:
    """'m-Q4_K_M-00002-of-00003.gguf' -> ('m-Q4_K_M', 2, 3); None for a single file."""
    match = _SPLIT.match(name)
    if not match:
        return None
    return match.group("base"), int(match.group("index")), int(match.group("count"))


def group_gguf(files: Iterable[RemoteFile]) -> list[GgufModel]:
    """GGUF files as models, split parts grouped together, smallest first."""
    singles: list[GgufModel] = []
    splits: dict[tuple[str, int], list[tuple[int, RemoteFile]]] = {}
    for file in files:
        if not file.path.lower().endswith(".gguf"):
            continue
        info = split_info(file.path)
        if info is None:
            singles.append(GgufModel(file.path, quant_from_filename(file.path), (file,)))
        else:
            splits.setdefault((info[0], info[2]), []).append((info[1], file))
    for (base, count), parts in splits.items():
        ordered = tuple(f for _, f in sorted(parts, key=lambda p: p[0]))
        singles.append(GgufModel(f"{base}.gguf", quant_from_filename(base), ordered, count))
    return sorted(singles, key=lambda m: (m.size, m.name))


_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def parse_repo_ref(text: str) -> tuple[str, str | None]:
    """A repo id or a pasted hub URL -> (repo id, file path in the repo or None)."""
    text = text.strip().rstrip("/")
    if _REPO_ID.match(text):
        return text, None
    if "://" not in text and text.split("/", 1)[0].count("."):
        text = "https://" + text  # 'huggingface.co/owner/name'
    parts = [p for p in urlsplit(text).path.split("/") if p]
    if parts[:1] == ["models"]:
        parts = parts[1:]
    if parts[:1] in (["datasets"], ["spaces"]) or not _REPO_ID.match("/".join(parts[:2])):
        raise DownloadError(f"Not a model repository id or URL: {text!r} (expected owner/name)")
    repo_id = "/".join(parts[:2])
    if len(parts) > 4 and parts[2] in ("blob", "resolve"):
        return repo_id, "/".join(parts[4:])
    return repo_id, None


@dataclass(frozen=True)
class Hub:
    """Where and as whom: endpoint (None: HF_ENDPOINT or the default hub), token (None: the
    login or HF_TOKEN; False: anonymous), revision (None: main)."""

    endpoint: str | None = None
    token: str | bool | None = field(default=None, repr=False)  # never in logs or tracebacks
    revision: str | None = None

    @property
    def base_url(self) -> str:
        return (self.endpoint or constants.ENDPOINT).rstrip("/")

    @property
    def revision_name(self) -> str:
        return self.revision or "main"

    def api(self) -> HfApi:
        return HfApi(endpoint=self.base_url, token=self.token)

    def url(self, repo_id: str, path: str) -> str:
        return hf_hub_url(repo_id, path, revision=self.revision, endpoint=self.base_url)

    def headers(self) -> dict[str, str]:
        headers = build_hf_headers(token=self.token)
        headers["Accept-Encoding"] = "identity"  # sizes and hashes are of the raw bytes
        return headers

    def probe(self) -> None:
        """One request with a short timeout, so that an unreachable hub is reported in
        seconds rather than after huggingface_hub's retries (about 24 s)."""
        with hub_errors(self, ""):
            try:
                get_session().head(
                    self.base_url + "/", timeout=PROBE_TIMEOUT, follow_redirects=False
                )
            except (httpx2.ConnectError, httpx2.TimeoutException, httpx2.ProxyError) as exc:
                raise unreachable(self.base_url, exc) from exc

    def list_files(self, repo_id: str) -> list[RemoteFile]:
        self.probe()
        with hub_errors(self, repo_id):
            tree = self.api().list_repo_tree(repo_id, recursive=True, revision=self.revision)
            return [_remote_file(item) for item in tree if hasattr(item, "size")]

    def list_gguf(self, repo_id: str) -> list[GgufModel]:
        return group_gguf(self.list_files(repo_id))

    def file_info(self, repo_id: str, paths: Sequence[str]) -> list[RemoteFile]:
        """Size and checksum of the given files; a missing file is an error that names it."""
        self.probe()
        with hub_errors(self, repo_id):
            infos = self.api().get_paths_info(repo_id, list(paths), revision=self.revision)
        found = {item.path: _remote_file(item) for item in infos if hasattr(item, "size")}
        missing = [p for p in paths if p not in found]
        if missing:
            raise DownloadError(f"{repo_id} has no file {missing[0]!r}.")
        return [found[p] for p in paths]

    def read_header(self, repo_id: str, path: str) -> GGUFHeader:
        """The GGUF header of a file on the hub, read with Range requests (no download)."""
        from app.core.hub.remote_header import read_hub_header

        return read_hub_header(self, repo_id, path)


def _remote_file(item: Any) -> RemoteFile:
    if item.lfs is not None:
        return RemoteFile(item.path, int(item.size), sha256=item.lfs.sha256)
    return RemoteFile(item.path, int(item.size), git_sha1=item.blob_id)
