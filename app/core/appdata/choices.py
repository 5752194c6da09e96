"""The settings that are one of a few words, as enums: the rest of the app switches on them.

Each is a `TextEnum`, so `settings.json` keeps the plain words and a comparison with a
string still holds; reading a file, a word that is none of these falls back to the default
with a warning naming the field (`settings_check`).
"""

from __future__ import annotations

from app.core.appdata.text_enum import TextEnum


class Theme(TextEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


class ChatLayout(TextEnum):
    BUBBLES = "bubbles"
    BOOK = "book"  # one column, no bubbles: a story's page


class KvType(TextEnum):
    """The KV cache's precision (llama.cpp's type_k and type_v)."""

    F16 = "f16"
    Q8_0 = "q8_0"
    Q4_0 = "q4_0"


class LoreStrategy(TextEnum):
    """How lore from several books is merged (SillyTavern's world_info_character_strategy)."""

    CHARACTER_FIRST = "character_first"
    EVENLY = "evenly"
    GLOBAL_FIRST = "global_first"
