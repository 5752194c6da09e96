"""`TextEnum`: enum.StrEnum for Python 3.10 too (StrEnum arrived in 3.11)."""

from __future__ import annotations

from enum import Enum


class TextEnum(str, Enum):
    """A str enum whose members compare, format, bind to SQLite and go to JSON as the plain
    words they stand for, as `enum.StrEnum` does on Python 3.11 and later."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)
