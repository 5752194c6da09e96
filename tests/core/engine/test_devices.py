"""What llama.cpp enumerates, and the fit rule counting VRAM only when llama.cpp can use it.

The enumeration and `parlor devices --json` run for real on the installed llama.cpp (a CPU
build here); GPU runtimes are fakes of the same typed values the JSON turns into.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.core.appdata import llama_runtime as lr
from app.core.appdata import machine as m
from app.core.appdata.llama_runtime import Backend, DeviceType, GpuProblem, LlamaDevice, Runtime
from app.core.appdata.machine import GB, Gpu, Machine
from app.core.engine import backend_problems as bp
from app.core.engine import devices
from app.core.hub import catalog as cat

CPU_DEVICE = LlamaDevice("CPU", "CPU", "AMD Ryzen 7 7700", DeviceType.CPU, 14 * GB, 16 * GB)
CPU_ONLY = Runtime((Backend("CPU", 1, "haswell", ("AVX2",)),), (CPU_DEVICE,), False)
RTX = LlamaDevice(
    "Vulkan", "Vulkan0", "NVIDIA GeForce RTX 4060", DeviceType.GPU, 7_600_000_000, 8 * GB
)
VULKAN = Runtime((Backend("CPU", 1, "haswell"), Backend("Vulkan", 1)), (CPU_DEVICE, RTX), True)
OLD_DRIVER = Runtime(
    (Backend("CUDA", 0), Backend("CPU", 1, "haswell")),
    (CPU_DEVICE,),
    False,
    gpu_problems=(GpuProblem("CUDA", "CUDA found no GPU: update it"),),
)
NVML_8 = (Gpu("NVIDIA GeForce RTX 4060", 8 * GB, 7_600_000_000, "nvidia", "nvml"),)


def machine(runtime: Runtime | None, ram_gb: float = 16) -> Machine:
    return Machine(int(ram_gb * GB), None, NVML_8, runtime=runtime)


# --- the real llama.cpp -------------------------------------------------------------------


def test_the_installed_llama_cpp_enumerates_its_cpu():
    runtime = devices.enumerate_runtime()
    cpu = next(d for d in runtime.devices if d.type is DeviceType.CPU)
    assert cpu.backend == "CPU" and cpu.memory_total > 0
    assert "CPU" in [b.name for b in runtime.backends]
    assert runtime.library.startswith("llama-cpp-python ")
    if not runtime.gpu_offload:  # a CPU build (this machine): nothing counts as a GPU
        assert runtime.gpu_devices == ()
        assert lr.summary(runtime).startswith("this build runs on the CPU only")


def _parlor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_devices_json_has_the_issue_shape_and_round_trips():
    done = _parlor("devices", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {"backends", "devices", "gpu_offload"} <= set(data)
    for device in data["devices"]:
        assert {"backend", "name", "type", "memory_free", "memory_total"} <= set(device)
        assert device["type"] in {t.value for t in DeviceType}
    assert [d["name"] for d in data["devices"]] == [
        d.name for d in devices.enumerate_runtime().devices
    ]


def test_devices_text_names_the_runtime():
    done = _parlor("devices")
    assert done.returncode == 0, done.stderr
    assert "Backends:" in done.stdout and "Devices:" in done.stdout and "CPU" in done.stdout


def test_read_machine_asks_llama_cpp_through_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(lr, "_recent", None)
    found = lr.probe_runtime()
    assert found.problem is None
    assert [d.name for d in found.devices] == [d.name for d in devices.enumerate_runtime().devices]
    # a second dialog within the minute gets the same answer without another child process
    monkeypatch.setattr(lr, "devices_command", lambda: ["/nonexistent/parlor"])
    assert lr.probe_runtime() is found
    monkeypatch.setattr(lr, "RECENT_S", 0.0)
    assert "FileNotFoundError" in lr.probe_runtime().problem


def test_cpu_variant_is_read_from_the_memory_map(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text(
        "7f00-7f10 r-xp 0 08:01 1 /opt/parlor/_internal/llama_cpp/lib/"
        "libggml-cpu-haswell.so\n7f20-7f30 r-xp 0 08:01 2 /usr/lib/libc.so.6\n"
    )
    assert devices.cpu_variant(maps) == "haswell"
    maps.write_text("7f20-7f30 r-xp 0 08:01 2 /usr/lib/libc.so.6\n")
    assert devices.cpu_variant(maps) is None
    assert devices.cpu_variant(tmp_path / "absent") is None


# --- the probe's failures -------------------------------------------------------------------


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.mark.parametrize(
    "code, expected",
    [
        ("import sys; print('boom', file=sys.stderr); sys.exit(3)", "exit status 3: boom"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "killed by signal 11"),
        ("print('not json')", "unreadable answer"),
        ("print('{\"devices\": []}')", "unreadable answer: KeyError"),
    ],
)
def test_a_failed_probe_is_a_problem_not_a_crash(code, expected):
    found = lr.probe_runtime(_python(code))
    assert expected in found.problem
    assert found.gpu_devices == () and not found.gpu_offload


def test_a_hanging_probe_times_out():
    found = lr.probe_runtime(_python("import time; time.sleep(30)"), timeout=0.5)
    assert found.problem == "no answer within 0.5 s"


def test_a_missing_executable_is_a_problem():
    assert "FileNotFoundError" in lr.probe_runtime([str(Path("/nonexistent/parlor"))]).problem


def test_read_machine_keeps_the_runtime_and_its_problem(tmp_path):
    options = dict(
        nvml=None,
        nvidia_smi=lambda: None,
        sysfs_root=tmp_path,
        dxgi=lambda: [],
        system="Linux",
        cpu="x86_64",
        virtual_memory=lambda: SimpleNamespace(total=16 * GB, available=9 * GB),
    )
    assert m.read_machine(**options, runtime=lambda: VULKAN).runtime == VULKAN

    def broken():
        raise RuntimeError("driver fell over")

    failed = m.read_machine(**options, runtime=broken)
    assert "llama.cpp: RuntimeError: driver fell over" in failed.problems
    assert failed.runtime is not None and not failed.can_offload


# --- the fit rule ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog():
    return cat.load_catalog()


def test_a_cpu_build_counts_no_vram_whatever_the_card(catalog):
    """The issue's machine: 16 GB RAM, an 8 GB NVIDIA card, llama.cpp built for the CPU."""
    cpu_box = machine(CPU_ONLY)
    assert cat.usable_bytes(cpu_box) == 14 * GB
    rec, rows = cat.evaluate(catalog, cpu_box)
    assert rec.entry.quant == "Q2_K"  # not Q4_K_M "partly on the GPU"
    q2 = next(r.plan for r in rows if r.entry.quant == "Q2_K")
    assert (q2.mode, q2.n_gpu_layers) == ("cpu", 0)
    assert q2.describe() == "on the CPU: this build runs on the CPU only"


