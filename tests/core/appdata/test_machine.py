"""Machine probes: each source faked, each failure isolated."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.core.appdata import machine as m
from app.core.appdata.machine import GB, MIB, Gpu, Machine

RAM = SimpleNamespace(total=32 * GB, available=20 * GB)


class FakeNvml:
    """The slice of pynvml's API the probe uses."""

    def __init__(self, gpus, fail_init=None, hang=0.0):
        self.gpus, self.fail_init, self.hang = gpus, fail_init, hang
        self.shut_down = False

    def nvmlInit(self):
        if self.hang:
            time.sleep(self.hang)
        if self.fail_init:
            raise self.fail_init

    def nvmlShutdown(self):
        self.shut_down = True

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return self.gpus[handle][0]

    def nvmlDeviceGetMemoryInfo(self, handle):
        _, total, free = self.gpus[handle]
        return SimpleNamespace(total=total, free=free, used=total - free)


NO_NVML = FakeNvml([])


def amd_card(
    root: Path,
    name: str,
    total: int | None,
    used: int | None = None,
    product: str | None = None,
    device_id: str = "0x744c",
) -> None:
    device = root / name / "device"
    device.mkdir(parents=True)
    (device / "device").write_text(device_id + "\n")
    if total is not None:
        (device / "mem_info_vram_total").write_text(f"{total}\n")
    if used is not None:
        (device / "mem_info_vram_used").write_text(f"{used}\n")
    if product:
        (device / "product_name").write_text(product + "\n")


def read(tmp_path, **overrides) -> Machine:
    options = dict(
        nvml=NO_NVML,
        nvidia_smi=lambda: None,
        sysfs_root=tmp_path / "no-drm",
        dxgi=lambda: [],
        system="Linux",
        cpu="x86_64",
        virtual_memory=lambda: RAM,
        runtime=lambda: None,
        timeout=2.0,
    )
    options.update(overrides)
    return m.read_machine(**options)


def test_ram_comes_from_psutil_shape(tmp_path):
    machine = read(tmp_path)
    assert (machine.ram_total, machine.ram_available) == (32 * GB, 20 * GB)
    assert machine.gpus == () and machine.problems == ()
    assert machine.dedicated_vram == 0 and machine.gpu_budget == 0


def test_real_machine_is_read_without_error():
    machine = m.read_machine(timeout=10)
    assert machine.ram_total > 0
    assert isinstance(m.describe(machine), str)


def test_nvml_reports_every_gpu_and_shuts_down(tmp_path):
    nvml = FakeNvml(
        [(b"NVIDIA GeForce RTX 3060", 12 * GB, 11 * GB), ("NVIDIA RTX A4000", 16 * GB, 15 * GB)]
    )
    machine = read(tmp_path, nvml=nvml)
    assert [g.name for g in machine.gpus] == ["NVIDIA GeForce RTX 3060", "NVIDIA RTX A4000"]
    assert machine.dedicated_vram == 28 * GB
    assert machine.free_vram == 26 * GB
    assert all(g.source == "nvml" and g.vendor == "nvidia" for g in machine.gpus)
    assert nvml.shut_down


