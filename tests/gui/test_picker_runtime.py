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
def open_dialog(qtbot, tmp_path):
    def make(runtime: Runtime) -> DownloadDialog:
        machine = Machine(16 * GB, None, (CARD,), runtime=runtime)
        hub = Hub(endpoint="http://127.0.0.1:9", token=False)  # never reached: catalog only
        dialog = DownloadDialog(machine, load_catalog(), hub, tmp_path / "models")
        qtbot.addWidget(dialog)
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
