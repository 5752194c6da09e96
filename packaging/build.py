"""Build Parlor's installers for the current OS into dist/.

    python packaging/build.py [--runtime vulkan|cpu|cuda|metal] [--cuda-arch ARCHS]
                              [--skip-pyinstaller]

Linux: dist/parlor_<version>_<arch>.deb and dist/parlor-<version>-linux-<machine>.tar.gz.
Windows: dist/Parlor-<version>-windows-x64-setup.exe (Inno Setup's ISCC must be installed).
macOS: dist/Parlor-<version>-macos-<machine>.dmg (hdiutil and iconutil, part of macOS).

The version comes from pyproject.toml only. llama-cpp-python is compiled for the runtime
(default: Vulkan plus every CPU variant on Linux and Windows, Metal on macOS) into its own
cached environment under build/runtimes/, and that environment is what gets frozen; the
llama.cpp it holds is checked for portability first (see llama_check.py and
llama_runtimes.py). `--use-installed-llama` freezes this Python's llama.cpp instead, after
the same check.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
APP_NAME = "parlor"
sys.path.insert(0, str(PACKAGING))  # the sibling modules, also when loaded by parlor.spec

import llama_check  # noqa: E402
import llama_runtimes  # noqa: E402
import macho  # noqa: E402
import vulkan_headers  # noqa: E402


class BuildError(Exception):
    """A build step failed; the message says which and why."""


def read_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The [project] version from pyproject.toml, the one place it is written."""
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib

        return tomllib.loads(text)["project"]["version"]
    except ModuleNotFoundError:  # Python 3.10: no tomllib; the line is simple enough
        section = text.split("[project]", 1)[1].split("\n[", 1)[0]
        match = re.search(r'^version\s*=\s*"([^"]+)"', section, re.M)
        if not match:
            raise BuildError(f"{pyproject}: no version in [project]") from None
        return match.group(1)


def debian_version(version: str) -> str:
    """PEP 440 to Debian ordering: 1.0rc1 must sort before 1.0, so it becomes 1.0~rc1."""
    return re.sub(r"(\d)((?:a|b|rc|dev)\d*)", r"\1~\2", version).replace(".dev", "~dev")


def run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], **kwargs)
    if result.returncode != 0:
        raise BuildError(f"{cmd[0]} failed with exit code {result.returncode}")


# --- steps shared by all systems ---------------------------------------------------------
def llama_version() -> str:
    """The llama-cpp-python release the runtimes are compiled from: the one tested here."""
    from importlib import metadata

    return metadata.version("llama-cpp-python")


def prepare_runtime(
    runtime: str, work: Path, dry_run: bool = False, cuda_arch: str | None = None
) -> Path:
    """Make (or reuse) the runtime's build environment; its Python is what gets frozen."""
    recipe = llama_runtimes.RECIPES[runtime]
    if runtime == "vulkan" and not dry_run:
        recipe = _with_vulkan_headers(recipe, work)
    if runtime == "cuda":
        recipe = llama_runtimes.with_cuda_architectures(recipe, cuda_arch)
    env = llama_runtimes.build_env(work, runtime)
    stamp = llama_runtimes.stamp_for(recipe, llama_version(), platform.python_version())
    cached = llama_runtimes.is_cached(env, stamp)
    print(
        f"{runtime} runtime: {env.root} ({'cached' if cached else 'to be built'}); "
        f"CMAKE_ARGS={recipe.cmake_env!r}"
    )
    if not cached and not dry_run:
        for folder in env.scratch:
            shutil.rmtree(folder, ignore_errors=True)
    for step in llama_runtimes.steps(env, recipe, llama_version(), ROOT, sys.executable, cached):
        if dry_run:
            print("  " + step.show())
        else:
            run(list(step.argv), env=dict(os.environ, **step.env))
    if not dry_run:
        places = _llama_places(env.python)
        llama_runtimes.gather_backend_modules(places["site_packages"], env.python.parent)
        if runtime == "cuda":
            llama_runtimes.gather_cuda_libraries(places["site_packages"])
        env.stamp.write_text(json.dumps(stamp), encoding="utf-8")
    print(f"Users of the {runtime} build need: {recipe.user_needs}")
    return env.python


