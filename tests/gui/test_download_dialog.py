"""The download dialog, driven offscreen against the fake hub on 127.0.0.1 and fake machines."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from app.core.appdata.llama_runtime import Backend, DeviceType, LlamaDevice, Runtime
from app.core.appdata.machine import GB, Gpu, Machine
from app.core.gguf.header import moe_layout, read_header, validate_gguf
from app.core.hub.catalog import load_catalog
from app.core.hub.downloads import Hub, human_size
from app.core.hub.lock import part_lock
from app.core.hub.manifest import read_manifest
from app.gui.models.download_dialog import DownloadDialog
from tests.gui.cut_text import cut_labels
from tests.hub_server import FakeHub, point_huggingface_hub_at
from tests.tiny_models import write_tiny_llama

REPO = "Kquant03/MistralTrix-4x9B-ERP-GGUF"
OTHER = "someone/other-GGUF"
NO_GPU_16 = Machine(16 * GB, None)
GPU_16_8 = Machine(16 * GB, None, (Gpu("Test GPU", 8 * GB, 8 * GB, "nvidia", "nvml"),))


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """The fake hub with huggingface_hub pointed at it, plain HTTP, and no token of ours."""
    with FakeHub() as hub:
        point_huggingface_hub_at(monkeypatch, hub.url, tmp_path)
        yield hub


@pytest.fixture(scope="module")
def dense_bytes(tmp_path_factory) -> bytes:
    return write_tiny_llama(tmp_path_factory.mktemp("dense") / "m.gguf").read_bytes()


@pytest.fixture(scope="module")
def legacy_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("legacy") / "m.gguf"
    return write_tiny_llama(path, n_expert=4, legacy_experts=True).read_bytes()


@pytest.fixture
def open_dialog(qtbot, fake, tmp_path):
    def make(machine: Machine, verify=None) -> DownloadDialog:
        hub = Hub(endpoint=fake.url, token=False)
        dialog = DownloadDialog(machine, load_catalog(), hub, tmp_path / "models", verify=verify)
        qtbot.addWidget(dialog)
        dialog.show()
        return dialog

    return make


def selected_quant(dialog: DownloadDialog) -> str:
    return dialog.current_choice().row.entry.quant


def test_a_gpu_the_probes_miss_but_llama_cpp_lists_is_not_called_no_gpu(open_dialog):
    """An Intel GPU on Linux: no probe sees it, the Vulkan runtime does."""
    arc = LlamaDevice("Vulkan", "Vulkan0", "Intel(R) Arc(TM) A770", DeviceType.GPU, 15e9, 16e9)
    cpu = LlamaDevice("CPU", "CPU", "CPU", DeviceType.CPU, 14 * GB, 16 * GB)
    runtime = Runtime((Backend("CPU", 1), Backend("Vulkan", 1)), (cpu, arc), True)
    dialog = open_dialog(Machine(16 * GB, None, (), runtime=runtime))
    text = dialog.machine_label.text()
    assert "no GPU found" not in text
    assert "llama.cpp: Vulkan: Intel(R) Arc(TM) A770, 15.0 GB free" in text


def test_16_gb_machine_preselects_q2_k(open_dialog):
    dialog = open_dialog(NO_GPU_16)
    assert selected_quant(dialog) == "Q2_K"
    assert dialog.why_label.text().startswith(
        "Recommended: Q2_K needs 12 GB, this machine can give 14 GB"
    )
    assert "16 GB RAM" in dialog.machine_label.text()
    assert "no GPU found" in dialog.machine_label.text()
    table = dialog.catalog_table
    assert table.item(0, 3).text() == "CPU only"  # fits, on the CPU
    assert table.item(1, 3).text() == "Doesn't fit"  # Q3_K_M needs 15.1 GB
    assert "recommended" in table.item(0, 0).text()


def test_gpu_machine_preselects_q4_k_m_partly_on_gpu(open_dialog):
    dialog = open_dialog(GPU_16_8)
    assert selected_quant(dialog) == "Q4_K_M"
    assert "Test GPU: 8 GB VRAM" in dialog.machine_label.text()
    row = dialog.catalog_table.choices.index(dialog.current_choice())
    assert dialog.catalog_table.item(row, 3).text() == "Partly on GPU"
    assert "partly on the GPU" in dialog.why_label.text()


def test_nothing_fits_on_8_gb_says_so_and_names_the_smallest(open_dialog):
    dialog = open_dialog(Machine(8 * GB, None))
    assert "Nothing fits this machine" in dialog.catalog_note.text()
    assert selected_quant(dialog) == "Q2_K"
    assert dialog.download_button.text() == "Download anyway"
    texts = {dialog.catalog_table.item(r, 3).text() for r in range(8)}
    assert texts == {"Doesn't fit"}


def test_softer_warning_when_free_memory_is_short(open_dialog):
    dialog = open_dialog(Machine(32 * GB, 14 * GB))
    assert selected_quant(dialog) == "Q6_K"
    row = dialog.catalog_table.choices.index(dialog.current_choice())
    assert "close other apps" in dialog.catalog_table.item(row, 5).text()
    assert "more than the memory free right now" in dialog.why_label.text()


def test_download_emits_model_ready_with_the_verified_file(
    qtbot, open_dialog, fake, dense_bytes, tmp_path
):
    fake.add_file(REPO, "ggml-model-q4_k_m.gguf", dense_bytes)
    dialog = open_dialog(GPU_16_8)
    qtbot.waitUntil(lambda: dialog.current_choice().layout == "dense", timeout=10000)
    assert dialog.layout_label.text() == ""  # current layout: nothing to announce
    with qtbot.waitSignal(dialog.model_ready, timeout=30000) as ready:
        dialog.download_button.click()
    path, n_gpu_layers, n_cpu_moe = ready.args
    assert n_cpu_moe == 0  # a dense model: no experts to keep in RAM
    assert Path(path) == tmp_path / "models" / "ggml-model-q4_k_m.gguf"
    assert hashlib.sha256(Path(path).read_bytes()).digest() == hashlib.sha256(dense_bytes).digest()
    validate_gguf(path)
    assert n_gpu_layers == 1  # 8 of 19 GB on the GPU: 1 of the tiny model's 2 layers
    assert dialog.state == "ready"
    gets = len(fake.ranges("ggml-model-q4_k_m.gguf"))
    with qtbot.waitSignal(dialog.model_ready, timeout=10000) as again:
        dialog.download_button.click()  # already in the models folder: nothing to fetch
    assert again.args == [path, 1, 0]
    assert len(fake.ranges("ggml-model-q4_k_m.gguf")) == gets


def test_cancel_keeps_the_part_and_no_final_file_then_resumes(
    qtbot, open_dialog, fake, dense_bytes, tmp_path
):
    fake.add_file(REPO, "ggml-model-q2_k.gguf", dense_bytes)
    fake.chunk, fake.delay = 16 * 1024, 0.05
    dialog = open_dialog(NO_GPU_16)
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.bar.value() > 0, timeout=20000)
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.state == "cancelled", timeout=20000)
    models = tmp_path / "models"
    assert not (models / "ggml-model-q2_k.gguf").exists()
    assert (models / "ggml-model-q2_k.gguf.part").stat().st_size > 0
    assert dialog.download_button.text() == "Resume download"
    fake.delay = 0.0
    with qtbot.waitSignal(dialog.model_ready, timeout=30000) as ready:
        dialog.download_button.click()
    assert Path(ready.args[0]).read_bytes() == dense_bytes
    assert any(
        r and r.startswith("bytes=") and r != "bytes=0-"
        for r in fake.ranges("ggml-model-q2_k.gguf")
    )


@pytest.mark.slow
def test_legacy_file_is_announced_converted_and_loads(
    qtbot, open_dialog, fake, legacy_bytes, tmp_path
):
    from app.gui.models.convert_dialog import load_check

    fake.add_file(REPO, "ggml-model-q2_k.gguf", legacy_bytes)
    dialog = open_dialog(NO_GPU_16, verify=load_check)
    qtbot.waitUntil(lambda: dialog.current_choice().layout == "legacy", timeout=10000)
    assert (
        "uses an older layout; Parlor converts it after download and needs"
        in dialog.layout_label.text()
    )
    assert dialog.keep_original.isVisibleTo(dialog)
    with qtbot.waitSignal(dialog.model_ready, timeout=60000) as ready:
        dialog.download_button.click()
    path = Path(ready.args[0])
    assert path == tmp_path / "models" / "ggml-model-q2_k.gguf"
    assert moe_layout(read_header(path)) == "merged"
    # The original is removed; the manifest records the source and the conversion.
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".parlor.json"]
    manifest = read_manifest(path)
    assert manifest.sha256 == hashlib.sha256(legacy_bytes).hexdigest()
    assert manifest.conversion.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "converted" in dialog.progress_label.text()

    converted, gets = path.read_bytes(), len(fake.ranges("ggml-model-q2_k.gguf"))
    with qtbot.waitSignal(dialog.model_ready, timeout=10000):
        dialog.download_button.click()  # the converted file is the install of its source
    assert len(fake.ranges("ggml-model-q2_k.gguf")) == gets
    assert path.read_bytes() == converted


def test_failed_download_says_why(qtbot, open_dialog, fake):
    fake.add_file(REPO, "other.gguf", b"x")  # the repository exists; the catalog file does not
    dialog = open_dialog(NO_GPU_16)
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.state == "failed", timeout=20000)
    assert "ggml-model-q2_k.gguf" in dialog.progress_label.text()
    assert dialog.download_button.isEnabled()


def test_other_repository_lists_gguf_files_grouped_with_fit(qtbot, open_dialog, fake, dense_bytes):
    fake.add_file(OTHER, "model.Q4_K_M.gguf", dense_bytes)
    fake.add_file(OTHER, "model.Q2_K.gguf", dense_bytes[: len(dense_bytes) // 2])
    fake.add_file(OTHER, "big/model-Q8_0-00001-of-00002.gguf", b"a" * 5000)
    fake.add_file(OTHER, "big/model-Q8_0-00002-of-00002.gguf", b"b" * 5000)
    fake.add_file(OTHER, "README.md", b"# hi\n")
    dialog = open_dialog(NO_GPU_16)
    dialog.tabs.setCurrentIndex(1)
    qtbot.keyClicks(dialog.repo_edit, f"https://huggingface.co/{OTHER}")
    dialog.list_button.click()
    qtbot.waitUntil(lambda: dialog.repo_table.rowCount() == 3, timeout=10000)
    table = dialog.repo_table
    quants = [table.item(r, 0).text().split()[0] for r in range(3)]
    assert sorted(quants) == ["Q2_K", "Q4_K_M", "Q8_0"]
    split_row = quants.index("Q8_0")
    assert "(2 parts)" in table.item(split_row, 6).text()
    assert {table.item(r, 3).text() for r in range(3)} == {"CPU only"}
    assert selected_quant(dialog) == "Q4_K_M"  # the largest that fits
    qtbot.waitUntil(lambda: dialog.current_choice().layout == "dense", timeout=10000)
    with qtbot.waitSignal(dialog.model_ready, timeout=30000) as ready:
        dialog.download_button.click()
    assert Path(ready.args[0]).name == "model.Q4_K_M.gguf"


def test_pasted_file_url_preselects_that_file_and_bad_ref_is_explained(
    qtbot, open_dialog, fake, dense_bytes
):
    fake.add_file(OTHER, "model.Q4_K_M.gguf", dense_bytes)
    fake.add_file(OTHER, "model.Q2_K.gguf", dense_bytes)
    dialog = open_dialog(NO_GPU_16)
    dialog.tabs.setCurrentIndex(1)
    dialog.repo_edit.setText("datasets/x/y")
    dialog.list_button.click()
    assert "Not a model repository" in dialog.repo_status.text()
    dialog.repo_edit.setText(f"{fake.url}/{OTHER}/blob/main/model.Q2_K.gguf")
    dialog.list_button.click()
    qtbot.waitUntil(lambda: dialog.repo_table.rowCount() == 2, timeout=10000)
    assert selected_quant(dialog) == "Q2_K"
    dialog.repo_edit.setText("nobody/missing")
    dialog.list_button.click()
    qtbot.waitUntil(lambda: "not found" in dialog.repo_status.text(), timeout=10000)
    assert dialog.repo_table.rowCount() == 0


def test_a_cancelled_download_can_be_discarded(qtbot, open_dialog, fake, dense_bytes, tmp_path):
    fake.add_file(REPO, "ggml-model-q2_k.gguf", dense_bytes)
    fake.chunk, fake.delay = 16 * 1024, 0.05
    dialog = open_dialog(NO_GPU_16)
    assert not dialog.discard_button.isVisibleTo(dialog)
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.bar.value() > 0, timeout=20000)
    assert not dialog.discard_button.isVisibleTo(dialog)  # not while it downloads
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.state == "cancelled", timeout=20000)
    part = tmp_path / "models" / "ggml-model-q2_k.gguf.part"
    kept = part.stat().st_size
    assert dialog.discard_button.isVisibleTo(dialog)
    assert dialog.discard_button.text() == "Discard the partial download"
    dialog.discard_button.click()
    assert not part.exists()
    assert sorted((tmp_path / "models").iterdir()) == []  # no lock file either
    assert dialog.progress_label.text() == f"Discarded the partial download ({human_size(kept)})."
    assert not dialog.discard_button.isVisibleTo(dialog)
    assert dialog.download_button.text() == "Download"


def test_a_download_running_elsewhere_is_said_and_nothing_is_written(
    qtbot, open_dialog, fake, dense_bytes, tmp_path
):
    fake.add_file(REPO, "ggml-model-q2_k.gguf", dense_bytes)
    models = tmp_path / "models"
    models.mkdir()
    dialog = open_dialog(NO_GPU_16)
    qtbot.waitUntil(lambda: dialog.current_choice().layout == "dense", timeout=10000)
    header_reads = len(fake.ranges("ggml-model-q2_k.gguf"))
    with part_lock(models / "ggml-model-q2_k.gguf.part"):  # as `parlor download` holds it
        dialog.download_button.click()
        qtbot.waitUntil(lambda: dialog.state == "failed", timeout=20000)
    assert dialog.progress_label.text() == (
        "ggml-model-q2_k.gguf is already downloading in another window or command. Let it "
        "finish there (or cancel it there), then try again."
    )
    assert len(fake.ranges("ggml-model-q2_k.gguf")) == header_reads
    assert sorted(models.iterdir()) == []


def test_the_disk_message_states_the_margin(qtbot, fake, tmp_path, dense_bytes):
    fake.add_file(OTHER, "model.Q2_K.gguf", dense_bytes)
    size = len(dense_bytes)
    dialog = DownloadDialog(
        NO_GPU_16,
        load_catalog(),
        Hub(endpoint=fake.url, token=False),
        tmp_path / "models",
        disk_usage=lambda _p: type("U", (), {"free": size + 1000})(),
    )
    qtbot.addWidget(dialog)
    dialog.show()  # closed at teardown, which stops its jobs
    dialog.tabs.setCurrentIndex(1)
    dialog.repo_edit.setText(OTHER)
    dialog.list_button.click()
    qtbot.waitUntil(lambda: dialog.repo_table.rowCount() == 1, timeout=10000)
    free, need = human_size(size + 1000), human_size(size + 64_000_000)
    assert dialog.disk_label.text() == (
        f"The download is {human_size(size)}; {free} free on that disk.  Not enough free "
        f"disk space: it needs {need} ({human_size(size)} still to download + 64.0 MB "
        "Parlor keeps free)."
    )


def test_an_unreachable_hub_fails_fast_in_red_and_the_next_attempt_clears_it(qtbot, tmp_path):
    dialog = DownloadDialog(
        NO_GPU_16, load_catalog(), Hub(endpoint="http://127.0.0.1:9"), tmp_path / "models"
    )
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.download_button.click()  # the catalog file: its metadata cannot be fetched
    qtbot.waitUntil(lambda: dialog.state == "failed", timeout=10000)
    assert dialog.progress_label.text().endswith(
        "Check the connection, or set a mirror in Settings → Data → Model hub address."
    )
    dialog.tabs.setCurrentIndex(1)
    dialog.repo_edit.setText(OTHER)
    started = time.monotonic()
    dialog.list_button.click()
    assert dialog.progress_label.text() == ""  # the old red error is gone at once
    assert dialog.repo_status.text() == f"Listing {OTHER}…"
    qtbot.waitUntil(lambda: dialog.list_button.isEnabled(), timeout=10000)
    assert time.monotonic() - started < 5
    assert dialog.repo_status.text().startswith("Cannot reach http://127.0.0.1:9 (")
    assert "Settings → Data → Model hub address" in dialog.repo_status.text()
    assert "HF_ENDPOINT" not in dialog.repo_status.text()
    assert "#b71c1c" in dialog.repo_status.styleSheet()


def test_a_server_error_mid_file_is_retried_and_the_wait_is_shown(
    qtbot, open_dialog, fake, dense_bytes
):
    fake.add_file(REPO, "ggml-model-q2_k.gguf", dense_bytes)
    dialog = open_dialog(NO_GPU_16)
    qtbot.waitUntil(lambda: dialog.current_choice().layout == "dense", timeout=10000)
    fake.drop_after, fake.drops_left = len(dense_bytes) // 2, 1
    fake.answers = [0, 503]  # after the header read: the download is cut, then one 503
    texts = []
    set_text = dialog.progress_label.setText
    dialog.progress_label.setText = lambda text: texts.append(text) or set_text(text)
    with qtbot.waitSignal(dialog.model_ready, timeout=30000) as ready:
        dialog.download_button.click()
    assert Path(ready.args[0]).read_bytes() == dense_bytes
    retries = [t for t in texts if t.startswith("Reconnecting: ggml-model-q2_k.gguf")]
    assert retries[0].endswith(
        "The connection was lost; retrying in 1 s (retry 1; Parlor "
        "gives up after 5 retries or 5 min of waiting without progress)"
    )
    assert retries[1].endswith(
        "The hub answered 503 (service unavailable); retrying in 1 s "
        "(retry 1 of 5 without progress; Parlor gives up after 5 "
        "retries or 5 min of waiting without progress)"
    )


def test_the_machine_probe_runs_off_the_gui_thread_and_fills_the_dialog(qtbot, fake, tmp_path):
    """`for_app`'s probe (about 1.5 s of device checks) must not hold the dialog closed: it
    opens with the RAM alone, Download waits, and the GPU row appears with the answer."""
    import threading

    answer = threading.Event()

    def slow_probe() -> Machine:
        answer.wait(10)
        return GPU_16_8

    ticks = []
    beat = QTimer(interval=20)
    beat.timeout.connect(lambda: ticks.append(1))
    beat.start()
    dialog = DownloadDialog(
        NO_GPU_16,
        load_catalog(),
        Hub(endpoint=fake.url, token=False),
        tmp_path / "models",
        verify=None,
        probe=slow_probe,
    )
    qtbot.addWidget(dialog)
    dialog.show()
    assert "Checking the graphics cards" in dialog.machine_label.text()
    assert not dialog.download_button.isEnabled()
    qtbot.wait(300)
    assert len(ticks) >= 5
    answer.set()
    qtbot.waitUntil(lambda: "Test GPU: 8 GB VRAM" in dialog.machine_label.text(), timeout=5000)
    assert "Checking" not in dialog.machine_label.text()
    assert selected_quant(dialog) == "Q4_K_M" and dialog.download_button.isEnabled()
    qtbot.wait(100)
    assert cut_labels(dialog) == []  # the longer machine line is shown whole