def test_a_cuda_build_whose_driver_is_too_old_counts_no_vram_and_says_its_gpu_failed(catalog):
    rec, rows = cat.evaluate(catalog, machine(OLD_DRIVER))
    assert rec.entry.quant == "Q2_K"
    q2 = next(r.plan for r in rows if r.entry.quant == "Q2_K")
    assert (q2.mode, q2.n_gpu_layers) == ("cpu", 0)
    assert q2.describe() == "on the CPU: this build's GPU backend found no GPU"


def test_a_vulkan_device_is_counted(catalog):
    vulkan_box = machine(VULKAN)
    assert cat.usable_bytes(vulkan_box) == 22 * GB
    rec, rows = cat.evaluate(catalog, vulkan_box)
    assert rec.entry.quant == "Q4_K_M"
    plan = next(r.plan for r in rows if r.entry.quant == "Q4_K_M")
    assert (plan.mode, plan.gpu_layers) == ("partial", 17)
    assert not plan.cpu_only_build


def test_llama_cpp_memory_wins_over_the_probes(catalog):
    """NVML may say 8 GB while llama.cpp's device (what it will fill) reports 6."""
    small = LlamaDevice("CUDA", "CUDA0", "RTX", DeviceType.GPU, 5 * GB, 6 * GB)
    box = machine(Runtime(VULKAN.backends, (CPU_DEVICE, small), True))
    assert box.offload_vram == 6 * GB and box.offload_free_vram == 5 * GB
    assert cat.usable_bytes(box) == 20 * GB


