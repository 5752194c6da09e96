"""The one writer of generated llama-architecture GGUF models, for the tests and the benchmarks.

Every model Parlor's suite and benchmarks load is written here, sized by a `Shape`:
- the tests' tiny llama and Mixtral-style MoE (`tests/tiny_models.py`: 64 wide, F32/F16/Q8_0,
  experts merged or in the pre-April-2024 split layout),
- the converter's legacy/merged pairs with any quant type per expert (`tests/legacy_models.py`),
- the benchmarks' models (`QUICK`, `DEFAULT`): a head size of 64, so a quantized KV cache
  (32-value blocks) works, and tokens that cost what a small real model's do.

The weights are random but shaped so the model babbles readable words: every token embedding
carries one large constant component and the blocks only nudge it, so the final hidden state
always points the same way along dimension 0; the output matrix rewards whole-word tokens
along that dimension and punishes control and byte tokens. Replies are therefore printable,
never stop early on EOS, and differ from seed to seed.

    python bench/bench_model.py OUT.gguf [--embd 512 --layers 8 --ctx 8192]
"""

from __future__ import annotations

import argparse
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from app.core.convert.kquants import quantize_q6_k

WORDS = (
    "the and you she he they we was is are not but with her his their into over under "
    "light dark rain storm tavern sword smile laugh whisper door window night morning "
    "fire river road stone quiet slowly softly gently ale bread coin song story dream "
    "yes no maybe perhaps indeed hello friend traveler stranger welcome again"
).split()

# ChatML, as many real models carry it; with the PREFIXES vocabulary its markers are single
# control tokens, so the template's markup costs a few tokens a message, as with a real one.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ["<|im_start|>", "<|im_end|>"]
ROLES = ["system", "user", "assistant"]
T = gguf.GGMLQuantizationType
FILE_TYPES = {
    "F32": gguf.LlamaFileType.ALL_F32,
    "F16": gguf.LlamaFileType.MOSTLY_F16,
    "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
    "Q5_0": gguf.LlamaFileType.MOSTLY_Q5_0,
    "Q6_K": gguf.LlamaFileType.MOSTLY_Q6_K,
}
# (layer, kind, expert) -> type name, for experts of different types within one layer
TypeFor = Callable[[int, str, int], str]


class Vocab(enum.Enum):
    WORDS = "words"  # whole words only: the tests' models
    PREFIXES = "prefixes"  # every word prefix and ChatML's markers: the benchmarks' models


@dataclass(frozen=True)
class Shape:
    n_embd: int = 512
    n_head: int = 8
    n_head_kv: int = 4
    n_ff: int = 1408
    n_layer: int = 8
    n_ctx_train: int = 8192
    n_expert: int = 0  # > 0: a Mixtral-style MoE with two experts used per token


TINY = Shape(n_embd=64, n_head=4, n_head_kv=2, n_ff=128, n_layer=2, n_ctx_train=4096)
QUICK = Shape(n_embd=128, n_head=4, n_head_kv=2, n_ff=256, n_layer=4, n_ctx_train=4096)
DEFAULT = Shape()


def vocabulary(kind: Vocab = Vocab.WORDS) -> tuple[list[str], list[float], list[int]]:
    """SentencePiece-style: <unk> <s> </s>, 256 byte tokens, ASCII characters, words.

    PREFIXES adds ChatML's markers as control tokens and every prefix of every word, longer
    pieces scoring higher, so the tokenizer's merges reach whole words: a reply the model
    wrote as word tokens is tokenized back into the same tokens, as with a real vocabulary.
    """
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256
    pieces = ["\u2581"] + [chr(c) for c in range(33, 127)]
    if kind is Vocab.WORDS:
        pieces += ["\u2581" + w for w in WORDS]
        scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    else:
        tokens += SPECIAL
        types += [gguf.TokenType.CONTROL] * len(SPECIAL)
        for word in WORDS:
            pieces += ["\u2581" + word[:k] for k in range(1, len(word) + 1)]
        for role in ROLES:
            pieces += [role[:k] for k in range(1, len(role) + 1)]
        pieces = list(dict.fromkeys(pieces))
        scores = [0.0] * (259 + len(SPECIAL)) + [float(len(p)) for p in pieces]
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    return tokens, scores, [int(t) for t in types]


