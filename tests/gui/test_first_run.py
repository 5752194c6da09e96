"""The first-run guide: recommends what fits, offers the ways to a model, shows only once."""

from __future__ import annotations

from app.core.appdata.llama_runtime import Backend, DeviceType, LlamaDevice, Runtime
from app.core.appdata.machine import GB, Gpu, Machine
from app.gui.first_run import DOWNLOAD, SKIP, FirstRunDialog, maybe_first_run
from tests.gui.cut_text import cut_labels


def test_recommends_the_quant_that_fits_this_machine(qtbot):
    dialog = FirstRunDialog(
        Machine(16 * GB, 10 * GB, (Gpu("RTX 4060", 8 * GB, 7 * GB, "nvidia", "nvml"),))
    )
    qtbot.addWidget(dialog)
    assert "Q4_K_M" in dialog.recommendation.text()
    assert dialog.buttons[DOWNLOAD].isEnabled()


def test_says_so_when_nothing_fits(qtbot):
    dialog = FirstRunDialog(Machine(8 * GB, 5 * GB))
    qtbot.addWidget(dialog)
    assert "too large" in dialog.recommendation.text()
    assert not dialog.buttons[DOWNLOAD].isEnabled()


def test_shown_once_then_never_again(qtbot, make_window):
    window = make_window()
    dialog = maybe_first_run(window, lambda: Machine(32 * GB, 20 * GB))
    assert dialog is not None
    qtbot.waitUntil(lambda: "Q6_K" in dialog.recommendation.text(), timeout=5000)
    dialog.buttons[SKIP].click()
    window.close()
    again = make_window()
    assert again.ctx.settings.first_run_done
    assert maybe_first_run(again, lambda: Machine(32 * GB, 20 * GB)) is None


def test_the_guide_opens_before_the_machine_is_read_and_fills_in_after(qtbot, make_window):
    """The device probe takes about 1.5 s: the window keeps turning while it runs."""
    import threading

    from PySide6.QtCore import QTimer

    window = make_window()
    answer = threading.Event()

    def slow_probe() -> Machine:
        answer.wait(10)
        return Machine(32 * GB, 20 * GB)

    ticks = []
    beat = QTimer(interval=20)
    beat.timeout.connect(lambda: ticks.append(1))
    beat.start()
    dialog = maybe_first_run(window, slow_probe)
    assert dialog is not None and dialog.isVisible()
    assert "Checking" in dialog.summary.text() and not dialog.buttons[DOWNLOAD].isEnabled()
    qtbot.wait(300)
    assert len(ticks) >= 5  # the event loop turned while the probe ran
    answer.set()
    qtbot.waitUntil(lambda: "Q6_K" in dialog.recommendation.text(), timeout=5000)
    assert "32 GB RAM" in dialog.summary.text() and dialog.buttons[DOWNLOAD].isEnabled()
    dialog.buttons[SKIP].click()


def test_a_guide_closed_with_its_window_mid_probe_takes_no_late_answer(qtbot):
    import threading

    from PySide6.QtWidgets import QWidget

    from app.gui.models.machine_probe import MachineProbe

    answer = threading.Event()
    parent = QWidget()
    probe = MachineProbe(lambda: (answer.wait(10), Machine(8 * GB, 4 * GB))[1], parent)
    got = []
    probe.ready.connect(got.append)
    probe.start()
    job = probe.slot.job
    parent.deleteLater()
    qtbot.waitUntil(lambda: probe.slot.job is None, timeout=2000)  # dropped with its owner
    answer.set()
    assert job.wait(5)
    qtbot.wait(50)
    assert got == []


def test_the_advice_that_comes_after_the_guide_opened_is_not_cut_off(qtbot):
    """Seen under Xvfb with the Vulkan runtime: the machine line grew to three lines when the
    probe answered, and the guide kept its first height, cutting off it and the intro."""
    dialog = FirstRunDialog(None)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    cpu = LlamaDevice("CPU", "CPU", "AMD EPYC", DeviceType.CPU, 24 * GB, 25 * GB)
    gpu = LlamaDevice(
        "Vulkan", "Vulkan0", "llvmpipe (LLVM 15.0.6, 256 bits)", DeviceType.GPU, 2 * GB, 2 * GB
    )
    runtime = Runtime((Backend("Vulkan", 1), Backend("CPU", 1, "haswell")), (cpu, gpu), True)
    dialog.set_machine(Machine(25 * GB, 24 * GB, runtime=runtime))
    qtbot.wait(100)
    assert "llvmpipe" in dialog.summary.text()
    assert cut_labels(dialog) == []