def test_an_integrated_gpu_offloads_but_adds_no_memory():
    igpu = LlamaDevice("Vulkan", "Vulkan0", "Intel UHD", DeviceType.IGPU, 4 * GB, 8 * GB)
    box = Machine(16 * GB, None, (), runtime=Runtime((), (CPU_DEVICE, igpu), True))
    assert box.can_offload and box.offload_vram == 0
    assert cat.usable_bytes(box) == 14 * GB


def test_a_gpu_device_in_a_build_that_cannot_offload_does_not_count():
    odd = Runtime(VULKAN.backends, VULKAN.devices, gpu_offload=False)
    assert machine(odd).offload_vram == 0 and not machine(odd).can_offload


def test_apple_silicon_needs_metal_for_its_gpu_share():
    metal = LlamaDevice("Metal", "MTL0", "Apple M2", DeviceType.GPU, 21 * GB, 21 * GB)
    apple = Gpu("Apple M2", 24 * GB, None, "apple", "apple", dedicated=False)
    with_metal = Machine(
        32 * GB, None, (apple,), unified_memory=True, runtime=Runtime((), (CPU_DEVICE, metal), True)
    )
    assert with_metal.gpu_budget == 24 * GB and with_metal.offload_vram == 0
    without = Machine(32 * GB, None, (apple,), unified_memory=True, runtime=CPU_ONLY)
    assert without.gpu_budget == 0


@pytest.mark.parametrize(
    "ram, vram, expected", [(16, 0, "Q2_K"), (16, 8, "Q4_K_M"), (8, 0, None), (32, 0, "Q6_K")]
)
def test_the_original_cases_hold_with_a_gpu_runtime(catalog, ram, vram, expected):
    gpu = LlamaDevice("Vulkan", "Vulkan0", "GPU", DeviceType.GPU, int(vram * GB), int(vram * GB))
    box = Machine(int(ram * GB), None, runtime=Runtime((), (CPU_DEVICE, gpu), True))
    rec = cat.recommend(catalog.entries, box)
    assert (rec.entry.quant if rec.entry else None) == expected


def test_given_vram_replaces_what_llama_cpp_said():
    assert machine(CPU_ONLY).with_overrides(vram_gb=8).offload_vram == 8 * GB


# --- what people read -----------------------------------------------------------------------


def test_the_machine_summary_names_the_runtime():
    assert m.describe(machine(VULKAN)).endswith(
        "llama.cpp: Vulkan: NVIDIA GeForce RTX 4060, 7.6 GB free"
    )
    assert m.describe(machine(CPU_ONLY)).endswith(
        "llama.cpp: this build runs on the CPU only (haswell variant)"
    )
    assert "could not be asked" in m.describe(machine(lr.failed("exit status 1")))


ARC = LlamaDevice("Vulkan", "Vulkan0", "Intel(R) Arc(TM) A770", DeviceType.GPU, 15 * GB, 16 * GB)


def test_a_gpu_only_llama_cpp_sees_is_not_called_no_gpu():
    """NVML, nvidia-smi, sysfs (AMD) and DXGI miss some cards, an Intel GPU on Linux for one;
    when llama.cpp lists a GPU device the machine line names it and says no "no GPU found"."""
    seen = Runtime((Backend("CPU", 1, "haswell"), Backend("Vulkan", 1)), (CPU_DEVICE, ARC), True)
    assert m.describe(Machine(32 * GB, None, (), runtime=seen)) == (
        "32.0 GB RAM; llama.cpp: Vulkan: Intel(R) Arc(TM) A770, 15.0 GB free"
    )
    assert "no GPU found" in m.describe(Machine(32 * GB, None, (), runtime=CPU_ONLY))


def test_json_round_trip_keeps_every_field():
    assert Runtime.from_json(json.loads(json.dumps(VULKAN.to_json()))) == VULKAN
    assert Runtime.from_json(json.loads(json.dumps(OLD_DRIVER.to_json()))) == OLD_DRIVER


def test_the_summary_says_why_a_gpu_backend_gives_no_device():
    assert lr.summary(OLD_DRIVER) == (
        "runs on the CPU only (haswell variant); CUDA found no GPU: update it"
    )
    both = Runtime(VULKAN.backends, VULKAN.devices, True, gpu_problems=OLD_DRIVER.gpu_problems)
    assert lr.summary(both).endswith("7.6 GB free; CUDA found no GPU: update it")


