"""What the store's list and info methods return: frozen values, never database rows.

The GUI and the commands read these by attribute (C18: typed values across layers), so a
renamed column is a type error in one place instead of a `KeyError` in many.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def from_row(cls: type[T], row: sqlite3.Row) -> T:
    """`cls` built from the row's columns of the same names; columns it lacks are left out."""
    keys = set(row.keys())
    values: dict[str, Any] = {f.name: row[f.name] for f in fields(cls) if f.name in keys}
    return cls(**values)


@dataclass(frozen=True)
class ChatEntry:
    """A chat in a short list (a character's or a group's chats), newest use first."""

    id: int
    title: str
    last_used_at: float


@dataclass(frozen=True)
class ChatInfo:
    """A chat with its character (or group) name: one row, whatever the chat's length."""

    id: int
    title: str
    character_id: int
    character_name: str
    persona_id: int | None
    created_at: float
    last_used_at: float
    deleted_at: float | None
    extra: str | None = None  # JSON of the fields an imported file carried; `chats.extra()`


@dataclass(frozen=True, kw_only=True)
class ChatListing(ChatInfo):
    """A chat as the chat manager lists it, with its size: every message of every branch,
    counted for the list only (a 100,000-message chat makes the count felt)."""

    message_count: int


@dataclass(frozen=True)
class CharacterEntry:
    """A character in the library's list, or in the trash (`deleted_at` set)."""

    id: int
    name: str
    avatar: bytes | None = None
    deleted_at: float | None = None
    card_json: str | None = None  # only `characters.find`, which compares whole cards


@dataclass(frozen=True)
class Persona:
    """Who the user is in a chat."""

    id: int
    name: str
    description: str
    is_default: bool

    @classmethod
    def of(cls, row: sqlite3.Row) -> Persona:
        return cls(row["id"], row["name"], row["description"] or "", bool(row["is_default"]))
