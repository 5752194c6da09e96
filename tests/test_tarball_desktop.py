"""The portable tarball's desktop entry starts the tarball's own launcher, wherever the folder
was unpacked (the .deb's `Exec=parlor` finds nothing on PATH there). Fast: no build, the
entry and the install script are run against a fake unpacked folder."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not shutil.which("sh"), reason="Linux desktop entries"
)


def _build_module():
    spec = importlib.util.spec_from_file_location("parlor_build", ROOT / "packaging/build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exec_argv(line: str, location: str) -> list[str]:
    """An Exec line as a launcher reads it (Desktop Entry spec 1.5, "The Exec key"): the
    string value's escapes, then quoted arguments with their own escapes, then field codes."""
    value = line.removeprefix("Exec=").replace("\\\\", "\\")
    args, current, quoted, escaped, started = [], "", False, False, False
    for char in value:
        if escaped:
            current, escaped = current + char, False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted, started = not quoted, True
        elif char == " " and not quoted:
            if current or started:
                args.append(current)
            current, started = "", False
        else:
            current += char
    args.append(current)
    return [location if a == "%k" else a.replace("%%", "%") for a in args]


@pytest.fixture
def unpacked(tmp_path) -> Path:
    """A portable folder whose launcher only says that it ran, in a path with a space."""
    folder = tmp_path / "my apps" / "parlor-1.0-linux-x86_64"
    folder.mkdir(parents=True)
    launcher = folder / "parlor"
    launcher.write_text(f'#!/bin/sh\necho "$0" > "{tmp_path}/ran"\n')
    launcher.chmod(0o755)
    (folder / "parlor.desktop").write_text(_build_module().tarball_desktop_entry())
    shutil.copy(ROOT / "packaging/linux/install-desktop-entry.sh", folder)
    shutil.copy(ROOT / "resources/parlor.png", folder)
    return folder


def _exec_line(entry: Path) -> str:
    return next(ln for ln in entry.read_text().splitlines() if ln.startswith("Exec="))


@pytest.mark.parametrize("prefix", ["", "file://"])
def test_the_entry_starts_the_launcher_next_to_it(unpacked, tmp_path, prefix):
    """%k is the entry's path (GLib), or a file:// form of it; a %-encoded URI is not
    decoded (a known limit)."""
    entry = unpacked / "parlor.desktop"
    subprocess.run(exec_argv(_exec_line(entry), prefix + str(entry)), check=True, timeout=10)
    assert (tmp_path / "ran").read_text().strip() == str(unpacked / "parlor")


def test_the_rest_of_the_entry_is_the_debs(unpacked):
    deb = (ROOT / "packaging/linux/parlor.desktop").read_text().splitlines()
    ours = (unpacked / "parlor.desktop").read_text().splitlines()
    assert [ln for ln in ours if not ln.startswith("Exec=")] == [
        ln for ln in deb if not ln.startswith("Exec=")
    ]


def test_install_script_adds_a_menu_entry_with_absolute_paths(unpacked, tmp_path):
    data = tmp_path / "data"
    subprocess.run(
        ["sh", str(unpacked / "install-desktop-entry.sh")],
        check=True,
        timeout=10,
        env={**os.environ, "XDG_DATA_HOME": str(data)},
        capture_output=True,
    )
    entry = data / "applications" / "parlor.desktop"
    lines = entry.read_text().splitlines()
    assert f"Icon={unpacked}/parlor.png" in lines
    assert (data / "icons/hicolor/256x256/apps/parlor.png").is_file()
    subprocess.run(exec_argv(_exec_line(entry), str(entry)), check=True, timeout=10)
    assert (tmp_path / "ran").read_text().strip() == str(unpacked / "parlor")
