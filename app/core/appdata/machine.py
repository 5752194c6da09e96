"""What this machine has: RAM, every GPU we can see, and what the bundled llama.cpp can use.

Seeing a GPU is not using it: a CPU-only llama.cpp runs every layer on the CPU whatever the
card. So the GPU memory a model may count on comes from llama.cpp's own devices
(`Machine.runtime`, see `llama_runtime`) when it could be asked, and from the probes here
only when it could not (a machine described by numbers, or one built by hand in tests).

Each VRAM probe runs on its own thread with a time limit and may fail in any way (a driver
that hangs in NVML init, an `nvidia-smi` that never returns, a sysfs file that vanishes, a COM
call that fails): a failed probe adds a line to `Machine.problems` and nothing else. Reading
the machine never raises.

Every source is injectable so tests can fake it: a fake NVML module, canned `nvidia-smi`
output, a sysfs tree in a temporary folder, the platform names for Apple Silicon.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from app.core.appdata.llama_runtime import Runtime, failed, probe_runtime
from app.core.appdata.llama_runtime import summary as runtime_summary

GB = 1_000_000_000
MIB = 1024 * 1024
PROBE_TIMEOUT_S = 5.0
APPLE_GPU_SHARE = 0.75  # Metal's working-set limit is about three quarters of RAM
NVIDIA_VENDOR_ID = 0x10DE


@dataclass(frozen=True)
class Gpu:
    name: str
    total_bytes: int
    free_bytes: int | None  # None when the source cannot tell
    vendor: str  # "nvidia", "amd", "intel", "apple", "other"
    source: str  # "nvml", "nvidia-smi", "sysfs", "dxgi", "apple"
    dedicated: bool = True  # False for unified memory: its VRAM is the RAM


@dataclass(frozen=True)
class Machine:
    ram_total: int
    ram_available: int | None  # None when the RAM was given rather than read
    gpus: tuple[Gpu, ...] = ()
    unified_memory: bool = False  # Apple Silicon: never add the GPU to the RAM
    problems: tuple[str, ...] = field(default=(), compare=False)
    runtime: Runtime | None = None  # what llama.cpp enumerated; None: it was not asked

    @property
    def dedicated_vram(self) -> int:
        return sum(g.total_bytes for g in self.gpus if g.dedicated)

    @property
    def free_vram(self) -> int:
        """Free dedicated VRAM; a GPU whose free memory is unknown counts as wholly free."""
        return sum(
            g.total_bytes if g.free_bytes is None else g.free_bytes
            for g in self.gpus
            if g.dedicated
        )

    @property
    def can_offload(self) -> bool:
        """llama.cpp can put layers on a GPU: it says so, or (not asked) a GPU was seen."""
        if self.runtime is None:
            return bool(self.gpus)
        return bool(self.runtime.gpu_devices)

    @property
    def offload_vram(self) -> int:
        """Dedicated VRAM llama.cpp can fill: its own devices' total when it was asked."""
        if self.unified_memory:
            return 0
        return self.dedicated_vram if self.runtime is None else self.runtime.dedicated_vram

    @property
    def offload_free_vram(self) -> int:
        if self.unified_memory:
            return 0
        return self.free_vram if self.runtime is None else self.runtime.free_vram

    @property
    def gpu_budget(self) -> int:
        """Bytes of model the GPU(s) can hold: usable VRAM, or Apple's share of RAM."""
        if self.unified_memory:
            return int(self.ram_total * APPLE_GPU_SHARE) if self.can_offload else 0
        return self.offload_vram

    def with_overrides(self, ram_gb: float | None = None, vram_gb: float | None = None) -> Machine:
        """This machine with the RAM and/or dedicated VRAM the user gave in place of the probes."""
        machine = self
        if ram_gb is not None:
            machine = replace(machine, ram_total=int(ram_gb * GB), ram_available=None)
        if vram_gb is not None:
            gpus = (
                ()
                if vram_gb <= 0
                else (Gpu("GPU (given)", int(vram_gb * GB), None, "other", "given"),)
            )
            # The user's word replaces llama.cpp's too: they may be sizing another machine.
            machine = replace(machine, gpus=gpus, unified_memory=False, runtime=None)
        return machine


def machine_from_sizes(ram_gb: float, vram_gb: float = 0.0) -> Machine:
    """A machine described by numbers alone (tests, `--ram`/`--vram`)."""
    return Machine(int(ram_gb * GB), None).with_overrides(vram_gb=vram_gb)


# ---------------------------------------------------------------------------------------------
# Probes. Each returns a list of Gpu and may raise; `read_machine` isolates them.


def probe_nvml(nvml: Any = None) -> list[Gpu]:
    """NVIDIA through NVML (`nvidia-ml-py`, imported as `pynvml`); [] when it is not installed."""
    if nvml is None:
        try:
            import pynvml  # noqa: PLC0415 - optional, imported only when probing
        except ImportError:
            return []
        nvml = pynvml
    nvml.nvmlInit()
    try:
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(handle)
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(Gpu(str(name), int(memory.total), int(memory.free), "nvidia", "nvml"))
        return gpus
    finally:
        nvml.nvmlShutdown()


