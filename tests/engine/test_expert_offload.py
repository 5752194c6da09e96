"""Expert tensors kept in RAM through llama.cpp's tensor_buft_overrides, on real llama.cpp.

On this CPU build every buffer is the CPU's anyway, so what is checked is that llama.cpp
receives the overrides (it logs each tensor it moves) and that the model then computes the
same greedy tokens; on a GPU build the same array is what keeps the experts off the GPU.
"""

from __future__ import annotations

import ctypes
import threading

import llama_cpp
import pytest

from app.core.engine import LoadParams, SamplingParams
from app.core.engine.expert_offload import expert_patterns, overrides_supported, tensors_in_ram
from app.core.engine.local import LocalEngine

GREEDY = SamplingParams(max_tokens=12, temperature=0.0, seed=1)


def test_the_installed_llama_cpp_python_has_the_field():
    assert overrides_supported()


def test_patterns_match_what_n_cpu_moe_keeps_in_ram():
    assert expert_patterns(2) == [
        r"blk\.0\.ffn_(up|down|gate)_(ch|)exps",
        r"blk\.1\.ffn_(up|down|gate)_(ch|)exps",
    ]
    assert expert_patterns(0) == []


def test_llama_cpp_moves_exactly_the_named_expert_tensors(tiny_moe_path):
    logged: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(_level, text, _data):
        logged.append(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        with tensors_in_ram(expert_patterns(1)):
            llm = llama_cpp.Llama(
                model_path=str(tiny_moe_path), n_ctx=256, n_gpu_layers=-1, verbose=True
            )
        del llm
    finally:
        from llama_cpp._logger import llama_log_callback as theirs  # what was there before

        llama_cpp.llama_log_set(theirs, ctypes.c_void_p(0))
    moved = sorted(line.split()[1] for line in logged if "buffer type overridden" in line)
    assert moved == [
        "blk.0.ffn_down_exps.weight",
        "blk.0.ffn_gate_exps.weight",
        "blk.0.ffn_up_exps.weight",
    ]


def _reply(path, n_cpu_moe: int) -> tuple[str, dict]:
    engine = LocalEngine()
    try:
        engine.load(
            LoadParams(model_path=str(path), n_ctx=256, n_gpu_layers=-1, n_cpu_moe=n_cpu_moe)
        )
        text = "".join(engine.stream("The harbour at dawn", GREEDY, threading.Event()))
        return text, engine.info.effective
    finally:
        engine.unload()


@pytest.mark.parametrize("n_cpu_moe", [1, 2])
def test_the_engine_applies_the_plan_and_generates_the_same_tokens(tiny_moe_path, n_cpu_moe):
    plain, _ = _reply(tiny_moe_path, 0)
    split, effective = _reply(tiny_moe_path, n_cpu_moe)
    assert effective["n_cpu_moe"] == n_cpu_moe
    assert split == plain and plain.strip()
