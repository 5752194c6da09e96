"""The oldest macOS each Mach-O file in a bundle runs on, read from its load commands.

`LSMinimumSystemVersion` in Info.plist is a promise; the dynamic loader keeps a different one:
a dylib whose LC_BUILD_VERSION says macOS 15 does not load on 14, whatever the plist says.
pip on the build machine picks the wheel tagged for the newest macOS it runs (numpy ships
macOS 14 arm64 wheels beside its 11.0 ones), and a compiler targets its SDK unless told
otherwise, so `build.py` reads every binary of the frozen app and refuses one that needs a
newer macOS than the bundle claims. Read here without Xcode's otool, so it is tested on
Linux with Mach-O headers the tests write.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

MH_MAGIC_64, MH_MAGIC = 0xFEEDFACF, 0xFEEDFACE  # as little-endian words
FAT_MAGIC, FAT_MAGIC_64 = 0xCAFEBABE, 0xCAFEBABF  # as big-endian words
LC_VERSION_MIN_MACOSX, LC_BUILD_VERSION = 0x24, 0x32
PLATFORM_MACOS = 1
MAX_FAT_SLICES = 32  # Java class files share the fat magic; they have a version there


def version_text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def parse_version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def minimum_macos(path: Path) -> tuple[int, int] | None:
    """The highest macOS minimum among the file's slices; None for a file that is not a
    Mach-O binary or says nothing (old toolchains wrote no version command)."""
    try:
        with path.open("rb") as handle:
            versions = [_slice_minimum(handle, start) for start in _slices(handle.read(8), handle)]
    except (OSError, struct.error):
        return None
    found = [v for v in versions if v]
    return max(found) if found else None


def _slices(head: bytes, handle: BinaryIO) -> list[int]:
    """Where each thin Mach-O starts: the file itself, or each slice of a universal binary."""
    if len(head) < 8:
        return []
    magic, count = struct.unpack(">II", head)
    if magic in (FAT_MAGIC, FAT_MAGIC_64) and 0 < count <= MAX_FAT_SLICES:
        size, form = (32, ">iiQQII") if magic == FAT_MAGIC_64 else (20, ">iiIII")
        table = handle.read(size * count)
        return [struct.unpack_from(form, table, i * size)[2] for i in range(count)]
    return [0]


def _slice_minimum(handle: BinaryIO, start: int) -> tuple[int, int] | None:
    handle.seek(start)
    header = handle.read(32)
    magic, _, _, _, ncmds, sizeofcmds = struct.unpack_from("<IiiIII", header)
    if magic not in (MH_MAGIC_64, MH_MAGIC):
        return None
    commands = (
        handle.read(sizeofcmds) if magic == MH_MAGIC_64 else (header[28:] + handle.read(sizeofcmds))
    )
    offset = 0
    for _ in range(ncmds):
        cmd, size, first, second = struct.unpack_from("<IIII", commands, offset)
        if cmd == LC_BUILD_VERSION and first == PLATFORM_MACOS:
            return _decode(second)
        if cmd == LC_VERSION_MIN_MACOSX:
            return _decode(first)
        if size < 8:
            return None
        offset += size
    return None


def _decode(packed: int) -> tuple[int, int]:
    """Mach-O packs X.Y.Z as xxxx.yy.zz in one word."""
    return packed >> 16, (packed >> 8) & 0xFF


def too_new(folder: Path, minimum: tuple[int, int]) -> list[tuple[Path, tuple[int, int]]]:
    """Every binary under `folder` that needs a newer macOS than `minimum`."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            needs = minimum_macos(path)
            if needs and needs > minimum:
                found.append((path, needs))
    return found