def _run_nvidia_smi() -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    done = subprocess.run(
        [exe, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=True,
    )
    return done.stdout


def parse_nvidia_smi(output: str) -> list[Gpu]:
    """Parse `--query-gpu=name,memory.total,memory.free --format=csv,noheader,nounits` (MiB)."""
    gpus = []
    for line in output.splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        free = int(parts[2]) * MIB if parts[2].isdigit() else None
        gpus.append(Gpu(parts[0], int(parts[1]) * MIB, free, "nvidia", "nvidia-smi"))
    return gpus


def probe_nvidia_smi(run: Callable[[], str | None] = _run_nvidia_smi) -> list[Gpu]:
    output = run()
    return parse_nvidia_smi(output) if output else []


def _read_int(path: Path) -> int:
    return int(path.read_text().strip(), 0)


def probe_amd_sysfs(root: Path = Path("/sys/class/drm")) -> list[Gpu]:
    """AMD on Linux: amdgpu exposes `card*/device/mem_info_vram_total` and `_used`."""
    gpus = []
    for card in sorted(root.glob("card*")):
        if not card.name[4:].isdigit():  # skip connectors such as card0-DP-1
            continue
        device = card / "device"
        total_file = device / "mem_info_vram_total"
        if not total_file.is_file():
            continue
        total = _read_int(total_file)
        used_file = device / "mem_info_vram_used"
        free = total - _read_int(used_file) if used_file.is_file() else None
        gpus.append(Gpu(_amd_name(device), total, free, "amd", "sysfs"))
    return gpus


def _amd_name(device: Path) -> str:
    product = device / "product_name"
    if product.is_file() and product.read_text().strip():
        return product.read_text().strip()
    try:
        return f"AMD GPU {_read_int(device / 'device'):04x}"
    except (OSError, ValueError):
        return "AMD GPU"


def probe_dxgi() -> list[Gpu]:
    """Windows, any vendor: DXGI adapter descriptions (64-bit DedicatedVideoMemory).

    Not WMI's AdapterRAM, which is 32-bit and stops at 4 GB.
    """
    if sys.platform != "win32":
        return []
    vendors = {NVIDIA_VENDOR_ID: "nvidia", 0x1002: "amd", 0x8086: "intel"}
    return [
        Gpu(name, dedicated, None, vendors.get(vendor_id, "other"), "dxgi")
        for name, vendor_id, dedicated in _dxgi_adapters()
    ]


def _dxgi_adapters() -> list[tuple[str, int, int]]:  # pragma: no cover - Windows only
    """(description, vendor id, dedicated bytes) of each hardware adapter, through raw COM."""
    import ctypes  # noqa: PLC0415
    from ctypes import wintypes  # noqa: PLC0415

    win: Any = ctypes  # WINFUNCTYPE and WinDLL exist only in Windows' ctypes

    class Desc1(ctypes.Structure):  # DXGI_ADAPTER_DESC1
        _fields_ = [
            ("Description", wintypes.WCHAR * 128),
            ("VendorId", wintypes.UINT),
            ("DeviceId", wintypes.UINT),
            ("SubSysId", wintypes.UINT),
            ("Revision", wintypes.UINT),
            ("DedicatedVideoMemory", ctypes.c_size_t),
            ("DedicatedSystemMemory", ctypes.c_size_t),
            ("SharedSystemMemory", ctypes.c_size_t),
            ("LuidLow", wintypes.DWORD),
            ("LuidHigh", wintypes.LONG),
            ("Flags", wintypes.UINT),
        ]

    def method(obj: ctypes.c_void_p, index: int, *argtypes: Any) -> Any:
        vtable = ctypes.cast(obj, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p)))[0]
        return win.WINFUNCTYPE(ctypes.c_long, ctypes.c_void_p, *argtypes)(vtable[index])

    iid = (ctypes.c_ubyte * 16)(*bytes.fromhex("78ae0a776ff2ba4da829253c83d1b387"))
    factory = ctypes.c_void_p()
    if win.WinDLL("dxgi").CreateDXGIFactory1(ctypes.byref(iid), ctypes.byref(factory)):
        return []
    found = []
    try:
        for index in range(16):
            adapter = ctypes.c_void_p()
            # IDXGIFactory1::EnumAdapters1 is vtable slot 12; it fails past the last adapter.
            if method(factory, 12, wintypes.UINT, ctypes.c_void_p)(
                factory, index, ctypes.byref(adapter)
            ):
                break
            desc = Desc1()
            ok = method(adapter, 10, ctypes.c_void_p)(adapter, ctypes.byref(desc)) == 0  # GetDesc1
            method(adapter, 2)(adapter)  # Release
            software = desc.Flags & 2 or desc.VendorId == 0x1414  # Microsoft Basic Render
            if ok and not software:
                found.append((desc.Description, desc.VendorId, int(desc.DedicatedVideoMemory)))
    finally:
        method(factory, 2)(factory)  # Release
    return found


