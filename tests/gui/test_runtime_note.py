"""The Model settings say where GPU layers go with the llama.cpp this app carries
(app/gui/runtime_note.py), and the expert split of a MoE model is a setting of its own."""

from __future__ import annotations

import threading

from PySide6.QtWidgets import QLabel

from app.core.appdata.llama_runtime import (
    Backend,
    DeviceType,
    GpuProblem,
    LlamaDevice,
    Runtime,
    failed,
    gpu_layers_note,
    probe_runtime,
)
from app.gui.runtime_note import RuntimeNote
from tests.gui.cut_text import cut_labels

CPU = LlamaDevice("CPU", "CPU", "AMD Ryzen 7 7700", DeviceType.CPU, 14_000_000_000, 16 * 10**9)
RTX = LlamaDevice("Vulkan", "Vulkan0", "NVIDIA GeForce RTX 4060", DeviceType.GPU, 7.6e9, 8e9)


def _note(qtbot, runtime: Runtime) -> str:
    note = RuntimeNote(lambda: runtime)
    qtbot.addWidget(note)
    qtbot.waitUntil(lambda: "GPU layers" in note.text(), timeout=10000)
    return note.text()


def test_a_gpu_runtime_names_the_device_the_layers_go_to(qtbot):
    runtime = Runtime((Backend("CPU", 1), Backend("Vulkan", 1)), (CPU, RTX), True)
    assert _note(qtbot, runtime) == (
        "GPU layers go to Vulkan: NVIDIA GeForce RTX 4060, 7.6 GB free."
    )


def test_a_backend_that_found_no_gpu_says_why_layers_stay_on_the_cpu(qtbot):
    runtime = Runtime(
        (Backend("CUDA", 0), Backend("CPU", 1, "haswell")),
        (CPU,),
        False,
        gpu_problems=(GpuProblem("CUDA", "CUDA found no GPU: update the NVIDIA driver"),),
    )
    assert _note(qtbot, runtime) == (
        "Runs on the CPU only (haswell variant); CUDA found no GPU: update the NVIDIA driver: "
        "GPU layers run on the CPU."
    )


def test_a_probe_that_failed_says_so_and_keeps_llama_cpps_name(qtbot):
    assert _note(qtbot, failed("exit status 1")) == (
        "llama.cpp could not be asked what it runs on (exit status 1): GPU layers run on the CPU."
    )


def test_the_dialog_opens_before_the_answer_and_fills_in(qtbot):
    answer = threading.Event()

    def slow() -> Runtime:
        answer.wait(10)
        return Runtime((Backend("CPU", 1, "haswell"),), (CPU,), False)

    note = RuntimeNote(slow)
    qtbot.addWidget(note)
    assert note.text() == "Asking llama.cpp what it can run on…"
    answer.set()
    qtbot.waitUntil(lambda: note.text() != "Asking llama.cpp what it can run on…", timeout=10000)
    assert note.text() == (
        "This build runs on the CPU only (haswell variant): GPU layers run on the CPU."
    )


def test_the_settings_window_asks_the_llama_cpp_installed_here(qtbot, make_window):
    """The real probe: `parlor devices --json` in a child process (a CPU build here)."""
    window = make_window()
    dialog = window.show_settings()
    notes = [n for n in dialog.findChildren(QLabel) if isinstance(n, RuntimeNote)]
    assert len(notes) == 1
    qtbot.waitUntil(lambda: "GPU layers" in notes[0].text(), timeout=60000)
    assert notes[0].text() == gpu_layers_note(probe_runtime())  # the same answer, cached
    assert "GPU layers go to" in notes[0].text() or "CPU only" in notes[0].text()


def test_the_expert_split_is_a_model_setting(qtbot, make_window):
    window = make_window()
    dialog = window.show_settings()
    kind, editor = dialog.editors["n_cpu_moe"]
    assert kind == "int" and editor.accessibleName() == "Experts in RAM (MoE)"
    editor.setValue(28)
    dialog.apply()
    assert window.ctx.settings.n_cpu_moe == 28


def test_a_long_answer_cuts_off_no_other_note_of_the_page(qtbot, make_window):
    """The answer comes after the dialog is shown, and a label that grows then made Qt's form
    layout squeeze the notes below it to fewer lines than their text needs."""
    from PySide6.QtWidgets import QScrollArea

    answer = threading.Event()
    old_driver = Runtime(
        (Backend("CUDA", 0), Backend("CPU", 1, "haswell")),
        (CPU,),
        False,
        gpu_problems=(
            GpuProblem(
                "CUDA",
                "CUDA found no GPU: failed to initialize CUDA: CUDA driver version is "
                "insufficient for CUDA runtime version (update the NVIDIA driver: this "
                "build's CUDA 13 needs version 580 or newer)",
            ),
        ),
    )
    window = make_window()
    window.settings_ui.runtime_probe = lambda: answer.wait(10) and old_driver
    dialog = window.show_settings()
    dialog.resize(560, 430)
    qtbot.waitExposed(dialog)
    answer.set()
    (note,) = [n for n in dialog.findChildren(QLabel) if isinstance(n, RuntimeNote)]
    qtbot.waitUntil(lambda: "GPU layers run on the CPU" in note.text(), timeout=10000)
    qtbot.wait(100)
    page = dialog.sections["Model"]
    assert isinstance(page.parentWidget().parentWidget(), QScrollArea)
    assert cut_labels(page) == []
