"""Layer split vs expert split for a model that does not fit in VRAM, from its GGUF header.

The speed model (offload.py): seconds/token = CPU bytes read / CPU bandwidth + GPU bytes
read / GPU bandwidth, experts read in the router's share. The Mixtral-like figures below are
round numbers of the shape of a 4x9B MoE (8 GB card), worked out by hand in the comments.
"""

from __future__ import annotations

import pytest

from app.core.gguf.header import read_header
from app.core.hub import offload as o
from app.core.hub.offload import LayerBytes, ModelBytes, Split

GB = 1_000_000_000


def moe(n_layer=32, dense=0.2, experts=1.2, kv=0.016, share=0.25) -> ModelBytes:
    layer = LayerBytes(int(dense * GB), int(experts * GB), int(kv * GB))
    return ModelBytes(
        (layer,) * n_layer,
        embeddings=int(0.5 * GB),
        output=int(0.5 * GB),
        compute=int(0.3 * GB),
        expert_share=share,
    )


def test_the_header_splits_experts_from_the_rest(tiny_moe_path):
    header = read_header(tiny_moe_path)
    mb = o.model_bytes(header, n_ctx=256)
    assert mb.is_moe and len(mb.layers) == header.n_layer
    assert mb.expert_share == 0.5  # the tiny model routes to 2 of 4 experts
    for il, layer in enumerate(mb.layers):
        exps = sum(
            t.nbytes
            for t in header.tensors
            if t.name.startswith(f"blk.{il}.ffn_") and "_exps" in t.name
        )
        rest = sum(t.nbytes for t in header.tensors if t.name.startswith(f"blk.{il}.")) - exps
        assert (layer.experts, layer.dense) == (exps, rest)
        assert layer.kv > 0
    assert mb.embeddings == header.tensor("token_embd.weight").nbytes
    assert (
        mb.embeddings + mb.output + sum(lb.dense + lb.experts for lb in mb.layers)
        == header.tensor_bytes
    )


def test_a_dense_model_has_only_the_layer_split(tiny_llama_path):
    mb = o.model_bytes(read_header(tiny_llama_path), n_ctx=256)
    assert not mb.is_moe
    assert o.best_expert_split(mb, 10**12) is None
    assert o.choose(mb, 0).split is Split.CPU


def test_half_fitting_moe_prefers_the_expert_split():
    """8 GB: the layer split holds 5 layers (5 x 1.416 + 0.3 compute <= 8); the expert split
    holds every layer's attention (32 x 0.216 + 0.5 + 0.3 = 7.71) and no experts.
    Speed: layers (27 x 0.5 + 0.5 output) GB / 60 GB/s + 5 x 0.5 / 300 = 0.242 s; experts
    32 x 0.3 / 60 + (32 x 0.2 + 0.5) / 300 = 0.183 s."""
    mb = moe()
    layers = o.best_layer_split(mb, 8 * GB)
    assert (layers.split, layers.n_gpu_layers) == (Split.LAYERS, 5)
    assert layers.seconds_per_token == pytest.approx(0.2417, abs=1e-3)
    experts = o.best_expert_split(mb, 8 * GB)
    assert (experts.n_gpu_layers, experts.n_cpu_moe) == (-1, 32)
    assert experts.seconds_per_token == pytest.approx(0.183, abs=1e-3)
    chosen = o.choose(mb, 8 * GB)
    assert chosen == experts
    assert chosen.describe() == "attention on the GPU, experts of 32 of 32 layers in RAM"


def test_a_bigger_card_keeps_more_experts_on_the_gpu():
    """16 GB: 7.71 GB of attention + (32 - K) x 1.2 GB of experts <= 16 -> K = 26."""
    plan = o.choose(moe(), 16 * GB)
    assert (plan.split, plan.n_cpu_moe) == (Split.EXPERTS, 26)
    assert plan.describe() == "attention on the GPU, experts of 26 of 32 layers in RAM"
    assert plan.tensor_overrides()[0] == (r"blk\.0\.ffn_(up|down|gate)_(ch|)exps", "CPU")
    assert len(plan.tensor_overrides()) == 26


def test_when_attention_alone_does_not_fit_the_layer_split_is_used():
    plan = o.choose(moe(), 6 * GB)
    assert plan.split is Split.LAYERS and plan.n_gpu_layers == 4


def test_an_engine_without_overrides_gets_the_layer_split():
    plan = o.choose(moe(), 8 * GB, expert_split_available=False)
    assert plan.split is Split.LAYERS and plan.describe() == "5 of 32 layers on the GPU"


def test_ram_must_hold_the_cpu_side():
    """16 GB card: the expert split leaves 26 x 1.2 + 0.5 = 31.7 GB in RAM; the layer split
    (11 layers on the GPU) 21 x 1.416 + 0.5 + 0.5 = 30.74 GB. With 31 GB of RAM only the
    slower layer split fits, so it is the one chosen."""
    mb = moe()
    assert o.best_expert_split(mb, 16 * GB).cpu_bytes == int(31.7 * GB)
    layers = o.best_layer_split(mb, 16 * GB)
    assert (layers.n_gpu_layers, layers.cpu_bytes) == (11, int(30.736 * GB))
    assert o.choose(mb, 16 * GB, ram_budget=31 * GB) == layers
    assert o.choose(mb, 16 * GB, ram_budget=32 * GB).split is Split.EXPERTS


def test_everything_fits_is_all_on_the_gpu():
    plan = o.choose(moe(), 100 * GB)
    assert plan.describe() == "fully on the GPU" and plan.n_gpu_layers == -1
    assert plan.tensor_overrides() == []


def _machine(vram: int, gpu_offload: bool = True):
    from app.core.appdata.llama_runtime import DeviceType, LlamaDevice, Runtime
    from app.core.appdata.machine import Machine

    devices = (
        LlamaDevice("CPU", "CPU", "cpu", DeviceType.CPU, 8 * GB, 16 * GB),
        LlamaDevice("Vulkan", "Vulkan0", "GPU", DeviceType.GPU, vram, vram),
    )
    return Machine(16 * GB, None, runtime=Runtime((), devices, gpu_offload))


def test_the_picker_text_names_the_expert_split(tiny_moe_path, tmp_path):
    """A 4-layer MoE whose attention (and compute buffer) fits in 2.5 MB of VRAM but not all
    its experts: the experts of the first 2 layers stay in RAM."""
    from app.core.hub import catalog as cat
    from tests.tiny_models import write_tiny_llama

    header = read_header(write_tiny_llama(tmp_path / "moe4.gguf", n_expert=4, n_layer=4))
    plan = o.plan_for(header, _machine(2_500_000), n_ctx=256)
    assert (plan.split, plan.n_cpu_moe) == (Split.EXPERTS, 2)
    run = cat.RunPlan("partial", 2, 4, False, None, offload=plan)
    assert run.describe() == (
        "partly on the GPU: attention on the GPU, experts of 2 of 4 layers in RAM"
    )
    assert o.plan_for(header, _machine(2_500_000, gpu_offload=False), n_ctx=256) is None
    assert o.plan_for(read_header(tiny_moe_path), _machine(100 * GB), n_ctx=256) is None  # fits
