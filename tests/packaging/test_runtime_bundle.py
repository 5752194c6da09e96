"""The llama.cpp runtime the installers bundle, checked on what this machine can emulate.

`python packaging/build.py --runtime vulkan` compiles llama-cpp-python with every CPU variant
and the Vulkan backend into `build/runtimes/vulkan-<os>-py3XY/venv` (about an hour on two
cores, so not in every CI run; the environment is kept between builds). These tests run that
environment's Python (`PARLOR_RUNTIME_PYTHON` names another one) and are skipped, saying so,
when it has not been built.

- Vulkan without a GPU: Mesa's software device (lavapipe, Debian `mesa-vulkan-drivers`).
  ggml skips CPU-type Vulkan devices unless one is named, so `GGML_VK_VISIBLE_DEVICES=0`.
- Other CPUs: `qemu-x86_64 -cpu Haswell` (AVX2, no AVX-512) and `-cpu Nehalem` (SSE4.2 only),
  Debian `qemu-user`, for the CPU variant ggml picks and for a whole reply through the app's
  engine child, which multiprocessing then starts under qemu as well.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.built_runtimes import (
    QEMU,
    frozen_under_qemu,
    load_build_module,
    qemu_emulates_avx2,
    runtime_python,
)

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("runtime_probe.py")
LAVAPIPE = Path("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")
# Largest difference in the first reply token's logits (which span about -22 to +10) between
# lavapipe and the CPU backend: measured 3.5e-3 on the tiny llama and 4.3e-3 on the tiny MoE
# here (ggml-vulkan's matrix products take the activations in f16). 0.05 is ten times that
# and a tenth of the gap between the two best tokens (0.47 and 0.88).
LOGIT_TOLERANCE = 0.05


def _logit_gap(a: dict, b: dict) -> float:
    return max(abs(x - y) for x, y in zip(a["first_logits"], b["first_logits"], strict=True))


PYTHON = runtime_python("vulkan", "PARLOR_RUNTIME_PYTHON")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PYTHON is None,
        reason="no runtime built: run `python packaging/build.py --runtime vulkan` first",
    ),
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or platform.machine() != "x86_64",
        reason="lavapipe and qemu-user checks are for x86-64 Linux",
    ),
]


def _env(vulkan: bool) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if vulkan:
        env.update(VK_ICD_FILENAMES=str(LAVAPIPE), GGML_VK_VISIBLE_DEVICES="0")
    else:
        env["VK_ICD_FILENAMES"] = "/nonexistent.json"  # no Vulkan device at all
    return env


def _run(argv: list[str], *, vulkan: bool = False, prefix: tuple[str, ...] = ()) -> dict:
    done = subprocess.run(
        [*prefix, str(PYTHON), *argv],
        capture_output=True,
        text=True,
        env=_env(vulkan),
        cwd=ROOT,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _probe(model: Path, *args: str, vulkan: bool = False, prefix: tuple[str, ...] = ()) -> dict:
    return _run([str(PROBE), str(model), *args], vulkan=vulkan, prefix=prefix)


def _devices(prefix: tuple[str, ...] = (), vulkan: bool = False) -> dict:
    return _run(["-m", "app", "devices", "--json"], vulkan=vulkan, prefix=prefix)


def _runtime_package() -> Path:
    """The runtime's llama_cpp package folder (its libraries are in lib/)."""
    code = "import llama_cpp, os; print(os.path.dirname(llama_cpp.__file__))"
    done = subprocess.run([str(PYTHON), "-c", code], capture_output=True, text=True, check=True)
    return Path(done.stdout.strip())


needs_lavapipe = pytest.mark.skipif(
    not LAVAPIPE.exists(), reason="Mesa's lavapipe is not installed (mesa-vulkan-drivers)"
)
needs_qemu = pytest.mark.skipif(
    not qemu_emulates_avx2(), reason="needs qemu-user 7.2 or newer (qemu-x86_64)"
)


# --- the build itself --------------------------------------------------------------------
def test_the_runtime_passes_the_portability_check():
    llama_check = load_build_module().llama_check
    lib = _runtime_package()
    build = llama_check.read_build(lib.parent, lib / "lib")
    assert llama_check.problems(build, "vulkan", platform.machine()) == []
    assert {"x64", "sse42", "haswell", "skylakex"} <= build.cpu_variants