def test_nvml_missing_module_is_not_a_problem(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pynvml(name, *args, **kwargs):
        if name == "pynvml":
            raise ImportError("No module named 'pynvml'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pynvml)
    assert m.probe_nvml() == []


SMI = "NVIDIA GeForce RTX 4090, 24564, 23012\nTesla T4, 15360, [N/A]\n"


def test_nvidia_smi_is_the_fallback_when_nvml_fails(tmp_path):
    nvml = FakeNvml([], fail_init=RuntimeError("NVML Shared Library Not Found"))
    machine = read(tmp_path, nvml=nvml, nvidia_smi=lambda: SMI)
    assert [(g.name, g.total_bytes, g.free_bytes) for g in machine.gpus] == [
        ("NVIDIA GeForce RTX 4090", 24564 * MIB, 23012 * MIB),
        ("Tesla T4", 15360 * MIB, None),
    ]
    assert machine.gpus[0].source == "nvidia-smi"
    assert any("nvml" in p and "Shared Library" in p for p in machine.problems)


def test_nvidia_smi_is_not_run_when_nvml_answers(tmp_path):
    def must_not_run():
        raise AssertionError("nvidia-smi was run")

    machine = read(tmp_path, nvml=FakeNvml([("A", GB, GB)]), nvidia_smi=must_not_run)
    assert machine.problems == ()


def test_nvidia_smi_failing_is_not_fatal(tmp_path):
    def broken():
        raise subprocess.CalledProcessError(9, ["nvidia-smi"], "NVIDIA-SMI has failed")

    machine = read(tmp_path, nvidia_smi=broken)
    assert machine.gpus == ()
    assert any(p.startswith("nvidia-smi: CalledProcessError") for p in machine.problems)


def test_parse_nvidia_smi_tolerates_noise():
    assert m.parse_nvidia_smi("") == []
    assert m.parse_nvidia_smi("No devices were found\n") == []
    (gpu,) = m.parse_nvidia_smi("Weird, Name, With Commas, 8192, 100\n")
    assert gpu.name == "Weird, Name, With Commas" and gpu.total_bytes == 8192 * MIB


def test_a_hanging_probe_is_abandoned_in_time(tmp_path):
    start = time.monotonic()
    machine = read(tmp_path, nvml=FakeNvml([], hang=5.0), timeout=0.3)
    assert time.monotonic() - start < 3.0
    assert any("nvml: no answer" in p for p in machine.problems)
    assert machine.ram_total == 32 * GB


def test_amd_sysfs(tmp_path):
    drm = tmp_path / "drm"
    amd_card(drm, "card0", 16 * GB, used=2 * GB, product="AMD Radeon RX 7800 XT")
    amd_card(drm, "card1", 8 * GB, used=GB)  # no product_name: named from the device id
    amd_card(drm, "card2", None)  # an NVIDIA or Intel card: no mem_info files
    (drm / "card0-DP-1").mkdir()
    machine = read(tmp_path, sysfs_root=drm)
    assert [(g.name, g.total_bytes, g.free_bytes) for g in machine.gpus] == [
        ("AMD Radeon RX 7800 XT", 16 * GB, 14 * GB),
        ("AMD GPU 744c", 8 * GB, 7 * GB),
    ]
    assert machine.dedicated_vram == 24 * GB


def test_amd_sysfs_garbage_is_a_problem_not_a_crash(tmp_path):
    drm = tmp_path / "drm"
    amd_card(drm, "card0", None)
    (drm / "card0" / "device" / "mem_info_vram_total").write_text("garbage")
    machine = read(tmp_path, sysfs_root=drm)
    assert machine.gpus == ()
    assert any(p.startswith("sysfs: ValueError") for p in machine.problems)


def test_dxgi_adds_other_vendors_and_leaves_nvidia_to_nvml(tmp_path):
    dxgi = [
        Gpu("NVIDIA GeForce RTX 3080", 10 * GB, None, "nvidia", "dxgi"),
        Gpu("AMD Radeon RX 6600", 8 * GB, None, "amd", "dxgi"),
    ]
    alone = read(tmp_path, dxgi=lambda: dxgi)
    assert alone.dedicated_vram == 18 * GB
    with_nvml = read(
        tmp_path, dxgi=lambda: dxgi, nvml=FakeNvml([("NVIDIA GeForce RTX 3080", 10 * GB, 9 * GB)])
    )
    assert [g.source for g in with_nvml.gpus] == ["nvml", "dxgi"]
    assert with_nvml.dedicated_vram == 18 * GB


def test_dxgi_probe_is_windows_only():
    import sys

    if sys.platform != "win32":
        assert m.probe_dxgi() == []


def test_apple_silicon_has_unified_memory(tmp_path):
    machine = read(tmp_path, system="Darwin", cpu="arm64")
    assert machine.unified_memory
    (gpu,) = machine.gpus
    assert not gpu.dedicated and gpu.vendor == "apple"
    assert machine.dedicated_vram == 0
    assert machine.gpu_budget == 24 * GB  # three quarters of 32 GB
    assert read(tmp_path, system="Darwin", cpu="x86_64").gpus == ()


def test_ram_probe_failure_is_not_fatal(tmp_path):
    def broken():
        raise OSError("no /proc")

    machine = read(tmp_path, virtual_memory=broken)
    assert machine.ram_total == 0 and machine.ram_available is None
    assert machine.problems


def test_overrides_replace_the_probes():
    probed = Machine(32 * GB, 20 * GB, (Gpu("A", 12 * GB, 10 * GB, "nvidia", "nvml"),))
    ram_only = probed.with_overrides(ram_gb=16)
    assert ram_only.ram_total == 16 * GB and ram_only.ram_available is None
    assert ram_only.dedicated_vram == 12 * GB
    assert probed.with_overrides(vram_gb=0).gpus == ()
    assert probed.with_overrides(vram_gb=8).dedicated_vram == 8 * GB
    assert m.machine_from_sizes(16, 8) == Machine(
        16 * GB, None, probed.with_overrides(vram_gb=8).gpus
    )
    apple = Machine(32 * GB, None, (), unified_memory=True)
    assert not apple.with_overrides(vram_gb=8).unified_memory


def test_describe_names_everything():
    machine = Machine(
        32 * GB,
        20 * GB,
        (
            Gpu("NVIDIA RTX", 12 * GB, 10 * GB, "nvidia", "nvml"),
            Gpu("Apple GPU", 24 * GB, None, "apple", "apple", dedicated=False),
        ),
    )
    text = m.describe(machine)
    assert "32.0 GB RAM (20.0 GB free now)" in text
    assert "NVIDIA RTX 12.0 GB (10.0 GB free)" in text
    assert "shared with RAM" in text
    assert "no GPU" in m.describe(Machine(8 * GB, None))


@pytest.mark.parametrize("free, expected", [(None, 12 * GB), (3 * GB, 3 * GB)])
def test_free_vram_unknown_counts_as_total(free, expected):
    assert Machine(8 * GB, None, (Gpu("G", 12 * GB, free, "amd", "x"),)).free_vram == expected
