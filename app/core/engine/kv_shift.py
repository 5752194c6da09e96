"""Context shift: reuse the KV cache when a prompt loses messages at the front of its history.

Once a chat outgrows the context, the prompt builder drops old messages in blocks. The new
prompt then shares only its permanent start (system prompt, card) with what llama.cpp holds;
plain prefix reuse would read the whole history again. Here the cache is matched run by run
(llama.cpp server's `--cache-reuse` idea): after the common prefix, every run of at least
`MIN_CHUNK` cached tokens that continues the new prompt is kept and moved down to its new
position (`llama_memory_seq_rm` + `llama_memory_seq_add`; llama.cpp re-rotates the keys at
the next decode), and only what matches nothing is evaluated.

A moved run was computed while the removed tokens were still in front of it, so its keys
and values are close to, not equal to, a fresh read: that is the price of the shift (the
tests measure it). It is only paid for history: when the prompt differs from the cache
inside its permanent part (the user edited the card), nothing after the difference is
reused and the caller is told why.

Pure planning (`plan_reuse`) is apart from applying it to a live context (`apply_plan`),
so the matching rules are testable without a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# A shorter run is not worth a shift: it is mostly template markup ("\nAnn:") that matches
# by chance at the wrong place, and costs a seq_rm/seq_add pair for a few tokens.
MIN_CHUNK = 16
PERMANENT_CHANGED = (
    "The permanent part of the prompt (system prompt, character) is not the "
    "one the model holds, so the whole prompt was read again."
)


@dataclass(frozen=True)
class Chunk:
    """`length` cached tokens at cache position `src` that the prompt needs at `dst`."""

    src: int
    dst: int
    length: int


@dataclass
class ReusePlan:
    prefix: int  # tokens kept where they are
    chunks: list[Chunk] = field(default_factory=list)  # runs moved toward the front
    full_read_reason: str = ""  # set when a shift was possible in form but not allowed

    @property
    def reused(self) -> int:
        """Prompt tokens that will not be evaluated."""
        return self.prefix + sum(c.length for c in self.chunks)

    @property
    def shifted(self) -> int:
        return sum(c.length for c in self.chunks)

    def removed(self, n_cached: int) -> int:
        """Cached tokens dropped between the prefix and the last moved run."""
        if not self.chunks:
            return 0
        last = self.chunks[-1]
        return min(n_cached, last.src + last.length) - self.prefix - self.shifted


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):  # stops at the shorter one, as meant
        if x != y:
            break
        n += 1
    return n


def _run(cached: list[int], c: int, prompt: list[int], p: int, limit: int) -> int:
    n = 0
    while c + n < len(cached) and p + n < limit and cached[c + n] == prompt[p + n]:
        n += 1
    return n


def plan_reuse(
    cached: list[int],
    prompt: list[int],
    keep: int = 0,
    shift_off: str = "",
    min_chunk: int = MIN_CHUNK,
) -> ReusePlan:
    """What of `cached` (the tokens in the KV cache, in order) the `prompt` can reuse.

    `keep` is the length in tokens of the prompt's permanent part: runs are only moved when
    the prompt and the cache agree on all of it. `shift_off` is why llama.cpp cannot move
    runs at all ("" when it can). The prompt's last token is never reused, so the decode
    that follows always produces fresh logits.
    """
    limit = max(len(prompt) - 1, 0)
    head = common_prefix(cached, prompt[:limit])
    plan = ReusePlan(prefix=head)
    if head >= len(cached) or head >= limit:
        return plan
    if head < keep:  # an edited card: every later key was computed with the old text
        plan.full_read_reason = PERMANENT_CHANGED
        return plan
    src, dst = head, head
    while src < len(cached) and dst < limit:
        n = _run(cached, src, prompt, dst, limit)
        if n >= min_chunk:
            plan.chunks.append(Chunk(src, dst, n))
            src, dst = src + n, dst + n
        else:
            src += 1
    if plan.chunks and shift_off:  # said only when a shift would have saved something
        plan.chunks, plan.full_read_reason = [], shift_off
    return plan


def shift_unavailable(llm: Any, kv_type: str = "f16") -> str:
    """Why llama.cpp cannot shift this model's cache, or "" when it can."""
    import llama_cpp

    if kv_type != "f16" and not rotates_quantized_keys(llm):
        return (
            f"Context shift is off with a {kv_type} KV cache for this model: the bundled "
            "llama.cpp crashes when it moves quantized keys of attention heads whose size is "
            "not a multiple of 64. Choose the f16 KV cache in Settings → Model to keep long "
            "chats fast."
        )

    model, ctx = llm._model.model, llm._ctx.ctx
    if llama_cpp.llama_model_is_recurrent(model) or llama_cpp.llama_model_is_hybrid(model):
        return (
            "Context shift is off: this model keeps a recurrent state, which llama.cpp "
            "cannot cut in the middle."
        )
    if llama_cpp.llama_model_n_swa(model) > 0:
        return (
            "Context shift is off: this model uses sliding-window attention, whose cache "
            "llama.cpp does not keep whole, so old tokens cannot be moved."
        )
    mem = llama_cpp.llama_get_memory(ctx)
    if mem is None or not llama_cpp.llama_memory_can_shift(mem):
        return "Context shift is off: llama.cpp reports that this model's cache cannot shift."
    return ""


