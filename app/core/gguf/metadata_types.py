"""The types Parlor and llama.cpp rely on for the GGUF metadata keys they read.

A GGUF comes from a stranger; its keys can hold any type. `context_length = "abc"`, a list
`block_count` or a string `file_type` made File → Open silently do nothing and `parlor
convert` end in a traceback. Checked once, when the header is read, a wrong type is a
`GGUFError` naming the key, for every reader (Open, convert, the download dialog's remote
header).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Bounds far beyond any real model (the largest have about 130 layers, 256 experts and
# contexts of a few million tokens) that keep estimates from building per-layer lists of
# billions of items: a block_count of 4e9 made the memory estimate raise MemoryError.
MAX_LAYERS, MAX_EXPERTS = 65_536, 65_536
MAX_WIDTH = 1 << 26  # embedding, feed-forward, head and vocabulary sizes
MAX_CONTEXT = 1 << 32

_WHAT: dict[Callable[[Any], bool], str] = {}


def _kind(what: str) -> Callable[[Callable[[Any], bool]], Callable[[Any], bool]]:
    def register(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
        _WHAT[check] = what
        return check

    return register


def _count(limit: int) -> Callable[[Any], bool]:
    @_kind(f"a whole number from 0 to {limit:,}")
    def check(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= limit

    return check


def _counts(limit: int) -> Callable[[Any], bool]:  # per-layer values are arrays in some models
    one = _count(limit)

    @_kind(f"a whole number from 0 to {limit:,}, or a list of them (one per layer)")
    def check(v: Any) -> bool:
        return one(v) or (isinstance(v, list) and len(v) <= MAX_LAYERS and all(map(one, v)))

    return check


@_kind("a whole number")
def _int(v: Any) -> bool:  # token ids: some files write -1 for "none"
    return isinstance(v, int) and not isinstance(v, bool)


@_kind("text")
def _text(v: Any) -> bool:
    return isinstance(v, str)


@_kind("a list of texts")
def _texts(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


@_kind("a number")
def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_ANY_COUNT = _count(2**40)
GENERAL: dict[str, Callable[[Any], bool]] = {
    "general.architecture": _text,
    "general.name": _text,
    "general.file_type": _ANY_COUNT,
    "general.quantization_version": _ANY_COUNT,
    "tokenizer.chat_template": _text,
    "tokenizer.ggml.model": _text,
    "tokenizer.ggml.tokens": _texts,
    "tokenizer.ggml.merges": _texts,
    "tokenizer.ggml.bos_token_id": _int,
    "tokenizer.ggml.eos_token_id": _int,
}
# Under the architecture's prefix ("llama.context_length").
PER_ARCH: dict[str, Callable[[Any], bool]] = {
    "context_length": _count(MAX_CONTEXT),
    "block_count": _count(MAX_LAYERS),
    "embedding_length": _count(MAX_WIDTH),
    "feed_forward_length": _counts(MAX_WIDTH),
    "expert_count": _count(MAX_EXPERTS),
    "expert_used_count": _count(MAX_EXPERTS),
    "vocab_size": _count(MAX_WIDTH),
    "attention.head_count": _counts(MAX_WIDTH),
    "attention.head_count_kv": _counts(MAX_WIDTH),
    "attention.key_length": _count(MAX_WIDTH),
    "attention.value_length": _count(MAX_WIDTH),
    "rope.dimension_count": _count(MAX_WIDTH),
    "attention.layer_norm_rms_eps": _number,
    "rope.freq_base": _number,
}


def metadata_problem(metadata: dict[str, Any]) -> str | None:
    """The first key whose value has the wrong type, described; None when all are sound."""
    arch = metadata.get("general.architecture")
    checks = dict(GENERAL)
    if isinstance(arch, str):
        checks.update({f"{arch}.{key}": check for key, check in PER_ARCH.items()})
    for key, check in checks.items():
        if key in metadata and not check(metadata[key]):
            return f"metadata {key} must be {_WHAT[check]}, but it is {_describe(metadata[key])}"
    for key, value in metadata.items():  # named templates: tokenizer.chat_template.<name>
        if key.startswith("tokenizer.chat_template.") and not isinstance(value, str):
            return f"metadata {key} must be text, but it is {_describe(value)}"
    return None


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    kind = {bool: "true/false", str: "text", float: "a decimal number", int: "a whole number"}
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{kind.get(type(value), type(value).__name__)} ({text})"
