"""Tiny Mixtral-style GGUFs in the legacy (split) and merged expert layouts, from one set of
weights, with any quant type per expert: what the converter tests compare.

`tests.tiny_models` writes 64-wide models in F32/F16/Q8_0; k-quants need rows of 256 values
and the converter needs experts of different types within one layer, hence this module. It
reuses that module's vocabulary and output trick so the models babble readable words.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np

from app.core.convert.kquants import quantize_q6_k
from tests.tiny_models import _output_bias, vocabulary

T = gguf.GGMLQuantizationType
N_EMBD, N_HEAD, N_HEAD_KV, N_FF = 256, 4, 2, 256
KINDS = ("gate", "up", "down")
TypeFor = Callable[[int, str, int], str]  # (layer, kind, expert) -> type name
FILE_TYPES = {
    "F32": gguf.LlamaFileType.ALL_F32,
    "F16": gguf.LlamaFileType.MOSTLY_F16,
    "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
    "Q5_0": gguf.LlamaFileType.MOSTLY_Q5_0,
    "Q6_K": gguf.LlamaFileType.MOSTLY_Q6_K,
}


def quantize(arr: np.ndarray, type_name: str) -> tuple[np.ndarray, T | None]:
    """(data, raw_dtype) for GGUFWriter.add_tensor; rows are quantized independently."""
    qtype = T[type_name]
    if qtype == T.F32:
        return arr.astype(np.float32), None
    if qtype == T.F16:
        return arr.astype(np.float16), None
    if qtype == T.Q6_K:
        return quantize_q6_k(arr), qtype
    return gguf.quants.quantize(arr.astype(np.float32), qtype), qtype


def make_weights(n_expert: int = 4, n_layer: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """All weights, experts as 3-D (n_expert, rows, row_len) arrays named `blk.N.ffn_K_exps`."""
    rng = np.random.default_rng(seed)
    tokens = vocabulary()[0]

    def small(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    w = {}
    embd = (rng.standard_normal((len(tokens), N_EMBD)) * 0.5).astype(np.float32)
    embd[:, 0] = 4.0
    w["token_embd"] = embd
    head_dim = N_EMBD // N_HEAD
    for i in range(n_layer):
        w[f"blk.{i}.attn_norm"] = np.ones(N_EMBD, dtype=np.float32)
        w[f"blk.{i}.attn_q"] = small(N_EMBD, N_EMBD)
        w[f"blk.{i}.attn_k"] = small(N_HEAD_KV * head_dim, N_EMBD)
        w[f"blk.{i}.attn_v"] = small(N_HEAD_KV * head_dim, N_EMBD)
        w[f"blk.{i}.attn_output"] = small(N_EMBD, N_EMBD)
        w[f"blk.{i}.ffn_norm"] = np.ones(N_EMBD, dtype=np.float32)
        w[f"blk.{i}.ffn_gate_inp"] = rng.standard_normal((n_expert, N_EMBD)).astype(np.float32)
        w[f"blk.{i}.ffn_gate_exps"] = small(n_expert, N_FF, N_EMBD)
        w[f"blk.{i}.ffn_up_exps"] = small(n_expert, N_FF, N_EMBD)
        w[f"blk.{i}.ffn_down_exps"] = small(n_expert, N_EMBD, N_FF)
    w["output_norm"] = np.ones(N_EMBD, dtype=np.float32)
    out = (rng.standard_normal((len(tokens), N_EMBD)) * 0.3).astype(np.float32)
    out[:, 0] = _output_bias(tokens)
    w["output"] = out
    return w


def _metadata(w: gguf.GGUFWriter, n_layer: int, n_expert: int, file_type: str) -> None:
    w.add_name("Parlor tiny legacy MoE")
    w.add_context_length(2048)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_expert_count(n_expert)
    w.add_expert_used_count(2)
    w.add_file_type(FILE_TYPES.get(file_type, gguf.LlamaFileType.GUESSED))
    tokens, scores, types = vocabulary()
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")


def write_moe(
    path: str | Path,
    *,
    legacy: bool,
    expert_type: str | TypeFor = "F16",
    other_type: str = "F16",
    n_expert: int = 4,
    n_layer: int = 2,
    seed: int = 0,
    weights: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write one layout. Merged files need one type per group: expert_type must be a str."""
    path = Path(path)
    weights = weights if weights is not None else make_weights(n_expert, n_layer, seed)
    type_for = expert_type if callable(expert_type) else (lambda *_: expert_type)
    w = gguf.GGUFWriter(str(path), "llama")
    _metadata(w, n_layer, n_expert, expert_type if isinstance(expert_type, str) else "mixed")
    for name, arr in weights.items():
        kind = name.rsplit(".", 1)[-1]
        if kind.endswith("_exps"):
            layer, k = int(name.split(".")[1]), kind[len("ffn_") : -len("_exps")]
            if legacy:
                for e in range(arr.shape[0]):
                    data, raw = quantize(arr[e], type_for(layer, k, e))
                    w.add_tensor(f"blk.{layer}.ffn_{k}.{e}.weight", data, raw_dtype=raw)
            else:
                data, raw = quantize(arr, type_for(layer, k, 0))
                w.add_tensor(f"{name}.weight", data, raw_dtype=raw)
            continue
        data, raw = quantize(arr, other_type if arr.ndim > 1 else "F32")
        w.add_tensor(f"{name}.weight", data, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_pair(
    folder: Path, expert_type: str = "F16", other_type: str = "F16", **kw
) -> tuple[Path, Path]:
    """The same weights as a legacy file and as a merged file; returns (legacy, merged)."""
    weights = make_weights(kw.pop("n_expert", 4), kw.pop("n_layer", 2), kw.pop("seed", 0))
    n_expert = weights["blk.0.ffn_gate_inp"].shape[0]
    n_layer = sum(1 for k in weights if k.endswith(".attn_norm"))
    tag = expert_type.lower()
    legacy = write_moe(
        folder / f"legacy-{tag}.gguf",
        legacy=True,
        expert_type=expert_type,
        other_type=other_type,
        n_expert=n_expert,
        n_layer=n_layer,
        weights=weights,
    )
    merged = write_moe(
        folder / f"merged-{tag}.gguf",
        legacy=False,
        expert_type=expert_type,
        other_type=other_type,
        n_expert=n_expert,
        n_layer=n_layer,
        weights=weights,
    )
    return legacy, merged
