"""Type repairs for fields that real cards write loosely.

Spec fields are brought to their spec types when the meaning survives (a number where text is
due, a comma-separated string where a list is due, "true" for true), and each repair is noted as
a warning. A value whose meaning cannot be guessed (an object where text is due) is an error.
Extensions and unknown keys are never touched: they belong to other applications.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn, TypeGuard

from app.core.cards.errors import CardError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}
_NUMBER = re.compile(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*")


def kind(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_number(text: str) -> int | float | None:
    """A number written as text ("12", " 0.5 "), or None."""
    if len(text) > 64 or not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    if value.is_integer() and "." not in text and "e" not in text.lower():
        return int(text.strip())
    return value


class Fixer:
    """Carries the file name and the warning list through a normalisation."""

    def __init__(self, source: str, warnings: list[str] | None = None) -> None:
        self.source = source
        self.warnings = [] if warnings is None else warnings

    def fail(self, where: str, reason: str) -> NoReturn:
        raise CardError(self.source, f"field '{where}' {reason}")

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def text(self, value: Any, where: str) -> str:
        if isinstance(value, str):
            return value
        if value is None:
            self.warn(f"'{where}' was null; read as empty text")
            return ""
        if is_number(value):
            self.warn(f"'{where}' was a number; read as text")
            return str(value)
        self.fail(where, f"must be text, not {kind(value)}")

    def text_list(self, value: Any, where: str, *, split_commas: bool) -> list[str]:
        """A list of texts; a lone string is split at commas (keys, tags) or wrapped (greetings)."""
        if isinstance(value, list):
            return [self._list_item(item, where) for item in value]
        if value is None:
            self.warn(f"'{where}' was null; read as an empty list")
            return []
        if isinstance(value, str):
            if split_commas:
                self.warn(f"'{where}' was comma-separated text; read as a list")
                return [part.strip() for part in value.split(",") if part.strip()]
            self.warn(f"'{where}' was text; read as a list of one")
            return [value] if value else []
        self.fail(where, f"must be a list of texts, not {kind(value)}")

    def _list_item(self, item: Any, where: str) -> str:
        if isinstance(item, str):
            return item
        if is_number(item):
            self.warn(f"'{where}' held a number; read as text")
            return str(item)
        self.fail(where, f"must be a list of texts, but holds {kind(item)}")

    def boolean(self, value: Any, where: str) -> bool:
        if isinstance(value, bool):
            return value
        if is_number(value) and value in (0, 1):
            self.warn(f"'{where}' was {value}; read as {bool(value)}")
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            result = value.strip().lower() in _TRUE
            self.warn(f"'{where}' was the text {value!r}; read as {result}")
            return result
        self.fail(where, f"must be true or false, not {kind(value)}")

    def number(self, value: Any, where: str) -> int | float:
        if is_number(value):
            return value
        if isinstance(value, str):
            parsed = parse_number(value)
            if parsed is not None:
                self.warn(f"'{where}' was the text {value!r}; read as a number")
                return parsed
        self.fail(where, f"must be a number, not {kind(value)}")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        self.fail(where, f"must be an object, not {kind(value)}")