def _with_vulkan_headers(recipe: llama_runtimes.Recipe, work: Path) -> llama_runtimes.Recipe:
    """The recipe, pointed at newer Vulkan headers when the ones CMake would find are too old."""
    try:
        include = vulkan_headers.ensure_headers(work)
    except (OSError, ValueError, LookupError) as exc:
        raise BuildError(
            f"this llama.cpp needs Vulkan headers {vulkan_headers.MIN_HEADER_VERSION} or newer "
            f"and they could not be fetched from Debian's archive ({exc}); install a Vulkan "
            "SDK that new and set VULKAN_SDK"
        ) from exc
    if include is None:
        return recipe
    print(
        f"Vulkan headers: {include} (the ones found are older than "
        f"{vulkan_headers.MIN_HEADER_VERSION})"
    )
    return dataclasses.replace(
        recipe, cmake_args=(*recipe.cmake_args, f"-DVulkan_INCLUDE_DIR={include}")
    )


def _llama_places(python: Path | str) -> dict[str, Path]:
    """Where `python` keeps llama_cpp, found without importing it (that loads llama.cpp)."""
    code = (
        "import importlib.util, json; s = importlib.util.find_spec('llama_cpp'); "
        "print(json.dumps(list(s.submodule_search_locations) if s else []))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    found = json.loads(done.stdout or "[]") if done.returncode == 0 else []
    if not found:
        raise BuildError(f"{python} has no llama_cpp package: {done.stderr.strip()}")
    package = Path(found[0])
    lib = Path(os.environ.get("LLAMA_CPP_LIB_PATH") or package / "lib")
    return {"site_packages": package.parent, "lib": lib}


def check_llama(python: Path | str, runtime: str, allow_unportable: bool) -> None:
    """Refuse a llama.cpp that would crash on other CPUs or lack the runtime's backend."""
    places = _llama_places(python)
    build = llama_check.read_build(places["site_packages"], places["lib"])
    found = llama_check.problems(build, runtime, platform.machine())
    if not found:
        print(f"llama.cpp is portable: CPU variants {', '.join(sorted(build.cpu_variants))}")
        return
    message = llama_check.refusal(build, found, runtime, places["lib"])
    if not allow_unportable:
        raise BuildError(message)
    print("WARNING (--allow-unportable): " + message, file=sys.stderr)


def check_bundle_libraries(bundle: Path, runtime: str, allow_unportable: bool) -> None:
    """The frozen folder must still hold the CPU variants (and the GPU backend)."""
    libs = next(bundle.rglob("llama_cpp/lib"), None)
    names = tuple(sorted(p.name for p in libs.iterdir())) if libs else ()
    found = llama_check._library_problems(
        llama_check.LlamaBuild({}, names), runtime, platform.machine()
    )
    if found and not allow_unportable:
        raise BuildError(f"the bundle {bundle} lost llama.cpp libraries: " + "; ".join(found))


def check_macos_minimum(app: Path, minimum: str = llama_runtimes.MACOS_MINIMUM) -> None:
    """Every binary in the app must load on the macOS Info.plist promises (packaging/macho.py)."""
    found = macho.too_new(app, macho.parse_version(minimum))
    if found:
        listed = "; ".join(
            f"{path.relative_to(app).as_posix()} needs macOS {macho.version_text(needs)}"
            for path, needs in found[:10]
        )
        raise BuildError(
            f"{len(found)} binaries in {app} need a newer macOS than Info.plist promises "
            f"{minimum}: {listed}. Build on (or install wheels for) macOS {minimum}, or raise "
            "MACOS_MINIMUM in packaging/llama_runtimes.py and Info.plist together."
        )


def sync_metadata(version: str) -> None:
    """Make the installed parlor dist-info (copied into the bundle) match pyproject.toml."""
    from importlib import metadata

    try:
        installed = metadata.version("parlor")
    except metadata.PackageNotFoundError:
        installed = None
    if installed != version:
        run([sys.executable, "-m", "pip", "install", "--no-deps", "-e", str(ROOT)])


def freeze(dist: Path, work: Path, icon: Path | None, python: Path | str = sys.executable) -> Path:
    env = dict(os.environ)
    if icon:
        env["PARLOR_ICON"] = str(icon)
    run(
        [
            python,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            dist,
            "--workpath",
            work / "pyinstaller",
            PACKAGING / "parlor.spec",
        ],
        env=env,
        cwd=ROOT,
    )
    return dist / APP_NAME


def folder_size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())