def probe_apple(ram_total: int, system: str | None = None, machine: str | None = None) -> list[Gpu]:
    """Apple Silicon: one GPU sharing RAM; it may use about three quarters of it."""
    system = platform.system() if system is None else system
    machine = platform.machine() if machine is None else machine
    if system != "Darwin" or machine != "arm64":
        return []
    budget = int(ram_total * APPLE_GPU_SHARE)
    return [
        Gpu("Apple Silicon GPU (unified memory)", budget, None, "apple", "apple", dedicated=False)
    ]


# ---------------------------------------------------------------------------------------------


def _isolated(
    name: str, probe: Callable[[], list[Gpu]], timeout: float, problems: list[str]
) -> list[Gpu]:
    """Run one probe on its own thread; a hang or an error costs a line in `problems`."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["gpus"] = probe()
        except BaseException as exc:  # noqa: BLE001 - a probe must never be fatal
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"probe-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        problems.append(f"{name}: no answer within {timeout:g} s")
        return []
    if "error" in outcome:
        exc = outcome["error"]
        problems.append(f"{name}: {type(exc).__name__}: {exc}".rstrip(": "))
        return []
    return list(outcome.get("gpus") or [])


def read_machine(
    *,
    nvml: Any = None,
    nvidia_smi: Callable[[], str | None] = _run_nvidia_smi,
    sysfs_root: Path = Path("/sys/class/drm"),
    dxgi: Callable[[], list[Gpu]] = probe_dxgi,
    system: str | None = None,
    cpu: str | None = None,
    virtual_memory: Callable[[], Any] = psutil.virtual_memory,
    runtime: Callable[[], Runtime | None] = probe_runtime,
    timeout: float = PROBE_TIMEOUT_S,
) -> Machine:
    """Probe RAM, every GPU source and llama.cpp's devices; never raises."""
    problems: list[str] = []
    asked = _Background(runtime)  # a child process: let it start while the probes run
    try:
        memory = virtual_memory()
        ram_total, ram_available = int(memory.total), int(memory.available)
    except Exception as exc:  # noqa: BLE001 - even psutil failing must not be fatal
        problems.append(f"ram: {type(exc).__name__}: {exc}")
        ram_total, ram_available = 0, None

    nvidia = _isolated("nvml", lambda: probe_nvml(nvml), timeout, problems)
    if not nvidia:
        nvidia = _isolated("nvidia-smi", lambda: probe_nvidia_smi(nvidia_smi), timeout, problems)
    amd = _isolated("sysfs", lambda: probe_amd_sysfs(sysfs_root), timeout, problems)
    windows = _isolated("dxgi", dxgi, timeout, problems)
    if nvidia:  # DXGI sees the NVIDIA cards too; NVML's view also has free memory
        windows = [g for g in windows if g.vendor != "nvidia"]
    apple = _isolated("apple", lambda: probe_apple(ram_total, system, cpu), timeout, problems)
    found = asked.result(problems)
    return Machine(
        ram_total=ram_total,
        ram_available=ram_available,
        gpus=tuple(nvidia + amd + windows + apple),
        unified_memory=bool(apple),
        problems=tuple(problems),
        runtime=found,
    )


class _Background:
    """The llama.cpp probe on its own thread (it has its own time limit)."""

    def __init__(self, probe: Callable[[], Runtime | None]) -> None:
        self._outcome: dict[str, Any] = {}
        self._thread = threading.Thread(
            target=self._run, args=(probe,), daemon=True, name="probe-llama"
        )
        self._thread.start()

    def _run(self, probe: Callable[[], Runtime | None]) -> None:
        try:
            self._outcome["runtime"] = probe()
        except BaseException as exc:  # noqa: BLE001 - a probe must never be fatal
            self._outcome["error"] = exc

    def result(self, problems: list[str]) -> Runtime | None:
        self._thread.join()
        if "error" in self._outcome:  # unknown is not "can offload": count no VRAM
            exc = self._outcome["error"]
            self._outcome["runtime"] = failed(f"{type(exc).__name__}: {exc}")
        found = self._outcome.get("runtime")
        if found is not None and found.problem:
            problems.append(f"llama.cpp: {found.problem}")
        return found


def describe(machine: Machine) -> str:
    """One or two lines for people: RAM, then each GPU."""
    ram = f"{machine.ram_total / GB:.1f} GB RAM"
    if machine.ram_available is not None:
        ram += f" ({machine.ram_available / GB:.1f} GB free now)"
    llama = f"; llama.cpp: {runtime_summary(machine.runtime)}" if machine.runtime else ""
    if not machine.gpus:  # llama.cpp may still have one the probes miss: it is named then
        return f"{ram}{'' if machine.can_offload else '; no GPU found'}{llama}"
    gpus = []
    for gpu in machine.gpus:
        text = f"{gpu.name} {gpu.total_bytes / GB:.1f} GB"
        if not gpu.dedicated:
            text += " shared with RAM"
        elif gpu.free_bytes is not None:
            text += f" ({gpu.free_bytes / GB:.1f} GB free)"
        gpus.append(text)
    return f"{ram}; GPU: " + ", ".join(gpus) + llama
