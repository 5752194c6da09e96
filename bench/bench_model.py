"""Generated llama-architecture GGUF models for the benchmarks, sized by arguments.

The test helper (`tests/tiny_models.py`) writes a 64-wide model whose head size (16) is too
small for a quantized KV cache (q8_0/q4_0 blocks are 32 values) and whose tokens cost
microseconds, which would make per-token overhead look far bigger than on a real model.
This one takes its shape as arguments. The weights follow the same idea as the test model:
every embedding has one large constant component and the output rewards word tokens along
it, so replies are readable words, never stop on EOS, and differ from seed to seed.

    python bench/bench_model.py OUT.gguf [--embd 512 --layers 8 --ctx 8192]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

WORDS = (
    "the and you she he they we was is are not but with her his their into over under "
    "light dark rain storm tavern sword smile laugh whisper door window night morning "
    "fire river road stone quiet slowly softly gently ale bread coin song story dream "
    "yes no maybe perhaps indeed hello friend traveler stranger welcome again"
).split()


# ChatML, as many real models carry it; its markers are single control tokens, so the
# template's markup costs a few tokens a message, as with a real vocabulary.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ["<|im_start|>", "<|im_end|>"]
ROLES = ["system", "user", "assistant"]


@dataclass(frozen=True)
class Shape:
    n_embd: int = 512
    n_head: int = 8
    n_head_kv: int = 4
    n_ff: int = 1408
    n_layer: int = 8
    n_ctx_train: int = 8192


QUICK = Shape(n_embd=128, n_head=4, n_head_kv=2, n_ff=256, n_layer=4, n_ctx_train=4096)
DEFAULT = Shape()


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    """SentencePiece-style: <unk> <s> </s>, 256 byte tokens, ASCII characters, words.

    Every prefix of every word is a token too, with longer pieces scoring higher, so the
    tokenizer's merges reach whole words: a reply the model wrote as word tokens is
    tokenized back into the same tokens, as with a real vocabulary. Without that, the next
    turn's prompt would differ from the cache right after the previous prompt.
    """
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256
    tokens += SPECIAL
    types += [gguf.TokenType.CONTROL] * len(SPECIAL)
    pieces = ["\u2581"] + [chr(c) for c in range(33, 127)]
    for word in WORDS:
        pieces += ["\u2581" + word[:k] for k in range(1, len(word) + 1)]
    for role in ROLES:
        pieces += [role[:k] for k in range(1, len(role) + 1)]
    pieces = list(dict.fromkeys(pieces))
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * (259 + len(SPECIAL)) + [float(len(p)) for p in pieces]
    return tokens, scores, [int(t) for t in types]


def _output_bias(tokens: list[str]) -> list[float]:
    """Whole words up, control and byte tokens down, the rest (characters, prefixes) even."""
    words = {"\u2581" + w for w in WORDS}
    first = 259 + len(SPECIAL)
    return [-3.0 if i < first else (1.0 if t in words else 0.0) for i, t in enumerate(tokens)]


def _metadata(w: gguf.GGUFWriter, shape: Shape) -> None:
    w.add_name(f"Parlor bench model {shape.n_embd}x{shape.n_layer}")
    w.add_context_length(shape.n_ctx_train)
    w.add_embedding_length(shape.n_embd)
    w.add_block_count(shape.n_layer)
    w.add_feed_forward_length(shape.n_ff)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(shape.n_embd // shape.n_head)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    tokens, scores, types = _vocabulary()
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_chat_template(CHAT_TEMPLATE)


def _block(rng, s: Shape) -> dict[str, np.ndarray]:
    def small(*shape):
        return (rng.standard_normal(shape) * 0.02).astype(np.float16)

    kv = s.n_head_kv * (s.n_embd // s.n_head)
    return {
        "attn_norm": np.ones(s.n_embd, dtype=np.float32),
        "attn_q": small(s.n_embd, s.n_embd),
        "attn_k": small(kv, s.n_embd),
        "attn_v": small(kv, s.n_embd),
        "attn_output": small(s.n_embd, s.n_embd),
        "ffn_norm": np.ones(s.n_embd, dtype=np.float32),
        "ffn_gate": small(s.n_ff, s.n_embd),
        "ffn_up": small(s.n_ff, s.n_embd),
        "ffn_down": small(s.n_embd, s.n_ff),
    }


def write_bench_model(path: str | Path, shape: Shape = DEFAULT, seed: int = 0) -> Path:
    """Write the model (F16 matrices, F32 norms) and return its path; skipped if present."""
    path = Path(path)
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    tokens = _vocabulary()[0]
    tmp = path.with_suffix(".partial")
    w = gguf.GGUFWriter(str(tmp), "llama")
    _metadata(w, shape)
    embd = rng.standard_normal((len(tokens), shape.n_embd)).astype(np.float32) * 0.5
    embd[:, 0] = 4.0
    w.add_tensor("token_embd.weight", embd.astype(np.float16))
    for i in range(shape.n_layer):
        for name, arr in _block(rng, shape).items():
            w.add_tensor(f"blk.{i}.{name}.weight", arr)
    w.add_tensor("output_norm.weight", np.ones(shape.n_embd, dtype=np.float32))
    out = rng.standard_normal((len(tokens), shape.n_embd)).astype(np.float32) * 0.3
    out[:, 0] = _output_bias(tokens)
    w.add_tensor("output.weight", out.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
