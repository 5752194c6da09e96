"""What is in the trash, as the trash window lists it: characters (with the chats that
come back or go with them) and chats, newest deletion first."""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QLocale

from app.core.store import Store
from app.core.store.records import CharacterEntry, ChatListing


@dataclass(frozen=True)
class TrashItem:
    """One row of the trash: a character (with how many of its chats it hides) or a chat."""

    entry: CharacterEntry | ChatListing
    chats: int = 0  # a character's chats that come back or go with it

    @property
    def is_character(self) -> bool:
        return isinstance(self.entry, CharacterEntry)

    @property
    def name(self) -> str:
        return self.entry.name if isinstance(self.entry, CharacterEntry) else self.entry.title

    @property
    def deleted_at(self) -> float:
        return self.entry.deleted_at or 0.0


def trash_items(store: Store) -> list[TrashItem]:
    """Everything in the trash, the last deleted first."""
    counts = store.characters.chats_in_trash()
    items = [TrashItem(c, counts.get(c.id, 0)) for c in store.characters.trash()]
    items += [TrashItem(chat) for chat in store.chats.trash()]
    return sorted(items, key=lambda item: item.deleted_at, reverse=True)


def when_text(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def count_text(n: int, one: str, many: str) -> str:
    """ "1 chat", "3 chats", "100,001 messages": `one` and `many` come translated, `many`
    with {0} for the number, written as the user's locale writes it."""
    return one if n == 1 else many.format(QLocale().toString(n))