# --- Linux ----------------------------------------------------------------------------
def build_deb(bundle: Path, dist: Path, work: Path, version: str) -> Path:
    """A .deb: /opt/parlor, /usr/bin/parlor, the menu entry and the hicolor icon."""
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    root = work / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(bundle, root / "opt" / APP_NAME, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / APP_NAME).symlink_to(f"/opt/{APP_NAME}/{APP_NAME}")
    _install(PACKAGING / "linux" / "parlor.desktop", root / "usr/share/applications", 0o644)
    icon_dir = root / "usr/share/icons/hicolor/256x256/apps"
    _install(ROOT / "resources" / "parlor.png", icon_dir, 0o644)
    doc = root / "usr/share/doc" / APP_NAME
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Parlor\nLicense: MIT\n", encoding="utf-8")
    debian = root / "DEBIAN"
    debian.mkdir()
    control = (PACKAGING / "linux" / "control.in").read_text(encoding="utf-8")
    # The bundle's Python and wheels were linked against the build machine's glibc: that
    # version is the floor (build on the oldest distribution you support).
    glibc = platform.libc_ver()[1] or "2.31"
    control = (
        control.replace("@VERSION@", debian_version(version))
        .replace("@ARCH@", arch)
        .replace("@GLIBC@", glibc)
        .replace("@INSTALLED_SIZE@", str(folder_size(root) // 1024 + 1))
    )
    (debian / "control").write_text(control, encoding="utf-8")
    _install(PACKAGING / "linux" / "postrm", debian, 0o755)
    _normalize_modes(root)
    deb = dist / f"{APP_NAME}_{debian_version(version)}_{arch}.deb"
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, deb])
    return deb


def _install(src: Path, dest_dir: Path, mode: int) -> None:
    dest_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest_dir / src.name)
    (dest_dir / src.name).chmod(mode)


def _normalize_modes(root: Path) -> None:
    """Folders 755, files 644 unless executable (then 755): what dpkg and lintian expect."""
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        executable = path.is_dir() or path.stat().st_mode & 0o111
        path.chmod(0o755 if executable else 0o644)


# The portable folder's entry starts the launcher next to it. A .desktop file cannot name a
# path relative to itself, but Exec gets the entry's own location as %k (a path or a file://
# URI), and the shell takes its folder. Escaped twice, as the Desktop Entry spec asks: the
# file's doubled backslashes are single ones in the string value, and those escape `"` and
# `$` inside the quoted argument.
TARBALL_EXEC = r'Exec=sh -c "exec \\"\\$(dirname \\"\\${0#file://}\\")/parlor\\"" %k'


def tarball_desktop_entry() -> str:
    """The .deb's desktop entry with Exec pointing at the portable folder's own launcher
    (the .deb's `Exec=parlor` finds nothing on PATH after unpacking a tarball)."""
    text = (PACKAGING / "linux" / "parlor.desktop").read_text(encoding="utf-8")
    lines = [TARBALL_EXEC if ln.startswith("Exec=") else ln for ln in text.splitlines()]
    return "\n".join(lines) + "\n"


def _add_text(tar: tarfile.TarFile, arcname: str, text: str, mode: int) -> None:
    data = text.encode("utf-8")
    info = tarfile.TarInfo(arcname)
    info.size, info.mode, info.mtime = len(data), mode, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def build_tarball(bundle: Path, dist: Path, version: str) -> Path:
    """A portable folder: unpack anywhere and run ./parlor (or open parlor.desktop;
    ./install-desktop-entry.sh adds it to the applications menu)."""
    name = f"{APP_NAME}-{version}-linux-{platform.machine()}"
    out = dist / f"{name}.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(bundle, arcname=name)
        _add_text(tar, f"{name}/parlor.desktop", tarball_desktop_entry(), 0o755)
        tar.add(
            PACKAGING / "linux" / "install-desktop-entry.sh",
            arcname=f"{name}/install-desktop-entry.sh",
        )
        tar.add(ROOT / "resources" / "parlor.png", arcname=f"{name}/parlor.png")
    return out


# --- Windows --------------------------------------------------------------------------
def png_to_ico(png: Path, ico: Path) -> Path:
    """An .ico holding the 256x256 PNG as is (Windows Vista+ reads PNG entries)."""
    data = png.read_bytes()
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(data), 6 + 16)  # 0 means 256
    ico.parent.mkdir(parents=True, exist_ok=True)
    ico.write_bytes(header + entry + data)
    return ico


