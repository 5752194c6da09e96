"""JSON in and out, with the errors a user can act on."""

from __future__ import annotations

import json
import math
from typing import Any

from app.core.cards.errors import CardError

MAX_DEPTH = 200  # far beyond any real card; keeps every later step clear of recursion limits


def parse_json_bytes(raw: bytes, source: str, what: str) -> Any:
    """UTF-8 JSON (a BOM allowed) as Python objects; CardError saying what is wrong."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CardError(
            source,
            f"{what} is not valid UTF-8 text (byte 0x{raw[exc.start]:02x} at position {exc.start})",
        ) from None
    return parse_json_text(text, source, what)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:20]} is too large")
    return value


def parse_json_text(text: str, source: str, what: str) -> Any:
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise CardError(source, f"{what} is empty")
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise CardError(
            source, f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise CardError(source, f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise CardError(source, f"{what} is not valid JSON: {exc}") from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise CardError(source, f"{what} is nested more than {MAX_DEPTH} levels deep")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def dump_json(obj: Any, *, indent: int | None = None) -> bytes:
    """UTF-8 JSON; text that UTF-8 cannot hold (a lone surrogate) is written as \\u escapes."""
    separators = (",", ": ") if indent is not None else (",", ":")
    try:
        return json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators).encode(
            "utf-8"
        )
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, indent=indent, separators=separators).encode(
            "ascii"
        )
