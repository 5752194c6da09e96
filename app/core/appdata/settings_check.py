"""Checking one settings value against the type its field declares.

A value of the right type passes as it is. A few values of another type are taken when the
meaning is unambiguous and nothing is lost: a whole number written as a string ("8192") or
as a float (8192.0) for an int field, a number for a float field, a word for an enum field
(`choices.py`). Anything else — a string for a bool, a list for an int, a word that is none
of an enum's — falls back to the default, with a warning in the log naming the field, so one
bad hand edit never stops the app.
"""

from __future__ import annotations

import logging
import math
from enum import Enum
from typing import Any

log = logging.getLogger("app.core.appdata.settings")

# List fields whose items must be texts; other lists are only checked to be lists.
TEXT_LISTS = frozenset({"prompt_order", "stop_strings"})


def checked_value(name: str, value: Any, default: Any) -> Any:
    """`value` as the type of `default`, or `default` (with a warning) when it cannot be."""
    ok, converted = _convert(name, value, default)
    if not ok:
        log.warning(
            "settings: %s = %.80r is not a valid %s; using the default %r",
            name,
            value,
            _type_word(default),
            str(default) if isinstance(default, Enum) else default,
        )
        return default
    if converted is not value and converted != value:
        log.warning("settings: %s = %r read as %r", name, value, converted)
    return converted


def _convert(name: str, value: Any, default: Any) -> tuple[bool, Any]:
    if isinstance(default, Enum):  # before str: a TextEnum is a str too
        try:
            return True, type(default)(value)
        except (ValueError, TypeError):
            return False, value
    if isinstance(default, bool):
        return isinstance(value, bool), value
    if isinstance(default, int):
        return _as_int(value)
    if isinstance(default, float):
        return _as_float(value)
    if isinstance(default, str):
        return isinstance(value, str), value
    if isinstance(default, list):
        return _as_str_list(value) if name in TEXT_LISTS else (isinstance(value, list), value)
    if isinstance(default, dict):
        return isinstance(value, dict), value
    return True, value


def _as_int(value: Any) -> tuple[bool, Any]:
    if isinstance(value, bool):
        return False, value
    if isinstance(value, int):
        return True, value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return True, int(value)
    if isinstance(value, str):
        try:
            return True, int(value.strip())
        except ValueError:
            return False, value
    return False, value


def _as_float(value: Any) -> tuple[bool, Any]:
    if isinstance(value, bool):
        return False, value
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return False, value
    else:
        return False, value
    return math.isfinite(number), number


def _as_str_list(value: Any) -> tuple[bool, Any]:
    ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
    return ok, value


def _type_word(default: Any) -> str:
    if isinstance(default, Enum):
        return "choice (one of " + ", ".join(str(m.value) for m in type(default)) + ")"
    words = {
        bool: "true/false",
        int: "whole number",
        float: "number",
        str: "text",
        list: "list of texts",
        dict: "object",
    }
    return words.get(type(default), type(default).__name__)
