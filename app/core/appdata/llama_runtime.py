"""What the bundled llama.cpp itself can run on: its backends and the devices they enumerated.

NVML, sysfs and DXGI say which GPUs the machine has; only llama.cpp can say whether *this
build* can use them (a CPU-only build sees an 8 GB card and still runs every layer on the
CPU). These values come from `parlor devices --json`, which asks ggml's device registry
(`app.core.engine.devices`). It runs in a child process because loading a GPU backend
initialises the driver, and a broken driver must cost a line in the machine's problems,
not the window.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from app.core.appdata.text_enum import TextEnum

GB = 1_000_000_000
PROBE_TIMEOUT_S = 30.0  # a frozen app's first start on a slow disk, plus the driver's init


class DeviceType(TextEnum):
    """ggml's `enum ggml_backend_dev_type`, in its order."""

    CPU = "cpu"
    GPU = "gpu"  # dedicated memory
    IGPU = "igpu"  # integrated: its memory is the RAM
    ACCEL = "accel"  # BLAS, AMX: works with the CPU backend on system memory
    META = "meta"  # wraps other devices for tensor parallelism

    @classmethod
    def from_ggml(cls, value: int) -> DeviceType:
        order = list(cls)
        return order[value] if 0 <= value < len(order) else cls.ACCEL


@dataclass(frozen=True)
class LlamaDevice:
    backend: str  # the ggml backend (registry) name: "CPU", "Vulkan", "CUDA", "Metal"
    name: str  # ggml's device name: "CPU", "Vulkan0", "CUDA0", "MTL0"
    description: str  # what people call it: "NVIDIA GeForce RTX 4060"
    type: DeviceType
    memory_free: int
    memory_total: int

    @property
    def offloads(self) -> bool:
        """Layers put on this device leave the CPU."""
        return self.type in (DeviceType.GPU, DeviceType.IGPU)


@dataclass(frozen=True)
class Backend:
    name: str
    devices: int
    variant: str | None = None  # the CPU variant ggml chose at start ("haswell"), if any
    features: tuple[str, ...] = ()  # what the backend reports as on ("AVX2", "FMA", ...)


@dataclass(frozen=True)
class GpuProblem:
    """A GPU backend the build has that gives no device, and why (`engine.backend_problems`)."""

    backend: str  # the registry name ("CUDA", "Vulkan"), also for a module that never registered
    reason: str  # "CUDA found no GPU: ... (update the NVIDIA driver: ...)"


@dataclass(frozen=True)
class Runtime:
    backends: tuple[Backend, ...]
    devices: tuple[LlamaDevice, ...]
    gpu_offload: bool  # llama_supports_gpu_offload(): the build has any GPU backend
    library: str = ""  # "llama-cpp-python 0.3.36"
    problem: str | None = field(default=None, compare=False)  # why nothing could be read
    gpu_problems: tuple[GpuProblem, ...] = ()

    @property
    def gpu_devices(self) -> tuple[LlamaDevice, ...]:
        """Devices llama.cpp can put layers on; none unless the build can offload at all."""
        if not self.gpu_offload:
            return ()
        return tuple(d for d in self.devices if d.offloads)

    @property
    def dedicated_vram(self) -> int:
        return sum(d.memory_total for d in self.gpu_devices if d.type is DeviceType.GPU)

    @property
    def free_vram(self) -> int:
        return sum(d.memory_free for d in self.gpu_devices if d.type is DeviceType.GPU)

    @property
    def cpu_variant(self) -> str | None:
        return next((b.variant for b in self.backends if b.name == "CPU"), None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for device in data["devices"]:
            device["type"] = str(device["type"])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Runtime:
        backends = tuple(
            Backend(
                b["name"], int(b.get("devices", 0)), b.get("variant"), tuple(b.get("features", ()))
            )
            for b in data["backends"]
        )
        devices = tuple(
            LlamaDevice(
                d["backend"],
                d["name"],
                d.get("description", d["name"]),
                DeviceType(d["type"]),
                int(d["memory_free"]),
                int(d["memory_total"]),
            )
            for d in data["devices"]
        )
        problems = tuple(
            GpuProblem(str(p["backend"]), str(p["reason"])) for p in data.get("gpu_problems", ())
        )
        return cls(
            backends,
            devices,
            bool(data.get("gpu_offload", False)),
            data.get("library", ""),
            data.get("problem"),
            problems,
        )


def failed(problem: str) -> Runtime:
    """A runtime that could not be read: nothing counts as offloadable."""
    return Runtime((), (), False, problem=problem)


def summary(runtime: Runtime) -> str:
    """'Vulkan: NVIDIA GeForce RTX 4060, 7.6 GB free' or 'CPU only (haswell variant)', and
    why a GPU backend the build has gives no device."""
    if runtime.problem:
        return f"llama.cpp could not be asked what it runs on ({runtime.problem})"
    gpus = runtime.gpu_devices
    why = "".join(f"; {p.reason}" for p in runtime.gpu_problems)
    if not gpus:
        variant = f" ({runtime.cpu_variant} variant)" if runtime.cpu_variant else ""
        if why:  # the build has a GPU backend: it is this machine that runs on the CPU
            return f"runs on the CPU only{variant}{why}"
        return f"this build runs on the CPU only{variant}"
    return (
        "; ".join(f"{d.backend}: {d.description}, {d.memory_free / GB:.1f} GB free" for d in gpus)
        + why
    )


def gpu_layers_note(runtime: Runtime) -> str:
    """For the GPU layers setting: where they go, or that they stay on the CPU and why."""
    text = summary(runtime)
    if runtime.problem:  # starts with "llama.cpp", which keeps its small letter
        return f"{text}: GPU layers run on the CPU."
    if not runtime.gpu_devices:
        return text[0].upper() + text[1:] + ": GPU layers run on the CPU."
    return f"GPU layers go to {text}."


# ---------------------------------------------------------------------------------------------


def devices_command() -> list[str]:
    """`parlor devices --json` for this very installation, frozen or not."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "devices", "--json"]
    return [sys.executable, "-m", "app", "devices", "--json"]


# The probe starts a child that imports llama.cpp (about 1.5 s here), on the GUI thread when
# a dialog opens. What the build has cannot change while Parlor runs, and free memory moves
# slowly, so one answer serves every caller for a minute.
RECENT_S = 60.0
_recent: tuple[float, Runtime] | None = None
_recent_lock = threading.Lock()


def probe_runtime(command: list[str] | None = None, timeout: float = PROBE_TIMEOUT_S) -> Runtime:
    """Ask a child process what llama.cpp enumerates; never raises. This installation's own
    answer (no `command`) is reused for `RECENT_S` seconds when the probe worked."""
    global _recent
    if command is not None:
        return _probe(command, timeout)
    with _recent_lock:
        if _recent is not None and time.monotonic() - _recent[0] < RECENT_S:
            return _recent[1]
        runtime = _probe(devices_command(), timeout)
        if runtime.problem is None:
            _recent = (time.monotonic(), runtime)
        return runtime


def _probe(command: list[str], timeout: float) -> Runtime:
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except subprocess.TimeoutExpired:
        return failed(f"no answer within {timeout:g} s")
    except OSError as exc:
        return failed(f"{type(exc).__name__}: {exc}")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        how = (
            f"killed by signal {-done.returncode}"
            if done.returncode < 0
            else f"exit status {done.returncode}"
        )
        return failed(how + (f": {last}" if last else ""))
    try:
        return Runtime.from_json(json.loads(done.stdout))
    except (ValueError, KeyError, TypeError) as exc:
        return failed(f"unreadable answer: {type(exc).__name__}: {exc}")
