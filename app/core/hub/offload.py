"""Where a model's tensors go when it does not fit in VRAM: layer split or expert split.

For a dense model the only choice is how many whole layers go to the GPU (llama.cpp's
n_gpu_layers; the last ones, as it offloads from the end). For a mixture-of-experts model
there is a better one: keep attention, norms, the router and the KV cache of *every* layer
on the GPU and leave the expert tensors (`blk.N.ffn_{gate,up,down}_exps`) of the first K
layers in system RAM, as llama.cpp's `--n-cpu-moe K` does with `tensor_buft_overrides`.

Both plans are computed from the GGUF header (each tensor's byte size) and the faster one
that fits is chosen. The model of speed: generating a token is bound by memory bandwidth,
so its time is the bytes read on each side divided by that side's bandwidth,

    seconds/token = cpu_bytes_read / CPU_BANDWIDTH + gpu_bytes_read / GPU_BANDWIDTH

where a layer's dense tensors are read whole for every token and its experts only in the
share the router picks (expert_used_count / expert_count). That is why the expert split wins:
what it leaves on the CPU is read at a quarter (2 of 8 experts) or less. The bandwidths are
typical figures (dual-channel DDR5, a mid-range GPU), used only to rank the two plans; the
KV cache reads and the PCIe hops between the sides are left out (both plans have one hop per
token per side switch; the expert split has more, which a measurement on a real GPU should
check, see docs/benchmarks.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.appdata.machine import Machine
from app.core.appdata.text_enum import TextEnum
from app.core.gguf.header import GGUFHeader
from app.core.gguf.memory import estimate_memory

CPU_BANDWIDTH = 60e9  # bytes/s, dual-channel DDR5
GPU_BANDWIDTH = 300e9  # bytes/s, an RTX 4060-class card
_BLOCK = re.compile(r"^blk\.(\d+)\.")
_EXPERTS = re.compile(r"^blk\.\d+\.ffn_(gate|up|down)_(ch)?exps\b")


class Split(TextEnum):
    GPU = "gpu"  # everything on the GPU
    LAYERS = "layers"  # the last N layers on the GPU
    EXPERTS = "experts"  # every layer's attention on the GPU, experts of the first K in RAM
    CPU = "cpu"  # nothing fits on the GPU


@dataclass(frozen=True)
class LayerBytes:
    dense: int  # attention, norms, router, shared experts: read whole for every token
    experts: int  # ffn_*_exps: read in the router's share
    kv: int  # this layer's KV cache for the context size


@dataclass(frozen=True)
class ModelBytes:
    layers: tuple[LayerBytes, ...]
    embeddings: int  # token_embd: llama.cpp keeps it on the CPU
    output: int  # output and output_norm: offloaded as "one more layer"
    compute: int  # the GPU's compute buffer when anything is offloaded
    expert_share: float  # expert_used_count / expert_count (1.0 for a dense model)

    @property
    def is_moe(self) -> bool:
        return any(layer.experts for layer in self.layers)


def model_bytes(
    header: GGUFHeader, n_ctx: int = 4096, kv_type: str = "f16", flash_attn: bool = True
) -> ModelBytes:
    n_layer = header.n_layer
    dense, experts = [0] * n_layer, [0] * n_layer
    embeddings = output = 0
    for t in header.tensors:
        match = _BLOCK.match(t.name)
        if match and int(match.group(1)) < n_layer:
            target = experts if _EXPERTS.match(t.name) else dense
            target[int(match.group(1))] += t.nbytes
        elif t.name.startswith("output"):
            output += t.nbytes
        else:
            embeddings += t.nbytes
    all_gpu = estimate_memory(header, n_ctx, -1, kv_type, flash_attn)
    kv = all_gpu.kv_bytes // max(n_layer, 1)
    share = (header.expert_used_count / header.expert_count) if header.expert_count else 1.0
    return ModelBytes(
        tuple(LayerBytes(d, e, kv) for d, e in zip(dense, experts, strict=True)),
        embeddings,
        output,
        all_gpu.compute_gpu_bytes,
        min(share, 1.0),
    )


@dataclass(frozen=True)
class OffloadPlan:
    split: Split
    n_layer: int
    n_gpu_layers: int  # llama.cpp's setting: -1 all, N the last N
    n_cpu_moe: int  # experts of layers 0..K-1 kept in RAM (expert split only)
    gpu_bytes: int
    cpu_bytes: int
    seconds_per_token: float

    @property
    def tokens_per_s(self) -> float:
        return 1.0 / self.seconds_per_token if self.seconds_per_token else 0.0

    def describe(self) -> str:
        if self.split is Split.EXPERTS:
            if self.n_cpu_moe == 0:
                return "fully on the GPU"
            return (
                f"attention on the GPU, experts of {self.n_cpu_moe} of {self.n_layer} layers in RAM"
            )
        if self.split is Split.LAYERS:
            return f"{self.n_gpu_layers} of {self.n_layer} layers on the GPU"
        return "fully on the GPU" if self.split is Split.GPU else "on the CPU only"

    def tensor_overrides(self) -> list[tuple[str, str]]:
        """(tensor name regex, buffer) pairs for llama.cpp, as --n-cpu-moe makes them."""
        return [
            (rf"blk\.{il}\.ffn_(up|down|gate)_(ch|)exps", "CPU") for il in range(self.n_cpu_moe)
        ]


def _read_bytes(layer: LayerBytes, share: float) -> float:
    return layer.dense + layer.experts * share


def layer_split(mb: ModelBytes, n_gpu: int) -> OffloadPlan:
    """The last n_gpu layers (n_gpu > n_layer: and the output) on the GPU."""
    n_layer = len(mb.layers)
    first = max(n_layer - n_gpu, 0)
    on_gpu, on_cpu = mb.layers[first:], mb.layers[:first]
    output_gpu = n_gpu > n_layer
    gpu = sum(lb.dense + lb.experts + lb.kv for lb in on_gpu) + (mb.compute if n_gpu else 0)
    gpu += mb.output if output_gpu else 0
    cpu = sum(lb.dense + lb.experts + lb.kv for lb in on_cpu) + mb.embeddings
    cpu += 0 if output_gpu else mb.output
    cpu_read = sum(_read_bytes(lb, mb.expert_share) for lb in on_cpu)
    cpu_read += 0 if output_gpu else mb.output
    gpu_read = sum(_read_bytes(lb, mb.expert_share) for lb in on_gpu)
    gpu_read += mb.output if output_gpu else 0
    split = Split.GPU if output_gpu else (Split.LAYERS if n_gpu else Split.CPU)
    return OffloadPlan(
        split,
        n_layer,
        -1 if output_gpu else n_gpu,
        0,
        gpu,
        cpu,
        cpu_read / CPU_BANDWIDTH + gpu_read / GPU_BANDWIDTH,
    )


def expert_split(mb: ModelBytes, n_cpu_moe: int) -> OffloadPlan:
    """Every layer's dense tensors and KV on the GPU; experts of the first n_cpu_moe in RAM."""
    n_layer = len(mb.layers)
    gpu = sum(lb.dense + lb.kv for lb in mb.layers) + mb.output + mb.compute
    gpu += sum(lb.experts for lb in mb.layers[n_cpu_moe:])
    cpu = sum(lb.experts for lb in mb.layers[:n_cpu_moe]) + mb.embeddings
    cpu_read = sum(lb.experts * mb.expert_share for lb in mb.layers[:n_cpu_moe])
    gpu_read = sum(lb.dense + lb.experts * mb.expert_share for lb in mb.layers[n_cpu_moe:])
    gpu_read += sum(lb.dense for lb in mb.layers[:n_cpu_moe]) + mb.output
    return OffloadPlan(
        Split.EXPERTS,
        n_layer,
        -1,
        n_cpu_moe,
        gpu,
        cpu,
        cpu_read / CPU_BANDWIDTH + gpu_read / GPU_BANDWIDTH,
    )


