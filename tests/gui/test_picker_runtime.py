"""The quant picker with llama.cpp's own view of the devices: a CPU build counts no VRAM."""

from __future__ import annotations

import pytest

from app.core.appdata.llama_runtime import Backend, DeviceType, LlamaDevice, Runtime
from app.core.appdata.machine import GB, Gpu, Machine
from app.core.hub.catalog import load_catalog
from app.core.hub.downloads import Hub
from app.gui.models.download_dialog import DownloadDialog

CPU = LlamaDevice("CPU", "CPU", "Test CPU", DeviceType.CPU, 12 * GB, 16 * GB)
CARD = Gpu("NVIDIA GeForce RTX 4060", 8 * GB, 7_600_000_000, "nvidia", "nvml")
RTX = LlamaDevice("Vulkan", "Vulkan0", CARD.name, DeviceType.GPU, 7_600_000_000, 8 * GB)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    from tests.hub_server import FakeHub, point_huggingface_hub_at

    with FakeHub() as hub:
        point_huggingface_hub_at(monkeypatch, hub.url, tmp_path)
        yield hub


@pytest.fixture
def open_dialog(qtbot, tmp_path, fake):
    def make(runtime: Runtime) -> DownloadDialog:
        machine = Machine(16 * GB, None, (CARD,), runtime=runtime)
        dialog = DownloadDialog(
            machine, load_catalog(), Hub(endpoint=fake.url, token=False), tmp_path / "models"
        )
        qtbot.addWidget(dialog)
        # The catalog's files are not on the fake hub: wait for that answer, so that no
        # header check is still running when the dialog goes.
        qtbot.waitUntil(lambda: bool(dialog.current_choice().header_note), timeout=10000)
        return dialog

    return make


def test_a_cpu_only_build_says_so_and_picks_what_fits_the_ram(open_dialog):
    dialog = open_dialog(Runtime((Backend("CPU", 1),), (CPU,), gpu_offload=False))
    assert dialog.current_choice().row.entry.quant == "Q2_K"
    assert "this build runs on the CPU only" in dialog.why_label.text()
    summary = dialog.machine_label.text()
    assert "llama.cpp: this build runs on the CPU only" in summary
    assert "up to 14 GB" in summary and "GPUs' own memory" not in summary


def test_a_vulkan_build_uses_the_card(open_dialog):
    dialog = open_dialog(Runtime((Backend("CPU", 1), Backend("Vulkan", 1)), (CPU, RTX), True))
    assert dialog.current_choice().row.entry.quant == "Q4_K_M"
    assert "partly on the GPU" in dialog.why_label.text()
    assert "llama.cpp: Vulkan: NVIDIA GeForce RTX 4060, 7.6 GB free" in dialog.machine_label.text()


def test_a_moe_that_half_fits_is_offered_with_its_experts_in_ram(qtbot, tmp_path, fake):
    """The picker names the expert split, and the download hands that plan to the loader:
    all layers on the GPU (-1) with the experts of the first layers kept in RAM."""
    from app.core.gguf.header import read_header
    from app.core.hub import offload
    from tests.tiny_models import write_tiny_llama

    moe = write_tiny_llama(tmp_path / "src.gguf", n_expert=4, n_layer=4)
    mb = offload.model_bytes(read_header(moe), 4096)
    attention = sum(lb.dense + lb.kv for lb in mb.layers) + mb.output + mb.compute
    vram = attention + mb.layers[-1].experts  # room for one layer's experts
    gpu = LlamaDevice("Vulkan", "Vulkan0", "Test GPU", DeviceType.GPU, vram, vram)
    machine = Machine(16 * GB, None, runtime=Runtime((), (CPU, gpu), True))
    fake.add_file("someone/moe-GGUF", "moe.Q4_K_M.gguf", moe.read_bytes())
    dialog = DownloadDialog(
        machine, load_catalog(), Hub(endpoint=fake.url, token=False), tmp_path / "models"
    )
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: bool(dialog.current_choice().header_note), timeout=10000)
    dialog.tabs.setCurrentIndex(1)
    qtbot.keyClicks(dialog.repo_edit, "someone/moe-GGUF")
    dialog.list_button.click()
    qtbot.waitUntil(lambda: dialog.repo_table.rowCount() == 1, timeout=10000)
    qtbot.waitUntil(lambda: dialog.current_choice().layout == "merged", timeout=10000)
    assert "attention on the GPU, experts of 3 of 4 layers in RAM" in dialog.why_label.text()
    with qtbot.waitSignal(dialog.model_ready, timeout=30000) as ready:
        dialog.download_button.click()
    assert ready.args[1:] == [-1, 3]
    assert "experts of 3 layers in RAM" in dialog.progress_label.text()
