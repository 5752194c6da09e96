"""The Linux installer, end to end: build the .deb once, install it into a temporary root,
run the installed binary's smoke test, and check what a desktop needs from it.

Building the PyInstaller folder takes minutes, so everything here is `slow` and shares one
build per session. Set PARLOR_DEB to an already built .deb (CI builds it in an earlier step)
to test that file instead of building.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

from tests.packaging.built_runtimes import load_build_module

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or not shutil.which("dpkg-deb"),
        reason="the .deb is built and checked on Debian-family Linux only",
    ),
]


build = load_build_module()
VERSION = build.read_version()


@pytest.fixture(scope="session")
def deb_path(tmp_path_factory) -> Path:
    given = os.environ.get("PARLOR_DEB")
    if given:
        return Path(given).resolve()
    out = tmp_path_factory.mktemp("installer")
    # This checks the installer, not the runtime: it freezes the llama.cpp installed here
    # (built for this CPU, so the portability check is waived) instead of compiling one.
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging/build.py"),
            "--dist",
            str(out / "dist"),
            "--work",
            str(out / "build"),
            "--use-installed-llama",
            "--allow-unportable",
        ],
        check=True,
        cwd=ROOT,
        timeout=1800,
    )
    return out / "dist" / f"parlor_{build.debian_version(VERSION)}_amd64.deb"


@pytest.fixture(scope="session")
def installed_root(deb_path, tmp_path_factory) -> Path:
    """The package's files unpacked the way dpkg would lay them out."""
    root = tmp_path_factory.mktemp("root")
    subprocess.run(["dpkg-deb", "-x", str(deb_path), str(root)], check=True)
    return root


def _field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def _depends(deb: Path) -> set[str]:
    """Every package named in Depends, alternatives included, versions dropped."""
    names = re.split(r"[,|]", _field(deb, "Depends"))
    return {re.sub(r"\(.*?\)", "", n).strip() for n in names if n.strip()}


def test_control_fields_name_version_and_gui_dependencies(deb_path):
    info = subprocess.run(
        ["dpkg-deb", "--info", str(deb_path)], capture_output=True, text=True, check=True
    ).stdout
    assert "Package: parlor" in info
    assert _field(deb_path, "Version") == build.debian_version(VERSION)
    assert _field(deb_path, "Architecture") == "amd64"
    assert deb_path.name == f"parlor_{build.debian_version(VERSION)}_amd64.deb"
    assert {"libxcb-cursor0", "libegl1", "libxkbcommon0", "libgomp1"} <= _depends(deb_path)


def test_layout_launcher_menu_entry_and_icon(installed_root):
    binary = installed_root / "opt/parlor/parlor"
    assert binary.is_file() and os.access(binary, os.X_OK)
    launcher = installed_root / "usr/bin/parlor"
    assert launcher.is_symlink() and os.readlink(launcher) == "/opt/parlor/parlor"
    desktop = (installed_root / "usr/share/applications/parlor.desktop").read_text()
    assert "Exec=parlor" in desktop and "Icon=parlor" in desktop
    icon = installed_root / "usr/share/icons/hicolor/256x256/apps/parlor.png"
    width, height = struct.unpack(">II", icon.read_bytes()[16:24])  # the PNG IHDR chunk
    assert (width, height) == (256, 256)
    assert (installed_root / "opt/parlor/_internal/resources/parlor.png").is_file()


def test_bundle_leaves_out_unused_qt_and_duplicate_llama_libraries(installed_root):
    internal = installed_root / "opt/parlor/_internal"
    names = [p.name for p in internal.rglob("*")]
    for unused in (
        "libQt6Qml",
        "libQt6Quick",
        "libQt6WebEngine",
        "QtQml",
        "libqopensslbackend",
        "libQt63D",
        "libQt6Multimedia",
        "libqeglfs",
        "libqvnc",
        "libqgtk3",
    ):
        assert not [n for n in names if n.startswith(unused)], unused
    assert not (internal / "PySide6/Qt/translations").exists()
    lib = internal / "llama_cpp/lib"
    real = [p for p in lib.iterdir() if not p.is_symlink()]
    assert len({p.read_bytes() for p in real}) == len(real), "a llama.cpp library is doubled"
    for name in ("libllama.so", "libggml.so", "libggml-base.so.0", "libggml-cpu.so.0"):
        assert (lib / name).resolve().is_file(), name  # the names ctypes and ld.so ask for