# --- why a GPU backend gives no device ------------------------------------------------------
# ggml's own lines (paths shortened): the cuda runtime with a driver too old for CUDA 13 (a
# stand-in libcuda.so.1 saying 12.4, tests/packaging/test_cuda_runtime.py), and the vulkan
# runtime where the only Vulkan device is a CPU one, which ggml skips.
OLD_DRIVER_LOG = [
    "ggml_cuda_init: failed to initialize CUDA: CUDA driver version is insufficient for CUDA "
    "runtime version\n",
    "load_backend: loaded CUDA backend from /opt/parlor/lib/libggml-cuda.so\n",
    "load_backend: loaded CPU backend from /opt/parlor/lib/libggml-cpu-haswell.so\n",
]
NO_VULKAN_DEVICE_LOG = [
    "ggml_vulkan: No devices found.\n",
    "load_backend: loaded Vulkan backend from /opt/parlor/lib/libggml-vulkan.so\n",
    "load_backend: loaded CPU backend from /opt/parlor/lib/libggml-cpu-haswell.so\n",
]


def _lib_folder(tmp_path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def test_a_driver_too_old_for_the_bundled_cuda_says_which_driver_it_needs(tmp_path):
    folder = _lib_folder(tmp_path, "libggml-cuda.so", "libcudart.so.13", "libggml-cpu-x64.so")
    found = bp.problems({"CUDA": 0, "CPU": 1}, folder, OLD_DRIVER_LOG)
    assert found == (
        GpuProblem(
            "CUDA",
            "CUDA found no GPU: failed to initialize CUDA: CUDA driver version is insufficient "
            "for CUDA runtime version (update the NVIDIA driver: this build's CUDA 13 needs "
            "version 580 or newer)",
        ),
    )


def test_a_vulkan_backend_without_a_device_says_so(tmp_path):
    folder = _lib_folder(tmp_path, "libggml-vulkan.so")
    (problem,) = bp.problems({"Vulkan": 0, "CPU": 1}, folder, NO_VULKAN_DEVICE_LOG)
    assert problem.backend == "Vulkan"
    assert problem.reason.startswith("Vulkan found no GPU: No devices found (no GPU driver")


def test_backends_with_devices_and_the_cpu_are_no_problem(tmp_path):
    folder = _lib_folder(tmp_path, "libggml-vulkan.so", "libggml-cpu-haswell.so")
    assert bp.problems({"Vulkan": 1, "CPU": 1}, folder, NO_VULKAN_DEVICE_LOG) == ()


def test_lines_go_to_the_backend_whose_load_they_preceded():
    said = bp.said_before_load(["ggml_x: one\n", *OLD_DRIVER_LOG, "late\n"])
    assert said == {
        "CUDA": ["ggml_x: one", OLD_DRIVER_LOG[0].strip()],
        "CPU": [],
    }


def test_a_module_that_loads_but_does_not_register_is_reported(tmp_path):
    """ggml-vulkan returns no registry when the Vulkan loader finds no driver (ICD) at all;
    ggml logs nothing then, so the reason is generic."""
    source = tmp_path / "backend.c"
    source.write_text("int ggml_backend_init(void) { return 0; }\n")
    folder = tmp_path / "lib"
    folder.mkdir()
    if not shutil.which("cc"):
        pytest.skip("needs a C compiler")
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-o", str(folder / "libggml-vulkan.so"), str(source)],
        check=True,
    )
    assert bp.problems({"CPU": 1}, folder, []) == (
        GpuProblem(
            "Vulkan",
            "Vulkan (libggml-vulkan.so) loaded but did not start: no usable driver or device",
        ),
    )


