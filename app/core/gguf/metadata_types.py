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

# A count beyond this is no real model's; int() of it is fine, but estimates overflow.
MAX_COUNT = 2**40


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT


def _int(v: Any) -> bool:  # token ids: some files write -1 for "none"
    return isinstance(v, int) and not isinstance(v, bool)


def _counts(v: Any) -> bool:  # per-layer values are arrays in some architectures
    return _count(v) or (isinstance(v, list) and all(_count(x) for x in v))


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _texts(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_WHAT = {_count: "a whole number", _int: "a whole number",
         _counts: "a whole number or a list of them",
         _text: "text", _texts: "a list of texts", _number: "a number"}

GENERAL: dict[str, Callable[[Any], bool]] = {
    "general.architecture": _text, "general.name": _text, "general.file_type": _count,
    "general.quantization_version": _count, "tokenizer.chat_template": _text,
    "tokenizer.ggml.model": _text, "tokenizer.ggml.tokens": _texts,
    "tokenizer.ggml.merges": _texts, "tokenizer.ggml.bos_token_id": _int,
    "tokenizer.ggml.eos_token_id": _int,
}
# Under the architecture's prefix ("llama.context_length").
PER_ARCH: dict[str, Callable[[Any], bool]] = {
    "context_length": _count, "block_count": _count, "embedding_length": _count,
    "feed_forward_length": _counts, "expert_count": _count, "expert_used_count": _count,
    "vocab_size": _count, "attention.head_count": _counts, "attention.head_count_kv": _counts,
    "attention.key_length": _count, "attention.value_length": _count,
    "rope.dimension_count": _count, "attention.layer_norm_rms_eps": _number,
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