def output_bias(tokens: list[str], types: list[int]) -> np.ndarray:
    """Whole words up, control and byte tokens down, the rest (characters, prefixes) even."""
    words = {"\u2581" + w for w in WORDS}
    plain = int(gguf.TokenType.NORMAL)
    bias = [0.0 if ty == plain else -3.0 for ty in types]
    up = [1.0 if t in words else b for t, b in zip(tokens, bias, strict=True)]
    return np.array(up, np.float32)


def make_weights(shape: Shape, seed: int = 0, vocab: Vocab = Vocab.WORDS) -> dict[str, np.ndarray]:
    """All weights as float32, named without `.weight`; experts as 3-D `blk.N.ffn_K_exps`."""
    rng = np.random.default_rng(seed)
    tokens, _, types = vocabulary(vocab)
    s = shape

    def small(*dims: int) -> np.ndarray:
        return (rng.standard_normal(dims) * 0.02).astype(np.float32)

    w: dict[str, np.ndarray] = {}
    embd = (rng.standard_normal((len(tokens), s.n_embd)) * 0.5).astype(np.float32)
    embd[:, 0] = 4.0
    w["token_embd"] = embd
    kv = s.n_head_kv * (s.n_embd // s.n_head)
    for i in range(s.n_layer):
        w[f"blk.{i}.attn_norm"] = np.ones(s.n_embd, dtype=np.float32)
        w[f"blk.{i}.attn_q"] = small(s.n_embd, s.n_embd)
        w[f"blk.{i}.attn_k"] = small(kv, s.n_embd)
        w[f"blk.{i}.attn_v"] = small(kv, s.n_embd)
        w[f"blk.{i}.attn_output"] = small(s.n_embd, s.n_embd)
        w[f"blk.{i}.ffn_norm"] = np.ones(s.n_embd, dtype=np.float32)
        if s.n_expert == 0:
            w[f"blk.{i}.ffn_gate"] = small(s.n_ff, s.n_embd)
            w[f"blk.{i}.ffn_up"] = small(s.n_ff, s.n_embd)
            w[f"blk.{i}.ffn_down"] = small(s.n_embd, s.n_ff)
            continue
        gate_inp = rng.standard_normal((s.n_expert, s.n_embd)).astype(np.float32)
        w[f"blk.{i}.ffn_gate_inp"] = gate_inp
        w[f"blk.{i}.ffn_gate_exps"] = small(s.n_expert, s.n_ff, s.n_embd)
        w[f"blk.{i}.ffn_up_exps"] = small(s.n_expert, s.n_ff, s.n_embd)
        w[f"blk.{i}.ffn_down_exps"] = small(s.n_expert, s.n_embd, s.n_ff)
    w["output_norm"] = np.ones(s.n_embd, dtype=np.float32)
    out = (rng.standard_normal((len(tokens), s.n_embd)) * 0.3).astype(np.float32)
    out[:, 0] = output_bias(tokens, types)
    w["output"] = out
    return w


def quantize(arr: np.ndarray, type_name: str) -> tuple[np.ndarray, T | None]:
    """(data, raw_dtype) for GGUFWriter.add_tensor; rows are quantized independently."""
    qtype = T[type_name.upper()]
    if qtype == T.F32:
        return arr.astype(np.float32), None
    if qtype == T.F16:
        return arr.astype(np.float16), None
    if qtype == T.Q6_K:
        return quantize_q6_k(arr), qtype
    return gguf.quants.quantize(arr.astype(np.float32), qtype), qtype


@dataclass(frozen=True)
class Model:
    """What to write besides the weights."""

    name: str = "Parlor tiny test model"
    vocab: Vocab = Vocab.WORDS
    matrix_type: str = "F32"  # every 2-D tensor that is not an expert; 1-D ones stay F32
    expert_type: str | TypeFor = "F32"
    legacy_experts: bool = False  # one tensor per expert: the pre-April-2024 layout
    chat_template: str | None = None
    file_type: str | None = None  # general.file_type's name; None: from the types above
    extra: Mapping[str, str] | None = None  # more string metadata (e.g. named templates)


def _metadata(w: gguf.GGUFWriter, shape: Shape, model: Model) -> None:
    w.add_name(model.name)
    w.add_context_length(shape.n_ctx_train)
    w.add_embedding_length(shape.n_embd)
    w.add_block_count(shape.n_layer)
    w.add_feed_forward_length(shape.n_ff)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(shape.n_embd // shape.n_head)
    experts = model.expert_type if isinstance(model.expert_type, str) else "mixed"
    file_type = model.file_type or (experts if shape.n_expert else model.matrix_type)
    w.add_file_type(FILE_TYPES.get(file_type.upper(), gguf.LlamaFileType.GUESSED))
    if shape.n_expert:
        w.add_expert_count(shape.n_expert)
        w.add_expert_used_count(2)
    tokens, scores, types = vocabulary(model.vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    if model.chat_template:
        w.add_chat_template(model.chat_template)
    for key, value in (model.extra or {}).items():
        w.add_string(key, value)


def _tensors(w: gguf.GGUFWriter, weights: dict[str, np.ndarray], model: Model) -> None:
    def expert_type(layer: int, kind: str, expert: int) -> str:
        chosen = model.expert_type
        return chosen(layer, kind, expert) if callable(chosen) else chosen

    for name, arr in weights.items():
        kind = name.rsplit(".", 1)[-1]
        if not kind.endswith("_exps"):
            data, raw = quantize(arr, model.matrix_type if arr.ndim > 1 else "F32")
            w.add_tensor(f"{name}.weight", data, raw_dtype=raw)
            continue
        layer, k = int(name.split(".")[1]), kind[len("ffn_") : -len("_exps")]
        if not model.legacy_experts:  # a merged file holds one type per group
            data, raw = quantize(arr, expert_type(layer, k, 0))
            w.add_tensor(f"{name}.weight", data, raw_dtype=raw)
            continue
        for e in range(arr.shape[0]):
            data, raw = quantize(arr[e], expert_type(layer, k, e))
            w.add_tensor(f"blk.{layer}.ffn_{k}.{e}.weight", data, raw_dtype=raw)


def write_model(
    path: str | Path,
    shape: Shape,
    model: Model = Model(),
    *,
    seed: int = 0,
    weights: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write the model (through a temporary name, so a cut run leaves no half file)."""
    path = Path(path)
    weights = weights if weights is not None else make_weights(shape, seed, model.vocab)
    tmp = path.with_name(path.name + ".partial")
    w = gguf.GGUFWriter(str(tmp), "llama")
    _metadata(w, shape, model)
    _tensors(w, weights, model)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(path)
    return path


def write_bench_model(path: str | Path, shape: Shape = DEFAULT, seed: int = 0) -> Path:
    """The benchmarks' model (F16 matrices, F32 norms, ChatML); skipped if present."""
    path = Path(path)
    if path.exists():
        return path
    model = Model(
        name=f"Parlor bench model {shape.n_embd}x{shape.n_layer}",
        vocab=Vocab.PREFIXES,
        matrix_type="F16",
        expert_type="F16",
        chat_template=CHAT_TEMPLATE,
    )
    return write_model(path, shape, model, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--embd", type=int, default=DEFAULT.n_embd)
    parser.add_argument("--layers", type=int, default=DEFAULT.n_layer)
    parser.add_argument("--ctx", type=int, default=DEFAULT.n_ctx_train)
    a = parser.parse_args()
    shape = Shape(
        n_embd=a.embd,
        n_head=a.embd // 64,
        n_head_kv=max(1, a.embd // 128),
        n_ff=a.embd * 11 // 4,
        n_layer=a.layers,
        n_ctx_train=a.ctx,
    )
    print(write_bench_model(a.out, shape))


if __name__ == "__main__":
    main()