def test_a_vulkan_build_on_a_machine_without_the_vulkan_loader_says_so(tmp_path):
    """ggml-vulkan links libvulkan.so.1, the loader a GPU driver installs: a module built
    against a stand-in loader, which is then gone, fails to load as it would there."""
    if not shutil.which("cc"):
        pytest.skip("needs a C compiler")
    try:
        ctypes.CDLL("libvulkan.so.1")
        pytest.skip("a Vulkan loader is installed here: the linker would find that one")
    except OSError:
        pass
    loader_dir, folder = tmp_path / "loader", tmp_path / "lib"
    loader_dir.mkdir()
    folder.mkdir()
    (tmp_path / "loader.c").write_text("int vkCreateInstance(void) { return 0; }\n")
    (tmp_path / "backend.c").write_text(
        "int vkCreateInstance(void);\nint ggml_backend_init(void) { return vkCreateInstance(); }\n"
    )
    loader = loader_dir / "libvulkan.so.1"
    cc = ["cc", "-shared", "-fPIC"]
    subprocess.run(
        [*cc, "-Wl,-soname,libvulkan.so.1", "-o", str(loader), str(tmp_path / "loader.c")],
        check=True,
    )
    module = folder / "libggml-vulkan.so"
    subprocess.run([*cc, "-o", str(module), str(tmp_path / "backend.c"), str(loader)], check=True)
    loader.unlink()
    (problem,) = bp.problems({"CPU": 1}, folder, [])
    assert problem.backend == "Vulkan"
    assert problem.reason.startswith("Vulkan (libggml-vulkan.so) did not load: ")
    assert "libvulkan.so.1" in problem.reason
    assert problem.reason.endswith("(no Vulkan loader is installed)")


def test_the_log_is_recorded_and_handed_back_to_whoever_had_it(tiny_llama_path):
    """llama.cpp has one log callback: a tool that collects the log (the runtime probes do)
    gets it back after the backends' load read it, and saw those lines too."""
    import llama_cpp

    from app.core.engine import llama_log

    collected: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(_level: int, text: bytes, _data: object) -> None:
        collected.append(text.decode("utf-8", "replace"))

    params = llama_cpp.llama_model_default_params()

    def load_and_free() -> None:
        model = llama_cpp.llama_model_load_from_file(str(tiny_llama_path).encode(), params)
        llama_cpp.llama_model_free(model)

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        with llama_log.captured() as said:
            load_and_free()
        assert any("llama_model_loader" in line for line in said)
        assert "".join(said) == "".join(collected)  # passed on as it came
        count, seen = len(said), len(collected)
        load_and_free()
        assert len(said) == count  # the block's end gave the log back...
        assert len(collected) > seen  # ...to the callback that had it
    finally:
        from llama_cpp import _logger

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


# --- the status bar -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, effective, text",
    [
        (17, {"gpu_offload": False}, "CPU only (this build has no GPU backend)"),
        (-1, {"gpu_offload": False}, "CPU only (this build has no GPU backend)"),
        (0, {"gpu_offload": True}, "CPU only"),
        (17, {"gpu_offload": True}, "GPU layers 17"),
        (-1, {"gpu_offload": True}, "all layers on the GPU"),
        (0, {}, "CPU only"),
        (-1, {"gpu_offload": False, "gpu_problems": ["CUDA"]}, "CPU only (CUDA did not start)"),
        (0, {"gpu_offload": False, "gpu_problems": ["CUDA"]}, "CPU only"),
    ],
)
def test_layers_text_never_claims_gpu_layers_without_a_gpu(n, effective, text):
    assert devices.layers_text(n, effective) == text


def test_the_engine_reports_whether_its_llama_cpp_can_offload(tiny_llama_path):
    from app.core.engine.base import LoadParams
    from app.core.engine.local import LocalEngine

    engine = LocalEngine()
    try:
        info = engine.load(LoadParams(model_path=str(tiny_llama_path), n_ctx=256, n_gpu_layers=17))
    finally:
        engine.unload()
    expected = devices.enumerate_runtime().gpu_offload
    assert info.effective["gpu_offload"] is expected
    if not expected:
        assert devices.layers_text(info.n_gpu_layers, info.effective).startswith("CPU only")


# --- loading a GGML_BACKEND_DL build's backends ----------------------------------------------


class FakeGgml:
    """The three libggml calls load_backends makes, recorded; `registered` backends exist."""

    def __init__(self, registered: int = 0):
        self.registered, self.calls = registered, []
        self.ggml_backend_load = self._load

    def ggml_backend_reg_count(self):
        return self.registered

    def ggml_backend_load_all_from_path(self, path: bytes):
        self.calls.append(("all", path.decode()))

    def _load(self, path: bytes):
        self.calls.append(("one", Path(path.decode()).name))


