"""Estimate the memory llama.cpp needs for a model, from its GGUF header alone.

The rules are those in FIELD-NOTES ("Memory, for the fit estimate"): weights are the tensors'
byte sizes split by which blocks are offloaded, the KV cache follows the attention shape, and
the compute buffer is a rough approximation (the logits and the widest feed-forward activations
of one micro-batch, plus the attention matrix when flash attention is off). Checked against
llama.cpp's own log on the tiny test model: KV exact, compute within about 10 %; not yet
checked on a real 7B+ model or a GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.core.gguf.header import GGUFHeader

KV_BYTES_PER_ELEMENT = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q5_1": 24 / 32,
    "q5_0": 22 / 32,
    "q4_1": 20 / 32,
    "q4_0": 18 / 32,
    "iq4_nl": 18 / 32,
}
CTX_PAD = 256
_BLOCK = re.compile(r"^blk\.(\d+)\.")


def _per_layer(value: Any, n_layer: int, default: int) -> list[int]:
    if isinstance(value, list):
        vals = [int(v) for v in value] or [default]
        return (vals + [vals[-1]] * n_layer)[:n_layer]
    return [int(value if value is not None else default)] * n_layer


def _gpu_layer_range(n_layer: int, n_gpu_layers: int) -> tuple[int, bool]:
    """First block index on the GPU, and whether the output layer is there too."""
    if n_gpu_layers < 0 or n_gpu_layers > n_layer:
        return 0, True
    return n_layer - n_gpu_layers, False


def _weights(header: GGUFHeader, first_gpu: int, output_gpu: bool) -> tuple[int, int]:
    cpu = gpu = 0
    for t in header.tensors:
        m = _BLOCK.match(t.name)
        if m:
            on_gpu = int(m.group(1)) >= first_gpu
        else:  # token_embd stays on the CPU; output and output_norm are "one more layer"
            on_gpu = output_gpu and t.name.startswith("output")
        if on_gpu:
            gpu += t.nbytes
        else:
            cpu += t.nbytes
    return cpu, gpu


def _kv(header: GGUFHeader, n_ctx: int, kv_type: str, first_gpu: int) -> tuple[int, int]:
    n_layer = header.n_layer
    n_embd = int(header.arch_value("embedding_length", 0) or 0)
    heads = _per_layer(header.arch_value("attention.head_count"), n_layer, 1)
    heads_kv = _per_layer(header.arch_value("attention.head_count_kv"), n_layer, 0)
    bpe = KV_BYTES_PER_ELEMENT.get(kv_type.lower())
    if bpe is None:
        raise ValueError(f"unknown KV cache type {kv_type!r}")
    cpu = gpu = 0.0
    for il in range(n_layer):
        n_head = max(heads[il], 1)
        n_kv = heads_kv[il] or n_head
        k_len = int(header.arch_value("attention.key_length", 0) or n_embd // n_head)
        v_len = int(header.arch_value("attention.value_length", 0) or n_embd // n_head)
        layer = n_ctx * n_kv * (k_len + v_len) * bpe
        if il >= first_gpu:
            gpu += layer
        else:
            cpu += layer
    return int(cpu), int(gpu)


def _compute(header: GGUFHeader, n_ctx: int, flash_attn: bool, n_ubatch: int) -> int:
    n_embd = int(header.arch_value("embedding_length", 0) or 0)
    n_ff = header.arch_value("expert_feed_forward_length") or header.arch_value(
        "feed_forward_length", 0
    )
    n_ff = max(n_ff) if isinstance(n_ff, list) else int(n_ff or 0)
    n_ff *= max(header.expert_used_count, 1)
    heads = header.arch_value("attention.head_count", 1)
    n_head = max(heads) if isinstance(heads, list) else int(heads or 1)
    ub = min(n_ubatch, n_ctx)
    size = 4 * ub * (header.vocab_size + 2 * n_ff + 4 * n_embd)
    if not flash_attn:
        size += 4 * ub * n_ctx * n_head
    return size


@dataclass(frozen=True)
class MemoryEstimate:
    """What a model needs, in bytes, on each side, for one context size and GPU offload."""

    n_ctx: int  # the context size as llama.cpp pads it
    n_gpu_layers: int  # layers actually on the GPU (the output layer counts as one)
    weights_cpu_bytes: int
    weights_gpu_bytes: int
    kv_cpu_bytes: int
    kv_gpu_bytes: int
    compute_cpu_bytes: int
    compute_gpu_bytes: int

    @property
    def kv_bytes(self) -> int:
        return self.kv_cpu_bytes + self.kv_gpu_bytes

    @property
    def compute_bytes(self) -> int:
        return self.compute_cpu_bytes + self.compute_gpu_bytes

    @property
    def cpu_bytes(self) -> int:
        return self.weights_cpu_bytes + self.kv_cpu_bytes + self.compute_cpu_bytes

    @property
    def gpu_bytes(self) -> int:
        return self.weights_gpu_bytes + self.kv_gpu_bytes + self.compute_gpu_bytes

    @property
    def total_bytes(self) -> int:
        return self.cpu_bytes + self.gpu_bytes


def estimate_memory(
    header: GGUFHeader,
    n_ctx: int,
    n_gpu_layers: int = 0,
    kv_type: str = "f16",
    flash_attn: bool = True,
    n_ubatch: int = 512,
) -> MemoryEstimate:
    """Bytes needed on the CPU side and the GPU side for this context and offload.

    n_ctx <= 0 means the model's training context; n_gpu_layers < 0 means all of them.
    """
    if n_ctx <= 0:
        n_ctx = header.context_length or 4096
    n_ctx = -(-n_ctx // CTX_PAD) * CTX_PAD
    n_layer = header.n_layer
    first_gpu, output_gpu = _gpu_layer_range(n_layer, n_gpu_layers)
    w_cpu, w_gpu = _weights(header, first_gpu, output_gpu)
    kv_cpu, kv_gpu = _kv(header, n_ctx, kv_type, first_gpu)
    compute = _compute(header, n_ctx, flash_attn, n_ubatch)
    offloaded = n_layer - first_gpu + (1 if output_gpu else 0)
    c_gpu = compute if offloaded else 0
    c_cpu = (
        compute
        if not offloaded
        else 4
        * min(n_ubatch, n_ctx)
        * (header.vocab_size + int(header.arch_value("embedding_length", 0) or 0))
    )
    return MemoryEstimate(n_ctx, offloaded, w_cpu, w_gpu, kv_cpu, kv_gpu, c_cpu, c_gpu)
