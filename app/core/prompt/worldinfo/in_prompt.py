"""World info, author's note and character's note for one prompt, ready for the builder.

The chat is scanned as `Name: message` lines, newest first (SillyTavern's `chatForWI` with
"include names" on). The card's own book, the chat's lore and the global books are merged in
SillyTavern's order. What fired becomes part texts (before and after the character definition,
the author's note when it sits in the system block), example blocks, and messages inserted
into the history at their depth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.core.prompt.history_tail import Earlier
from app.core.prompt.presets import Message
from app.core.prompt.worldinfo.activate import LoreResult, run_world_info
from app.core.prompt.worldinfo.entry import MAX_SCAN_DEPTH, Role, as_dict
from app.core.prompt.worldinfo.notes import (
    AuthorsNote,
    CharacterNote,
    NotePosition,
    in_chat_prompts,
    inject,
    note_with_lore,
)
from app.core.prompt.worldinfo.settings import Book, Source, WorldInfoSettings


@dataclass
class LoreInput:
    """What the chat adds to the card's own lore."""

    books: list[Book] = field(default_factory=list)  # global books and the chat's lore
    seed: str = ""  # the chat's seed for probability and group draws
    timed_state: Any = None  # sticky/cooldown state in effect on this branch
    authors_note: AuthorsNote | None = None
    scenario: str | None = None  # the chat's own scenario (chat_metadata.scenario)
    # a group in join mode: every counted member's note (getGroupDepthPrompts), each with
    # its own macros filled in; None: the card's own note
    character_notes: list[CharacterNote] | None = None


@dataclass
class PromptLore:
    result: LoreResult
    texts: dict[str, str]  # "lore_before", "lore_after", "authors_note(_before)"
    note_position: NotePosition
    examples_before: list[str]  # raw example text from lore, before the card's examples
    examples_after: list[str]
    history: list[Message]  # with the in-chat injections


def card_book(card: dict[str, Any]) -> Book | None:
    book = card.get("character_book")
    if not isinstance(book, dict):
        return None
    ext = as_dict(card.get("extensions"))
    # SillyTavern knows a card's book by the world it was imported as (`extensions.world`);
    # the name also keys its sticky/cooldown state (`world.uid` in timedWorldInfo)
    name = ext.get("world") or book.get("name") or card.get("name") or "character"
    return Book(str(name), book, Source.CHARACTER)


def lore_for_prompt(
    card: dict[str, Any],
    lore: LoreInput,
    history: list[Message],
    *,
    settings: WorldInfoSettings,
    max_context: int,
    count_tokens: Callable[[str], int],
    expand: Callable[[str], str],
    continue_last: bool,
    user: str,
    char: str,
    earlier: Earlier | None = None,
) -> PromptLore:
    earlier = earlier or Earlier()  # the history before `history` (history_tail.py)
    own = card_book(card)
    books = ([own] if own else []) + list(lore.books)
    # The scan never looks deeper than MAX_SCAN_DEPTH lines (ScanBuffer): only those are made.
    lines = [_line(m, settings.include_names) for m in reversed(history[-MAX_SCAN_DEPTH:])]
    result = run_world_info(
        books,
        lines,
        max_context=max_context,
        count_tokens=count_tokens,
        settings=settings,
        expand=expand,
        seed=lore.seed,
        timed_state=lore.timed_state,
        chat_length=earlier.messages + len(history),
        character=str(card.get("name") or ""),
        character_tags=_tags(card),
    )
    placed = result.placement
    users = earlier.user_messages + sum(1 for m in history if m.role == "user")
    note = lore.authors_note or AuthorsNote()
    note_text = expand(note_with_lore(note, placed, users))
    char_note: CharacterNote | list[CharacterNote]
    if lore.character_notes is None:
        char_note = CharacterNote.from_card(card)
        char_note.text = expand(char_note.text)
    else:
        char_note = list(lore.character_notes)
    prompts = in_chat_prompts(note, note_text, char_note, placed)
    names = {Role.USER: user, Role.ASSISTANT: char}
    return PromptLore(
        result=result,
        texts={
            "lore_before": "\n".join(placed.before),
            "lore_after": "\n".join(placed.after),
            "authors_note": note_text if note.position == NotePosition.IN_PROMPT else "",
            "authors_note_before": note_text if note.position == NotePosition.BEFORE_PROMPT else "",
        },
        note_position=note.position,
        examples_before=list(placed.em_top),
        examples_after=list(placed.em_bottom),
        history=inject(history, prompts, continue_last, names),
    )


def _tags(card: dict[str, Any]) -> tuple[str, ...]:
    tags = card.get("tags")
    return tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()


def _line(m: Message, include_names: bool) -> str:
    return f"{m.name}: {m.text}" if include_names and m.name else m.text
