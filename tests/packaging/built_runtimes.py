"""packaging/build.py for the tests, where the runtime tests find a llama.cpp runtime it
compiled, and how they run its frozen bundle on an emulated older CPU."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_build_module():
    """packaging/build.py as a module (it is a script, not a package); loading it puts
    packaging/ on sys.path, so its siblings (llama_check, macho, ...) come with it."""
    spec = importlib.util.spec_from_file_location("parlor_build", ROOT / "packaging/build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runtime_folder(runtime: str) -> Path:
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    return ROOT / "build" / "runtimes" / f"{runtime}-{sys.platform}-{tag}"


def runtime_python(runtime: str, variable: str) -> Path | None:
    """The runtime's Python (`variable` in the environment names another), None when it has
    not been built: build.py writes the stamp last, once the wheel is built and installed."""
    given = os.environ.get(variable)
    if given:
        return Path(given)
    built = runtime_folder(runtime)
    return built / "venv" / "bin" / "python" if (built / "stamp.json").exists() else None


QEMU = shutil.which("qemu-x86_64")


def qemu_emulates_avx2() -> bool:
    """QEMU's emulator runs AVX2 code from 7.2 on; an older one masks it from -cpu Haswell."""
    if QEMU is None:
        return False
    banner = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"version (\d+)\.(\d+)", banner)
    return bool(found) and (int(found[1]), int(found[2])) >= (7, 2)


def frozen_under_qemu(bundle: Path, cpu: str, env: dict[str, str], *args: str) -> str:
    """The frozen app's stdout, run as `cpu` by qemu-user. PyInstaller's Linux bootloader
    re-executes itself once (to set LD_LIBRARY_PATH), and qemu-user runs an exec'd program
    natively; so the second stage is started directly, with the variables the bootloader
    hands it."""
    env = dict(
        env,
        _PYI_PARENT_PROCESS_LEVEL="1",
        _PYI_ARCHIVE_FILE=str(bundle / "parlor"),
        _PYI_APPLICATION_HOME_DIR=str(bundle / "_internal"),
        LD_LIBRARY_PATH=str(bundle / "_internal"),
    )
    done = subprocess.run(
        [str(QEMU), "-cpu", cpu, str(bundle / "parlor"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    return done.stdout
