"""World info (lorebooks) with SillyTavern 1.12's semantics, and why each entry fired.

    result = run_world_info([Book("Eldoria", card["character_book"])], lines_newest_first,
                            max_context=3584, count_tokens=count, settings=WorldInfoSettings())
    result.placement.before, .after, .an_top, .an_bottom, .em_top, .em_bottom, .depth
    result.fired   # names in prompt order
    result.trace   # every entry: fired or not, the reason, its position and tokens

Modules: `entry` (the typed entry read from a book), `keys` (plain and /regex/ keys, whole
words), `buffer` (the scanned text), `plan` (a book's keys compiled once, so a pass looks only
at the entries a key of the text may wake), `scan` (the activation loop: recursion, probability,
timed effects, groups, min activations, budget), `groups`, `timed`, `placement` (positions and
their order), `notes` (author's note, character's note, in-chat injection), `activate` (the
whole run and its trace).
"""

from app.core.prompt.worldinfo.activate import LoreResult, activate_lore, run_world_info
from app.core.prompt.worldinfo.entry import (
    Logic,
    Position,
    Role,
    WIEntry,
    book_entries,
    entry_from_book,
    parse_decorators,
)
from app.core.prompt.worldinfo.notes import AuthorsNote, CharacterNote, NotePosition
from app.core.prompt.worldinfo.placement import DepthInjection, Placement
from app.core.prompt.worldinfo.settings import Book, Source, Strategy, WorldInfoSettings
from app.core.prompt.worldinfo.trace import TraceItem

__all__ = [
    "AuthorsNote",
    "Book",
    "CharacterNote",
    "DepthInjection",
    "Logic",
    "LoreResult",
    "NotePosition",
    "Placement",
    "Position",
    "Role",
    "Source",
    "Strategy",
    "TraceItem",
    "WIEntry",
    "WorldInfoSettings",
    "activate_lore",
    "book_entries",
    "entry_from_book",
    "parse_decorators",
    "run_world_info",
]
