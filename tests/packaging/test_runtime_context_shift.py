"""Context shift with a partly offloaded model, on the built runtime's llama.cpp: two of the
tiny model's three layers on a Vulkan device (lavapipe, Mesa's software GPU), the third and
the shift's bookkeeping on the CPU. The chat and the checks are those of
tests/engine/test_context_shift.py, run by `shift_probe.py` in the runtime's own Python.

Measured here (14 turns at n_ctx 1024, flash attention on): 11 turns shifted, the top token
the same as a full read's every turn, logits within 3.7e-4 of it (4.6e-4 over 30 turns), no
greedy reply parted; about 4 minutes, since lavapipe computes on the CPU.
"""

from __future__ import annotations

from pathlib import Path

from tests.engine.shift_drive import TIE, TOLERANCE
from tests.packaging.test_runtime_bundle import _run, pytestmark  # noqa: F401

SHIFT_PROBE = Path(__file__).with_name("shift_probe.py")


def test_a_partly_offloaded_model_shifts_as_a_full_read_answers(tiny_llama_path):
    run = _run([str(SHIFT_PROBE), str(tiny_llama_path), "--gpu-layers", "2"], vulkan=True)
    assert run["offloaded"] == ["load_tensors: offloaded 2/3 layers to GPU"]
    assert any("Vulkan0" in line for line in run["devices"]), run["devices"]
    turns = run["turns"]
    shifted = [t for t in turns if t["shifted_tokens"]]
    assert len(shifted) >= 8, turns
    for i, t in enumerate(turns):
        assert t["same_top"] and t["logit_gap"] <= TOLERANCE, f"turn {i}: {t}"
        assert t["parting_gap"] is None or t["parting_gap"] < TIE, f"turn {i}: {t}"
        assert not t["full_read_reason"], f"turn {i}: {t}"
    for t in shifted:  # only the new part was evaluated, as on the CPU
        assert t["evaluated_tokens"] < 0.3 * t["prompt_tokens"], t
