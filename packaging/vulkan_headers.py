"""Vulkan headers new enough for the bundled llama.cpp, from Debian's archive when needed.

llama-cpp-python 0.3.36's ggml-vulkan uses `VK_KHR_internally_synchronized_queues` and
`VK_EXT_layer_settings` without a version guard, so it needs the headers of Vulkan 1.4.363 or
newer: Debian 12 has 1.3.239, Debian 13 and Ubuntu 24.04 older 1.4 releases. The headers are
only headers: the build still links the system's Vulkan loader (`libvulkan.so.1`, whose ABI
is stable), and at run time the user's driver supplies it. So when the headers found
(`VULKAN_SDK`, else the system's) are too old, `build.py` takes Debian unstable's
`libvulkan-dev` package from Debian's archive, checks it against the archive's index, unpacks
only `usr/include/` under `build/vulkan-headers/<version>/` and passes that folder to CMake
(`-DVulkan_INCLUDE_DIR`). The download happens once; the folder is reused.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import re
import tarfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIN_HEADER_VERSION = 363
ARCHIVE = "http://deb.debian.org/debian"
SUITE = "sid"
PACKAGE = "libvulkan-dev"
_VERSION = re.compile(r"^#define VK_HEADER_VERSION (\d+)", re.M)

Fetch = Callable[[str], bytes]


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - our archive URL
        data: bytes = response.read()
    return data


def header_version(include: Path) -> int | None:
    """VK_HEADER_VERSION of include/vulkan/vulkan_core.h; None without one."""
    try:
        text = (include / "vulkan" / "vulkan_core.h").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = _VERSION.search(text)
    return int(found[1]) if found else None


def found_include(environ: dict[str, str] | None = None) -> Path:
    """Where CMake's FindVulkan looks first: the SDK named by VULKAN_SDK, else the system."""
    environ = os.environ if environ is None else environ
    sdk = environ.get("VULKAN_SDK")
    return Path(sdk) / "include" if sdk else Path("/usr/include")


@dataclass(frozen=True)
class Entry:
    version: str
    filename: str
    sha256: str


def package_entry(index: str, package: str = PACKAGE) -> Entry:
    """The package's stanza in a Debian `Packages` index."""
    for stanza in index.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Package") == package:
            return Entry(fields["Version"], fields["Filename"], fields["SHA256"])
    raise LookupError(f"{package} is not in the archive's index")


def ar_members(data: bytes) -> dict[str, bytes]:
    """The members of an `ar` archive (a .deb is one)."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not a .deb (ar) archive")
    members, at = {}, 8
    while at + 60 <= len(data):
        header = data[at : at + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        members[name] = data[at + 60 : at + 60 + size]
        at += 60 + size + (size % 2)
    return members


def unpack_includes(deb: bytes, dest: Path) -> Path:
    """Extract the package's usr/include/ into dest; returns dest/usr/include."""
    members = ar_members(deb)
    name = next((n for n in members if n.startswith("data.tar")), None)
    if name is None:
        raise ValueError("the .deb has no data archive")
    with tarfile.open(fileobj=io.BytesIO(members[name])) as tar:
        wanted = [
            m
            for m in tar.getmembers()
            if m.name.lstrip("./").startswith("usr/include/") and (m.isfile() or m.isdir())
        ]
        tar.extractall(dest, members=wanted, filter="data")
    return dest / "usr" / "include"


def ensure_headers(
    work: Path,
    environ: dict[str, str] | None = None,
    fetch: Fetch = _fetch,
    archive: str = ARCHIVE,
) -> Path | None:
    """None when the headers CMake finds are new enough, else a folder of newer ones."""
    have = header_version(found_include(environ))
    if have is not None and have >= MIN_HEADER_VERSION:
        return None
    cached = sorted((work / "vulkan-headers").glob("*/usr/include"))
    for include in reversed(cached):
        if (header_version(include) or 0) >= MIN_HEADER_VERSION:
            return include
    index_url = f"{archive}/dists/{SUITE}/main/binary-amd64/Packages.xz"
    entry = package_entry(lzma.decompress(fetch(index_url)).decode("utf-8", "replace"))
    deb = fetch(f"{archive}/{entry.filename}")
    if hashlib.sha256(deb).hexdigest() != entry.sha256:
        raise ValueError(f"{entry.filename} does not match the archive's SHA256")
    include = unpack_includes(deb, work / "vulkan-headers" / entry.version)
    got = header_version(include)
    if got is None or got < MIN_HEADER_VERSION:
        raise ValueError(
            f"{PACKAGE} {entry.version} from {SUITE} has Vulkan headers {got}, "
            f"older than the {MIN_HEADER_VERSION} this llama.cpp needs"
        )
    return include
