"""A chat's world info for the prompt builder: its books, seed, timed effects and notes.

Reads the store (`WorldInfoStore`) and hands the prompt builder a typed `LoreInput`; after a
reply is generated, `remember_lore_state` keeps the sticky/cooldown state on the message the
prompt ended with, so the next turn, a swipe or a branch continues from the right timeline.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from app.core.appdata.settings import Settings
from app.core.prompt import BuiltPrompt
from app.core.prompt.worldinfo import AuthorsNote, Book, NotePosition, Role, Source
from app.core.prompt.worldinfo.in_prompt import LoreInput
from app.core.prompt.worldinfo.notes import NOTE_KEYS
from app.core.store.world_state import WorldInfoStore

E = TypeVar("E", bound=Enum)


def lore_input(
    wi: WorldInfoStore,
    chat_id: int,
    character_id: int,
    path_ids: list[int],
    default_note: AuthorsNote | None = None,
) -> LoreInput:
    """`path_ids`: the ids of the messages the prompt is built from, oldest first."""
    meta = wi.chat_metadata(chat_id)
    chat_lore = meta.get("world_info") if isinstance(meta.get("world_info"), str) else None
    books: list[Book] = []
    for stored in wi.books():
        if stored.name == chat_lore:
            books.append(Book(stored.name, stored.book, Source.CHAT))
        elif stored.is_global:
            books.append(Book(stored.name, stored.book, Source.GLOBAL))
        elif character_id in stored.characters:
            books.append(Book(stored.name, stored.book, Source.CHARACTER))
    has_note = any(key in meta for key in NOTE_KEYS)
    scenario = meta.get("scenario")
    timed = wi.timed_state(path_ids)
    if timed is None and isinstance(meta.get("timedWorldInfo"), dict):
        timed = meta["timedWorldInfo"]  # imported from SillyTavern: the file's own timeline
    return LoreInput(
        books=books,
        seed=wi.seed(chat_id),
        timed_state=timed,
        authors_note=AuthorsNote.from_chat_metadata(meta) if has_note else default_note,
        scenario=scenario if isinstance(scenario, str) and scenario else None,
    )


def default_note(settings: Settings) -> AuthorsNote:
    """The settings' author's note, for chats without their own (SillyTavern's defaults:
    in the chat at depth 4, as system, every message)."""
    return AuthorsNote(
        settings.note_default_text,
        settings.note_default_interval,
        _member(NotePosition, settings.note_default_position, NotePosition.IN_CHAT),
        settings.note_default_depth,
        _member(Role, settings.note_default_role, Role.SYSTEM),
    )


def _member(enum: type[E], value: object, default: E) -> E:
    try:
        return enum(value)
    except ValueError:
        return default


def remember_lore_state(wi: WorldInfoStore, path_ids: list[int], built: BuiltPrompt) -> None:
    """Keep the timed effects this prompt ended with, on its last message."""
    if path_ids:
        wi.save_timed_state(path_ids[-1], built.lore_state)


def save_authors_note(wi: WorldInfoStore, chat_id: int, note: AuthorsNote | None) -> None:
    """The chat's own note in SillyTavern's keys; None goes back to the default."""
    values = note.to_chat_metadata() if note is not None else dict.fromkeys(NOTE_KEYS)
    wi.update_chat_metadata(chat_id, values)


def save_scenario(wi: WorldInfoStore, chat_id: int, scenario: str | None) -> None:
    wi.update_chat_metadata(chat_id, {"scenario": scenario or None})
