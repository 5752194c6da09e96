"""The first-run guide: recommends what fits, offers the ways to a model, shows only once."""

from __future__ import annotations

from app.core.appdata.machine import GB, Gpu, Machine
from app.gui.first_run import DOWNLOAD, SKIP, FirstRunDialog, maybe_first_run


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
    assert dialog is not None and "Q6_K" in dialog.recommendation.text()
    dialog.buttons[SKIP].click()
    window.close()
    again = make_window()
    assert again.ctx.settings.first_run_done
    assert maybe_first_run(again, lambda: Machine(32 * GB, 20 * GB)) is None