def variants(tmp_path) -> Path:
    for name in (
        "libggml-cpu-x64.so",
        "libggml-cpu-haswell.so",
        "libggml-cpu-skylakex.so",
        "libggml-vulkan.so",
        "libggml-cpu-notes.txt",
    ):
        (tmp_path / name).write_bytes(b"")
    return tmp_path


# What ggml_backend_score returns on an AVX2 CPU without AVX-512: 0 for what cannot run.
AVX2_SCORES = {"libggml-cpu-x64.so": 1, "libggml-cpu-haswell.so": 17, "libggml-cpu-skylakex.so": 0}


def test_a_dl_build_loads_every_backend_from_the_lib_folder(tmp_path):
    lib = FakeGgml()
    devices.load_backends(lib, folder=tmp_path)
    assert lib.calls == [("all", str(tmp_path))]


def test_cpu_only_loads_the_best_variant_this_cpu_runs_and_no_gpu_backend(tmp_path):
    lib = FakeGgml()
    devices.load_backends(
        lib, cpu_only=True, folder=variants(tmp_path), score=lambda p: AVX2_SCORES[p.name]
    )
    assert lib.calls == [("one", "libggml-cpu-haswell.so")]


def test_no_runnable_variant_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="no CPU variant of llama.cpp .* runs on this CPU"):
        devices.load_backends(
            FakeGgml(), cpu_only=True, folder=variants(tmp_path), score=lambda p: 0
        )


def test_a_build_with_backends_linked_in_is_left_alone(tmp_path):
    lib = FakeGgml(registered=1)
    devices.load_backends(lib, cpu_only=True, folder=tmp_path)
    assert lib.calls == []


def test_a_library_without_a_score_scores_zero(tmp_path):
    assert devices._variant_score(tmp_path / "absent.so") == 0


# --- the CUDA libraries a CUDA bundle carries ------------------------------------------------


def _shared_library(folder: Path, name: str, needs: str | None = None) -> None:
    """A real shared library named `name` (its SONAME), linked against `needs` by name only,
    with no RUNPATH: as ggml-cuda finds libcudart.so.12 on a user's machine."""
    source = folder / (name + ".c")
    source.write_text(f"int {name.split('.')[0].replace('-', '_')}_marker(void) {{ return 1; }}\n")
    argv = ["gcc", "-shared", "-fPIC", f"-Wl,-soname,{name}", "-o", str(folder / name), str(source)]
    if needs:
        argv += [f"-L{folder}", "-Wl,--no-as-needed", f"-l:{needs}"]
    subprocess.run(argv, check=True)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("gcc") is None,
    reason="builds real ELF libraries with gcc",
)
def test_preloaded_cuda_libraries_let_a_backend_without_runpath_load(tmp_path):
    _shared_library(tmp_path, "libcudart.so.12")
    _shared_library(tmp_path, "libcublasLt.so.12", needs="libcudart.so.12")
    _shared_library(tmp_path, "libcublas.so.12", needs="libcublasLt.so.12")
    _shared_library(tmp_path, "libggml-cuda.so", needs="libcublas.so.12")
    load = (
        "import ctypes, sys; from pathlib import Path; from app.core.engine import devices;"
        " folder = Path(sys.argv[1]);"
        " loaded = devices.preload_gpu_libraries(folder) if sys.argv[2] == 'preload' else [];"
        " ctypes.CDLL(str(folder / 'libggml-cuda.so')); print([p.name for p in loaded])"
    )
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    without = subprocess.run(
        [sys.executable, "-c", load, str(tmp_path), "plain"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert without.returncode != 0 and "libcublas.so.12" in without.stderr
    done = subprocess.run(
        [sys.executable, "-c", load, str(tmp_path), "preload"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert done.stdout.strip() == "['libcudart.so.12', 'libcublasLt.so.12', 'libcublas.so.12']"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF SONAMEs")
def test_ggml_is_the_copy_libllama_links_not_a_second_one():
    """The wheel installs libggml.so and libggml.so.0 as two files; registering backends in
    the one llama_cpp._ggml opened by path left libllama (linked to libggml.so.0) with none
    in a GGML_BACKEND_DL build. tests/packaging/test_runtime_bundle.py checks it on one."""
    if not (devices.lib_dir() / "libggml.so.0").is_file():
        pytest.skip("this llama.cpp keeps one libggml file")
    assert devices.ggml_library()._name == "libggml.so.0"
