"""Tiny llama-architecture GGUF models, written by the tests themselves.

The weights are random but shaped so the model babbles readable words: every token
embedding carries one large constant component and the blocks only nudge it, so the final
hidden state always points the same way along dimension 0; the output matrix rewards word
tokens along that dimension and punishes control and byte tokens. Replies are therefore
printable, never stop early on EOS, and differ from seed to seed.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

WORDS = (
    "the and you she he they we was is are not but with her his their into over under "
    "light dark rain storm tavern sword smile laugh whisper door window night morning "
    "fire river road stone quiet slowly softly gently ale bread coin song story dream "
    "yes no maybe perhaps indeed hello friend traveler stranger welcome again"
).split()
N_EMBD, N_HEAD, N_HEAD_KV, N_FF = 64, 4, 2, 128
QUANT_TYPES = {
    "f32": gguf.GGMLQuantizationType.F32,
    "f16": gguf.GGMLQuantizationType.F16,
    "q8_0": gguf.GGMLQuantizationType.Q8_0,
}
FILE_TYPES = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
}


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """SentencePiece-style vocab: <unk> <s> </s>, 256 byte tokens, ASCII characters, words."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256
    pieces = ["\u2581"] + [chr(c) for c in range(33, 127)] + ["\u2581" + w for w in WORDS]
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def _output_bias(tokens: list[str]) -> np.ndarray:
    bias = np.zeros(len(tokens), dtype=np.float32)
    for i, tok in enumerate(tokens):
        if i < 259:
            bias[i] = -3.0
        elif tok.startswith("\u2581") and len(tok) > 1:
            bias[i] = 1.0
    return bias


def _tensor(writer: gguf.GGUFWriter, name: str, arr: np.ndarray, ftype: str) -> None:
    qtype = QUANT_TYPES[ftype] if arr.ndim > 1 else gguf.GGMLQuantizationType.F32
    if qtype == gguf.GGMLQuantizationType.F32:
        writer.add_tensor(name, arr.astype(np.float32))
    elif qtype == gguf.GGMLQuantizationType.F16:
        writer.add_tensor(name, arr.astype(np.float16))
    else:
        data = gguf.quants.quantize(arr.astype(np.float32), qtype)
        writer.add_tensor(name, data, raw_dtype=qtype)


def _ffn_tensors(rng, n_expert: int, legacy: bool, small) -> dict[str, np.ndarray]:
    if n_expert == 0:
        return {
            "ffn_gate": small(N_FF, N_EMBD),
            "ffn_up": small(N_FF, N_EMBD),
            "ffn_down": small(N_EMBD, N_FF),
        }
    out = {"ffn_gate_inp": rng.standard_normal((n_expert, N_EMBD)).astype(np.float32)}
    gate, up, down = (
        small(n_expert, N_FF, N_EMBD),
        small(n_expert, N_FF, N_EMBD),
        small(n_expert, N_EMBD, N_FF),
    )
    if not legacy:
        out.update(ffn_gate_exps=gate, ffn_up_exps=up, ffn_down_exps=down)
        return out
    for e in range(n_expert):
        out.update({f"ffn_gate.{e}": gate[e], f"ffn_up.{e}": up[e], f"ffn_down.{e}": down[e]})
    return out


def layer_tensors(rng, n_expert: int = 0, legacy: bool = False) -> dict[str, np.ndarray]:
    def small(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    head_dim = N_EMBD // N_HEAD
    return {
        "attn_norm": np.ones(N_EMBD, dtype=np.float32),
        "attn_q": small(N_EMBD, N_EMBD),
        "attn_k": small(N_HEAD_KV * head_dim, N_EMBD),
        "attn_v": small(N_HEAD_KV * head_dim, N_EMBD),
        "attn_output": small(N_EMBD, N_EMBD),
        "ffn_norm": np.ones(N_EMBD, dtype=np.float32),
        **_ffn_tensors(rng, n_expert, legacy, small),
    }


def _metadata(
    w: gguf.GGUFWriter,
    n_layer: int,
    n_ctx: int,
    n_expert: int,
    ftype: str,
    chat_template: str | None,
) -> None:
    w.add_name("Parlor tiny test model")
    w.add_context_length(n_ctx)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_file_type(FILE_TYPES[ftype])
    if n_expert:
        w.add_expert_count(n_expert)
        w.add_expert_used_count(2)
    tokens, scores, types = vocabulary()
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    if chat_template:
        w.add_chat_template(chat_template)


def write_tiny_llama(
    path: str | Path,
    *,
    n_expert: int = 0,
    legacy_experts: bool = False,
    ftype: str = "f32",
    n_layer: int = 2,
    n_ctx: int = 4096,
    seed: int = 0,
    chat_template: str | None = None,
) -> Path:
    """Write a tiny llama (or Mixtral-style MoE when n_expert > 0) GGUF and return its path.

    `legacy_experts` stores each expert as its own tensor, the pre-April-2024 layout.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    tokens = vocabulary()[0]
    w = gguf.GGUFWriter(str(path), "llama")
    _metadata(w, n_layer, n_ctx, n_expert, ftype, chat_template)
    embd = (rng.standard_normal((len(tokens), N_EMBD)) * 0.5).astype(np.float32)
    embd[:, 0] = 4.0
    _tensor(w, "token_embd.weight", embd, ftype)
    for i in range(n_layer):
        for name, arr in layer_tensors(rng, n_expert, legacy_experts).items():
            _tensor(w, f"blk.{i}.{name}.weight", arr, ftype)
    _tensor(w, "output_norm.weight", np.ones(N_EMBD, dtype=np.float32), ftype)
    out = (rng.standard_normal((len(tokens), N_EMBD)) * 0.3).astype(np.float32)
    out[:, 0] = _output_bias(tokens)
    _tensor(w, "output.weight", out, ftype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
