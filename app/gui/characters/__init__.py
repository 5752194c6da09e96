"""The character GUI: the library (list, search, import, export, trash), the card editor and
the lorebook editor. See `library.CharacterLibrary` for the entry point."""

from app.gui.characters.card_editor import AvatarError, CardEditor, decode_avatar
from app.gui.characters.library import CardDropFilter, CharacterLibrary
from app.gui.characters.lorebook_editor import LorebookEditor

__all__ = [
    "AvatarError",
    "CardDropFilter",
    "CardEditor",
    "CharacterLibrary",
    "LorebookEditor",
    "decode_avatar",
]