def best_layer_split(mb: ModelBytes, gpu_budget: int) -> OffloadPlan:
    n_layer = len(mb.layers)
    for n_gpu in range(n_layer + 1, -1, -1):  # n_layer + 1: the output layer too
        plan = layer_split(mb, n_gpu)
        if plan.gpu_bytes <= gpu_budget:
            return plan
    return layer_split(mb, 0)


def best_expert_split(mb: ModelBytes, gpu_budget: int) -> OffloadPlan | None:
    """The fewest layers' experts in RAM that let the rest fit; None if attention alone
    does not fit, or the model has no experts."""
    if not mb.is_moe:
        return None
    for n_cpu_moe in range(len(mb.layers) + 1):
        plan = expert_split(mb, n_cpu_moe)
        if plan.gpu_bytes <= gpu_budget:
            return plan
    return None


def choose(
    mb: ModelBytes,
    gpu_budget: int,
    ram_budget: int | None = None,
    *,
    expert_split_available: bool = True,
) -> OffloadPlan:
    """The faster of the two plans among those whose GPU and RAM parts both fit."""
    candidates = [best_layer_split(mb, gpu_budget)]
    experts = best_expert_split(mb, gpu_budget) if expert_split_available else None
    if experts is not None:
        candidates.append(experts)
    fitting = [p for p in candidates if ram_budget is None or p.cpu_bytes <= ram_budget]
    return min(fitting or candidates, key=lambda p: p.seconds_per_token)


def plan_for(header: GGUFHeader, machine: Machine, n_ctx: int = 4096) -> OffloadPlan | None:
    """The expert split for a MoE model this machine's llama.cpp can offload; else None."""
    if not machine.can_offload or not header.expert_count:
        return None
    mb = model_bytes(header, n_ctx)
    ram = machine.ram_total - max(2 * 10**9, machine.ram_total // 10)  # the fit rule's reserve
    plan = choose(mb, machine.gpu_budget, ram)
    return plan if plan.split is Split.EXPERTS else None