# --- Vulkan on lavapipe ----------------------------------------------------------------------
@needs_lavapipe
def test_parlor_devices_lists_the_vulkan_device_and_the_cpu_variant():
    found = _devices(vulkan=True)
    vulkan = [d for d in found["devices"] if d["backend"] == "Vulkan"]
    assert vulkan and "llvmpipe" in vulkan[0]["description"]
    assert vulkan[0]["memory_total"] > 0
    assert found["gpu_offload"] is True
    cpu = next(b for b in found["backends"] if b["name"] == "CPU")
    assert cpu["variant"]  # the variant ggml chose for this CPU


def test_without_a_vulkan_device_the_build_still_runs_on_the_cpu():
    found = _devices(vulkan=False)
    assert [d["backend"] for d in found["devices"]] == ["CPU"]
    assert found["gpu_offload"] is False  # so no GPU layers are claimed or counted
    # no Vulkan driver at all: ggml-vulkan returns no registry and ggml says nothing
    assert found["gpu_problems"] == [
        {
            "backend": "Vulkan",
            "reason": "Vulkan (libggml-vulkan.so) loaded but did not start: "
            "no usable driver or device",
        }
    ]


@needs_lavapipe
def test_a_machine_whose_only_vulkan_device_is_the_cpu_is_told_why_it_runs_on_the_cpu():
    """ggml-vulkan skips CPU-type devices it is not told to use: it registers with none."""
    env = _env(vulkan=True)
    del env["GGML_VK_VISIBLE_DEVICES"]
    done = subprocess.run(
        [str(PYTHON), "-m", "app", "devices"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
        check=True,
    )
    first = done.stdout.splitlines()[0]
    assert ": runs on the CPU only (" in first
    assert first.endswith(
        "variant); Vulkan found no GPU: No devices found (no GPU driver offers a Vulkan "
        "device: install or update the GPU's driver)"
    )


@needs_lavapipe
def test_all_layers_on_vulkan_give_the_cpu_backends_greedy_tokens(tiny_llama_path):
    cpu = _probe(tiny_llama_path, "--cpu-only", "--gpu-layers", "0")
    gpu = _probe(tiny_llama_path, "--gpu-layers", "-1", vulkan=True)
    assert cpu["backends"] == ["CPU"]
    assert any("offloaded 3/3 layers to GPU" in line for line in gpu["offloaded"])
    assert any("Vulkan0 model buffer size" in line for line in gpu["buffers"])
    assert len(set(cpu["ids"])) > 3  # a real sequence, not one token over and over
    assert gpu["ids"] == cpu["ids"]
    assert _logit_gap(gpu, cpu) < LOGIT_TOLERANCE


@needs_lavapipe
def test_the_expert_offload_plan_keeps_experts_in_ram_and_the_tokens(tiny_moe_path):
    cpu = _probe(tiny_moe_path, "--cpu-only", "--gpu-layers", "0")
    split = _probe(tiny_moe_path, "--gpu-layers", "-1", "--cpu-moe", "1", vulkan=True)
    assert split["overridden"] == [
        "blk.0.ffn_down_exps.weight",
        "blk.0.ffn_gate_exps.weight",
        "blk.0.ffn_up_exps.weight",
    ]
    assert any("Vulkan0 model buffer size" in line for line in split["buffers"])
    assert len(set(cpu["ids"])) > 3
    assert split["ids"] == cpu["ids"]
    assert _logit_gap(split, cpu) < LOGIT_TOLERANCE


@needs_lavapipe
def test_the_apps_engine_child_replies_the_same_on_vulkan(tiny_moe_path):
    cpu = _probe(tiny_moe_path, "--engine", "--cpu-only")
    gpu = _probe(tiny_moe_path, "--engine", "--gpu-layers", "-1", "--cpu-moe", "1", vulkan=True)
    assert gpu["effective"]["gpu_offload"] is True and cpu["text"].strip()
    assert gpu["text"] == cpu["text"]


# --- a GPU driver that crashes ----------------------------------------------------------------
CRASHING_DRIVER = """
#include <signal.h>
int vk_icdNegotiateLoaderICDInterfaceVersion(unsigned *version) { raise(SIGSEGV); return 0; }
void *vk_icdGetInstanceProcAddr(void *instance, const char *name) { raise(SIGSEGV); return 0; }
"""


def _crashing_vulkan_driver(folder: Path) -> Path:
    """A Vulkan driver (ICD) that crashes when the loader first calls it, as a broken GPU
    driver does: the loader calls it while ggml-vulkan starts."""
    source = folder / "crash_icd.c"
    source.write_text(CRASHING_DRIVER)
    library = folder / "libcrash_icd.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    manifest = folder / "crash_icd.json"
    manifest.write_text(
        json.dumps(
            {
                "file_format_version": "1.0.0",
                "ICD": {"library_path": str(library), "api_version": "1.3.0"},
            }
        )
    )
    return manifest


@pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")
def test_a_gpu_driver_that_crashes_at_start_costs_a_note_not_the_window(tmp_path, tiny_llama_path):
    """The window asks for every layer on the GPU; the driver kills the process that starts it.
    `parlor devices` (the picker's probe) dies alone, and the app, through its real window
    (`--smoke-test`), says the GPU could not be used and replies on the CPU, where the reload
    starts no GPU driver at all."""
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.json").write_text(json.dumps({"n_gpu_layers": -1}))
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        PARLOR_HOME=str(home),
        VK_ICD_FILENAMES=str(_crashing_vulkan_driver(tmp_path)),
        QT_QPA_PLATFORM="offscreen",
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(PYTHON), "-m", "app", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=900,
        )

    assert run("devices", "--json").returncode == -11  # SIGSEGV: the driver's, not ours
    done = run("--smoke-test", "--model", str(tiny_llama_path), "--max-tokens", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["tokens"] > 0 and result["runs_on"] == "CPU only"
    (shown,) = result["shown"]
    assert shown.startswith("The GPU could not be used (the model process stopped while ")
    assert "updating the GPU driver may help" in shown
    assert shown.endswith("Parlor is loading the model on the CPU instead.")


# --- other CPUs under qemu -------------------------------------------------------------------
@needs_qemu
@pytest.mark.parametrize(("cpu", "variant"), [("Haswell", "haswell"), ("Nehalem", "sse42")])
def test_ggml_picks_the_variant_an_older_cpu_can_run(cpu, variant):
    found = _devices(prefix=(QEMU, "-cpu", cpu))
    assert next(b for b in found["backends"] if b["name"] == "CPU")["variant"] == variant


@needs_qemu
@pytest.mark.parametrize(("cpu", "variant"), [("Haswell", "haswell"), ("Nehalem", "sse42")])
def test_a_reply_on_an_older_cpu_matches_this_one(tiny_llama_path, cpu, variant):
    native = _probe(tiny_llama_path, "--engine", "--cpu-only")
    emulated = _probe(tiny_llama_path, "--engine", "--cpu-only", "--wrap", f"{QEMU} -cpu {cpu}")
    assert emulated["child_cpu_variant"] == variant  # the engine child ran on that CPU
    assert emulated["text"] == native["text"] and native["text"].strip()


# --- the frozen bundle ------------------------------------------------------------------------
def _bundle() -> Path | None:
    """A one-folder build frozen from a portable runtime: PARLOR_BUNDLE, else dist/parlor."""
    folder = Path(os.environ.get("PARLOR_BUNDLE", ROOT / "dist" / "parlor"))
    lib = folder / "_internal" / "llama_cpp" / "lib"
    return folder if any(lib.glob("libggml-cpu-sse42.so*")) else None


needs_bundle = pytest.mark.skipif(
    _bundle() is None, reason="no bundle frozen from the runtime (packaging/build.py)"
)


@needs_bundle
def test_the_bundle_ships_the_libraries_tested_here():
    bundled = _bundle() / "_internal" / "llama_cpp" / "lib"
    runtime = _runtime_package()
    names = [p.name for p in bundled.iterdir() if p.name.startswith("libggml-")]
    assert {"libggml-cpu-sse42.so", "libggml-cpu-haswell.so", "libggml-vulkan.so"} <= set(names)
    for name in names:
        assert (bundled / name).read_bytes() == (runtime / "lib" / name).read_bytes(), name


@needs_bundle
@needs_qemu
@pytest.mark.parametrize(("cpu", "variant"), [("Haswell", "haswell"), ("Nehalem", "sse42")])
def test_the_frozen_app_picks_the_variant_an_older_cpu_can_run(cpu, variant):
    out = frozen_under_qemu(_bundle(), cpu, _env(vulkan=False), "devices", "--json")
    found = json.loads(out)
    assert next(b for b in found["backends"] if b["name"] == "CPU")["variant"] == variant