def test_bundle_has_every_qt_module_the_app_imports(installed_root):
    # A Qt module left out of the spec only fails when its code path runs: catch it here.
    used = {
        m
        for f in (ROOT / "app").rglob("*.py")
        for m in re.findall(r"PySide6\.(Qt\w+)", f.read_text(encoding="utf-8"))
    }
    assert {"QtCore", "QtGui", "QtWidgets"} <= used
    pyside = installed_root / "opt/parlor/_internal/PySide6"
    missing = [m for m in sorted(used) if not list(pyside.glob(f"{m}.*"))]
    assert not missing, f"the app imports {missing} but the spec leaves them out"


def _needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)


def _owner(soname: str) -> str | None:
    """The installed Debian package that ships this library for this machine's ABI, if any:
    with 32-bit libraries installed too (clang brings libc6-i386), dpkg names both."""
    found = subprocess.run(["dpkg", "-S", f"*/{soname}"], capture_output=True, text=True)
    if found.returncode != 0:
        return None
    lines = found.stdout.splitlines()
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    native = [line for line in lines if multiarch and f"/{multiarch}/" in line]
    return (native or lines)[0].split(":", 1)[0]


@pytest.mark.skipif(not shutil.which("readelf"), reason="readelf (binutils) is not installed")
def test_depends_cover_every_system_library_the_bundle_links(deb_path, installed_root):
    app = installed_root / "opt/parlor"
    bundled = {p.name for p in app.rglob("*") if ".so" in p.name}
    files = [
        p
        for p in app.rglob("*")
        if p.is_file() and not p.is_symlink() and (".so" in p.name or p.name == "parlor")
    ]
    external = {n for f in files for n in _needed(f)} - bundled
    depends = {d.removesuffix("t64") for d in _depends(deb_path)}
    owners = {soname: _owner(soname) for soname in sorted(external)}
    missing = {s: o for s, o in owners.items() if o and o.removesuffix("t64") not in depends}
    assert not missing, f"libraries whose packages are not in Depends: {missing}"
    assert "libxcb-cursor.so.0" in external  # Qt's xcb plugin really links it


def test_desktop_file_validates(installed_root):
    tool = shutil.which("desktop-file-validate")
    if not tool:
        pytest.skip("desktop-file-validate is not installed (apt package desktop-file-utils)")
    desktop = installed_root / "usr/share/applications/parlor.desktop"
    result = subprocess.run([tool, str(desktop)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout.lower()


def _run_installed(installed_root: Path, tmp_path: Path, *args: str):
    env = dict(os.environ, PARLOR_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="offscreen")
    env.pop("PYTHONPATH", None)  # the frozen app must not lean on this checkout
    return subprocess.run(
        [str(installed_root / "opt/parlor/parlor"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )


def test_installed_binary_reports_the_pyproject_version(installed_root, tmp_path):
    result = _run_installed(installed_root, tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Parlor {VERSION}"


def test_installed_binary_chats_through_a_spawned_llama_process(
    installed_root, tmp_path, tiny_llama_path
):
    # The local engine runs llama.cpp in a multiprocessing-spawn child: a reply proves the
    # frozen child started, found llama_cpp's libraries and streamed tokens back.
    result = _run_installed(
        installed_root,
        tmp_path,
        "--smoke-test",
        "--model",
        str(tiny_llama_path),
        "--max-tokens",
        "8",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("{")][-1]
    report = json.loads(line)
    assert report["tokens"] > 0
    assert report["reply"].strip()
    assert (tmp_path / "home").is_dir()  # PARLOR_HOME was honoured, not the real home


def test_dpkg_installs_and_removes_cleanly(deb_path, tmp_path):
    root = tmp_path / "root"
    admin = root / "var/lib/dpkg"
    for sub in ("info", "updates"):
        (admin / sub).mkdir(parents=True)
    for name in ("status", "available"):
        (admin / name).touch()
    dpkg = [
        "dpkg",
        f"--root={root}",
        "--force-depends",
        "--force-script-chrootless",
        "--force-not-root",
        "--log=/dev/null",
    ]
    subprocess.run([*dpkg, "-i", str(deb_path)], check=True, capture_output=True)
    assert (root / "opt/parlor/parlor").is_file()
    subprocess.run([*dpkg, "--purge", "parlor"], check=True, capture_output=True)
    left = [
        p
        for p in root.rglob("*")
        if admin not in p.parents and p != admin and not admin.is_relative_to(p)
    ]
    assert not left, f"left behind after removal: {left[:10]}"


def test_portable_tarball_holds_the_same_folder(deb_path):
    tarball = deb_path.parent / f"parlor-{VERSION}-linux-x86_64.tar.gz"
    if not tarball.exists():
        pytest.skip(f"{tarball.name} was not built next to {deb_path.name}")
    top = f"parlor-{VERSION}-linux-x86_64"
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members[f"{top}/parlor"].isfile()
    assert members[f"{top}/_internal/llama_cpp/lib/libllama.so"].issym()
    assert f"{top}/parlor.desktop" in members