def rotates_quantized_keys(llm: Any) -> bool:
    """Whether llama.cpp keeps a quantized K cache Hadamard-rotated (its `attn_rot_k`).

    Moving quantized keys dequantizes them, rotates them back, applies the RoPE shift and
    rotates and quantizes again. The bundled llama.cpp (llama-cpp-python 0.3.36) builds that
    graph with the rotation matrix even when it made none, and dereferences the null
    pointer (a segfault in `llama_kv_cache::build_rope_shift`, seen here in gdb). It makes
    the matrix when every layer's key head size is the same multiple of 64 and
    LLAMA_ATTN_ROT_DISABLE is not set: true of most real models (head size 64, 128, 256),
    not of the test models' 16- and 32-wide heads. With it, a shift of a q8_0 or q4_0 cache
    is as close to a full read as one of an f16 cache (tests/engine/test_context_shift.py).
    """
    import os

    disabled = os.environ.get("LLAMA_ATTN_ROT_DISABLE", "")
    if disabled.strip().lstrip("-").isdigit() and int(disabled) != 0:  # llama.cpp's atoi
        return False
    meta = llm.metadata
    arch = meta.get("general.architecture", "")
    try:
        key_length = meta.get(f"{arch}.attention.key_length")
        if key_length is None:
            n_head = int(meta.get(f"{arch}.attention.head_count", 0) or 0)
            key_length = int(meta.get(f"{arch}.embedding_length", 0) or 0) // max(n_head, 1)
        size = int(key_length)
    except (TypeError, ValueError):  # per-layer head counts: not one head size to go by
        return False
    return size > 0 and size % 64 == 0


def apply_plan(llm: Any, plan: ReusePlan) -> int:
    """Move the plan's runs in llm's cache and its token bookkeeping; the tokens kept.

    Llama's `input_ids[:n_tokens]` must equal what the cache holds at positions 0..n-1, for
    its own prefix check in `generate` and for the saved sessions, so it is moved too.
    """
    import llama_cpp

    mem = llama_cpp.llama_get_memory(llm._ctx.ctx)
    head = plan.prefix
    for c in plan.chunks:
        if not llama_cpp.llama_memory_seq_rm(mem, -1, head, c.src):
            break  # llama.cpp refused a partial removal: keep what is in place so far
        llama_cpp.llama_memory_seq_add(mem, 0, c.src, c.src + c.length, c.dst - c.src)
        llm.input_ids[c.dst : c.dst + c.length] = llm.input_ids[c.src : c.src + c.length].copy()
        head = c.dst + c.length
    llama_cpp.llama_memory_seq_rm(mem, -1, head, -1)
    llm.n_tokens = head
    llm._requires_eval = True
    return head
