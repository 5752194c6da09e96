"""Lone UTF-16 surrogates, which JSON's `\\ud800` escapes can produce, replaced with U+FFFD.

UTF-8 cannot encode them, so SQLite refuses the row and every export would fail; a card
holding one is imported with the character replaced and a warning saying so.
"""

from __future__ import annotations

from typing import Any


def _is_lone(ch: str) -> bool:
    return "\ud800" <= ch <= "\udfff"


def scrub_text(text: str) -> tuple[str, int]:
    try:
        text.encode("utf-8")
        return text, 0
    except UnicodeEncodeError:
        pass
    count = sum(1 for ch in text if _is_lone(ch))
    return "".join("\ufffd" if _is_lone(ch) else ch for ch in text), count


def scrub(value: Any) -> tuple[Any, int]:
    """`value` (JSON-like: dicts, lists, strings) with every lone surrogate replaced."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, list):
        pairs = [scrub(v) for v in value]
        return [v for v, _ in pairs], sum(n for _, n in pairs)
    if isinstance(value, dict):
        out, total = {}, 0
        for key, item in value.items():
            key, a = scrub(key) if isinstance(key, str) else (key, 0)
            out[key], b = scrub(item)
            total += a + b
        return out, total
    return value, 0


def scrub_in_place(mapping: dict[str, Any]) -> int:
    """Replace lone surrogates throughout `mapping` (keeping the same dict object)."""
    cleaned, count = scrub(mapping)
    if count:
        mapping.clear()
        mapping.update(cleaned)
    return count
