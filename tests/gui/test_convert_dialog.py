""" "Open GGUF…" of an old split-expert MoE file: converted in the background, then ready."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget

from app.core.gguf.header import moe_layout, read_header
from app.core.hub.downloads import RemoteFile
from app.core.hub.manifest import Manifest, read_manifest, write_manifest
from app.gui.models.convert_dialog import ConvertDialog, load_check, open_gguf
from tests.tiny_models import write_tiny_llama


@pytest.fixture
def parent(qtbot) -> QWidget:
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


@pytest.fixture
def legacy(tmp_path) -> Path:
    return write_tiny_llama(tmp_path / "old-moe.gguf", n_expert=4, legacy_experts=True)


def opened(qtbot, path, parent, **kwargs):
    """`open_gguf`, once its header read (off the GUI thread) has shown the dialog."""
    opener = open_gguf(path, parent, **kwargs)
    qtbot.waitUntil(lambda: opener.dialog is not None, timeout=10000)
    return opener


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_current_layout_is_ready_at_once_without_a_dialog(qtbot, parent, tmp_path):
    path = write_tiny_llama(tmp_path / "dense.gguf")
    opener = open_gguf(path, parent)
    with qtbot.waitSignal(opener.ready, timeout=5000) as ready:
        pass
    assert ready.args == [str(path)]
    assert opener.dialog is None


def test_a_broken_file_fails_with_a_reason(qtbot, parent, tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00")
    opener = open_gguf(path, parent)
    with qtbot.waitSignal(opener.failed, timeout=5000) as failed:
        pass
    assert "broken.gguf" in failed.args[0]


@pytest.mark.slow
def test_legacy_file_is_converted_checked_by_llama_cpp_and_ready(qtbot, parent, legacy):
    opener = opened(qtbot, legacy, parent, verify=load_check)
    dialog = opener.dialog
    assert isinstance(dialog, ConvertDialog) and dialog.isVisible()
    assert not dialog.isModal()  # the main window stays usable
    assert "older mixture-of-experts layout" in dialog.intro.text()
    dialog.remove_button.setChecked(True)
    with qtbot.waitSignal(opener.ready, timeout=60000) as ready:
        dialog.convert_button.click()
    path = Path(ready.args[0])
    assert path == legacy
    assert moe_layout(read_header(path)) == "merged"
    assert sorted(p.name for p in legacy.parent.iterdir()) == ["old-moe.gguf"]


def test_keep_original_keeps_it_beside_the_converted_file(qtbot, parent, legacy):
    opener = opened(qtbot, legacy, parent, verify=None)
    before = _digest(legacy)
    assert opener.dialog.keep_button.isChecked()  # the safe choice is the default
    with qtbot.waitSignal(opener.ready, timeout=30000):
        opener.dialog.convert_button.click()
    kept = legacy.with_name("old-moe.legacy.gguf")
    assert _digest(kept) == before
    assert moe_layout(read_header(legacy)) == "merged"


def test_opening_a_downloaded_file_records_the_conversion_in_its_manifest(qtbot, parent, legacy):
    """The window's Open goes through the core's opening path, so the download code later
    knows the converted file as the install of the hub's original."""
    source = RemoteFile("old-moe.gguf", legacy.stat().st_size, sha256=_digest(legacy))
    write_manifest(legacy, Manifest.for_download("someone/repo", "main", source))
    opener = opened(qtbot, legacy, parent, verify=None)
    with qtbot.waitSignal(opener.ready, timeout=30000):
        opener.dialog.convert_button.click()
    manifest = read_manifest(legacy)
    assert manifest.is_install_of(source)
    assert manifest.conversion.sha256 == _digest(legacy)
    assert manifest.conversion.size == legacy.stat().st_size
    kept = read_manifest(legacy.with_name("old-moe.legacy.gguf"))
    assert kept.is_install_of(source) and kept.conversion is None


def test_cancel_mid_way_leaves_the_original_untouched(qtbot, parent, legacy):
    entered, release = threading.Event(), threading.Event()

    def slow_check(path: Path) -> bool:  # holds the job at the load check until released
        entered.set()
        release.wait(20)
        return True

    before = _digest(legacy)
    opener = opened(qtbot, legacy, parent, verify=slow_check)
    dialog = opener.dialog
    dialog.convert_button.click()
    qtbot.waitUntil(entered.is_set, timeout=20000)
    dialog.cancel_button.click()
    release.set()
    qtbot.waitUntil(lambda: dialog.state == "cancelled", timeout=20000)
    assert "original file is unchanged" in dialog.status.text()
    assert _digest(legacy) == before
    assert sorted(p.name for p in legacy.parent.iterdir()) == ["old-moe.gguf"]
    with qtbot.waitSignal(opener.cancelled, timeout=5000):
        dialog.cancel_button.click()  # now "Close"


def test_a_failed_load_check_keeps_the_original(qtbot, parent, legacy):
    before = _digest(legacy)
    opener = opened(qtbot, legacy, parent, verify=lambda _path: False)
    opener.dialog.convert_button.click()
    qtbot.waitUntil(lambda: opener.dialog.state == "failed", timeout=20000)
    assert "did not pass the load check" in opener.dialog.status.text()
    assert _digest(legacy) == before
