"""The macOS minimum read from Mach-O load commands (packaging/macho.py), and build.py's refusal
of a bundle holding a binary that needs a newer macOS than Info.plist promises.

Real Mach-O files come from clang (`-target arm64-apple-macos14.0`), which writes the same
LC_BUILD_VERSION a macOS toolchain does, and llvm-lipo, which makes universal binaries; both
are Debian packages (clang, llvm) and the tests that need them skip without. The header
layouts written by hand cover the older LC_VERSION_MIN_MACOSX and what is not a Mach-O.
"""

from __future__ import annotations

import plistlib
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.packaging.built_runtimes import load_build_module

ROOT = Path(__file__).resolve().parents[2]


build = load_build_module()  # puts packaging/ on sys.path for its sibling modules
llama_runtimes, macho = build.llama_runtimes, build.macho

needs_clang = pytest.mark.skipif(not shutil.which("clang"), reason="needs clang (Debian clang)")
LIPO = shutil.which("llvm-lipo") or shutil.which("llvm-lipo-14")
needs_lipo = pytest.mark.skipif(not LIPO, reason="needs llvm-lipo (Debian llvm)")


def compiled(tmp_path: Path, target: str) -> Path:
    source = tmp_path / "f.c"
    source.write_text("int f(void) { return 1; }\n")
    out = tmp_path / f"{target}.o"
    subprocess.run(["clang", "-target", target, "-c", str(source), "-o", str(out)], check=True)
    return out


def thin(command: int, *words: int) -> bytes:
    """A 64-bit Mach-O header with one load command of the given words."""
    body = struct.pack("<II", command, 8 + 4 * len(words)) + struct.pack(f"<{len(words)}I", *words)
    return struct.pack("<IiiIIIII", macho.MH_MAGIC_64, 0x0100000C, 0, 6, 1, len(body), 0, 0) + body


def packed(major: int, minor: int) -> int:
    return major << 16 | minor << 8


@needs_clang
@pytest.mark.parametrize(
    ("target", "expected"),
    [("arm64-apple-macos14.0", (14, 0)), ("x86_64-apple-macos10.13", (10, 13))],
)
def test_the_minimum_clang_wrote_is_read(tmp_path, target, expected):
    assert macho.minimum_macos(compiled(tmp_path, target)) == expected


@needs_clang
@needs_lipo
def test_a_universal_binary_needs_what_its_newest_slice_needs(tmp_path):
    arm = compiled(tmp_path, "arm64-apple-macos15.0")
    intel = compiled(tmp_path, "x86_64-apple-macos11.0")
    fat = tmp_path / "universal.o"
    subprocess.run([str(LIPO), "-create", str(arm), str(intel), "-output", str(fat)], check=True)
    assert struct.unpack(">I", fat.read_bytes()[:4])[0] == macho.FAT_MAGIC
    assert macho.minimum_macos(fat) == (15, 0)


def test_the_older_version_command_is_read(tmp_path):
    old = tmp_path / "old.dylib"
    old.write_bytes(thin(macho.LC_VERSION_MIN_MACOSX, packed(10, 9), packed(10, 15)))
    assert macho.minimum_macos(old) == (10, 9)


def test_a_build_version_for_another_platform_is_not_macos(tmp_path):
    ios = tmp_path / "ios.dylib"
    ios.write_bytes(thin(macho.LC_BUILD_VERSION, 2, packed(17, 0), packed(17, 0), 0))
    assert macho.minimum_macos(ios) is None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"#!/bin/sh\necho not a binary\n",
        b"\x7fELF\x02\x01\x01" + bytes(60),
        # a Java class file starts with the fat magic, then its version (52 = Java 8)
        struct.pack(">IHH", macho.FAT_MAGIC, 0, 52) + bytes(40),
        struct.pack("<I", macho.MH_MAGIC_64) + bytes(4),  # cut short
    ],
)
def test_what_is_not_a_whole_mach_o_has_no_minimum(tmp_path, content):
    path = tmp_path / "file"
    path.write_bytes(content)
    assert macho.minimum_macos(path) is None


def test_too_new_lists_only_what_needs_a_newer_macos(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "ok.dylib").write_bytes(
        thin(macho.LC_BUILD_VERSION, 1, packed(14, 0), packed(15, 0), 0)
    )
    (tmp_path / "lib" / "new.so").write_bytes(
        thin(macho.LC_BUILD_VERSION, 1, packed(15, 4), packed(15, 4), 0)
    )
    (tmp_path / "notes.txt").write_text("text")
    assert macho.too_new(tmp_path, (14, 0)) == [(tmp_path / "lib" / "new.so", (15, 4))]


# --- the bundle ---------------------------------------------------------------------------------
def test_info_plist_promises_the_minimum_the_build_targets():
    plist = plistlib.loads((ROOT / "packaging" / "macos" / "Info.plist").read_bytes())
    assert plist["LSMinimumSystemVersion"] == llama_runtimes.MACOS_MINIMUM
    metal = llama_runtimes.RECIPES["metal"]
    assert f"-DCMAKE_OSX_DEPLOYMENT_TARGET={llama_runtimes.MACOS_MINIMUM}" in metal.cmake_args


def test_a_bundle_with_a_binary_for_a_newer_macos_is_refused(tmp_path):
    lib = tmp_path / "Parlor.app" / "Contents" / "Frameworks" / "numpy" / ".dylibs"
    lib.mkdir(parents=True)
    (lib / "libblas.dylib").write_bytes(
        thin(macho.LC_BUILD_VERSION, 1, packed(15, 0), packed(15, 0), 0)
    )
    with pytest.raises(build.BuildError) as refused:
        build.check_macos_minimum(tmp_path / "Parlor.app")
    text = str(refused.value)
    assert "numpy/.dylibs/libblas.dylib needs macOS 15.0" in text
    assert f"Info.plist promises {llama_runtimes.MACOS_MINIMUM}" in text
    (lib / "libblas.dylib").write_bytes(
        thin(macho.LC_BUILD_VERSION, 1, packed(13, 0), packed(15, 0), 0)
    )
    build.check_macos_minimum(tmp_path / "Parlor.app")  # no newer than promised: accepted