def build_windows_installer(bundle: Path, dist: Path, work: Path, version: str) -> Path:
    iscc = os.environ.get("ISCC") or shutil.which("iscc") or shutil.which("ISCC")
    default = Path(os.environ.get("ProgramFiles(x86)", r"C:\Program Files (x86)"))
    iscc = iscc or str(default / "Inno Setup 6" / "ISCC.exe")
    if not Path(iscc).exists() and not shutil.which(iscc):
        raise BuildError(
            "Inno Setup's ISCC.exe not found: install Inno Setup 6 "
            "(choco install innosetup) or set ISCC to its path"
        )
    run(
        [
            iscc,
            f"/DAppVersion={version}",
            f"/DSourceDir={bundle}",
            f"/DOutputDir={dist}",
            f"/DIconFile={png_to_ico(ROOT / 'resources' / 'parlor.png', work / 'parlor.ico')}",
            PACKAGING / "windows" / "parlor.iss",
        ]
    )
    return dist / f"Parlor-{version}-windows-x64-setup.exe"


# --- macOS ----------------------------------------------------------------------------
def build_dmg(dist: Path, work: Path, version: str) -> Path:
    dmg = dist / f"Parlor-{version}-macos-{platform.machine()}.dmg"
    run(["bash", PACKAGING / "macos" / "make_dmg.sh", dist / "Parlor.app", dmg, work / "dmg"])
    return dmg


def make_icon(work: Path) -> Path | None:
    png = ROOT / "resources" / "parlor.png"
    if sys.platform == "win32":
        return png_to_ico(png, work / "parlor.ico")
    if sys.platform == "darwin":
        icns = work / "parlor.icns"
        run(["bash", PACKAGING / "macos" / "make_icns.sh", png, icns])
        return icns
    return None


def build(args: argparse.Namespace) -> list[Path]:
    version = read_version()
    dist, work = args.dist.resolve(), args.work.resolve()
    dist.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    runtime = args.runtime or llama_runtimes.default_runtime()
    bundle = dist / APP_NAME
    if not args.skip_pyinstaller:
        if args.use_installed_llama:
            python: Path | str = sys.executable
            sync_metadata(version)
        else:
            python = prepare_runtime(runtime, work, args.dry_run, args.cuda_arch)
        if args.dry_run:
            return []
        check_llama(python, runtime, args.allow_unportable)
        bundle = freeze(dist, work, make_icon(work), python)
    if not bundle.is_dir():
        raise BuildError(f"{bundle} does not exist: run without --skip-pyinstaller first")
    check_bundle_libraries(bundle, runtime, args.allow_unportable)
    print(f"one-folder build: {bundle} ({folder_size(bundle) / 1e6:.1f} MB)")
    if sys.platform.startswith("linux"):
        return [build_deb(bundle, dist, work, version), build_tarball(bundle, dist, version)]
    if sys.platform == "win32":
        return [build_windows_installer(bundle, dist, work, version)]
    if sys.platform == "darwin":
        check_macos_minimum(dist / "Parlor.app")
        return [build_dmg(dist, work, version)]
    raise BuildError(f"no installer recipe for {sys.platform}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runtime",
        "--gpu",
        choices=sorted(llama_runtimes.RECIPES),
        help="llama.cpp runtime to compile and bundle (default: vulkan on "
        "Linux and Windows, metal on macOS; all carry the CPU variants)",
    )
    parser.add_argument(
        "--cuda-arch",
        metavar="ARCHS",
        help="CUDA architectures for --runtime cuda, as CMAKE_CUDA_ARCHITECTURES "
        "(89-real; several with commas); default: llama.cpp's own list, for releases",
    )
    parser.add_argument(
        "--use-installed-llama",
        action="store_true",
        help="freeze this Python's llama-cpp-python instead of building one",
    )
    parser.add_argument(
        "--allow-unportable",
        action="store_true",
        help="package a llama.cpp that fails the portability check anyway "
        "(for testing the installer itself; never for a release)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the runtime build commands and stop"
    )
    parser.add_argument(
        "--skip-pyinstaller",
        action="store_true",
        help="package the existing dist/parlor folder again",
    )
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument("--work", type=Path, default=ROOT / "build", help="scratch folder")
    parser.add_argument(
        "--print-version",
        action="store_true",
        help="print the version from pyproject.toml and exit",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.print_version:
        print(read_version())
        return 0
    try:
        outputs = build(args)
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    for out in outputs:
        print(f"built {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
