"""Character cards: V1, V2 and V3 in PNG, JSON and CharX files, and their lorebooks.

Everything is read into a `Card` whose `data` is the V3 `data` object, keeping every field it
met; exports give back what was read (plus the V3 upgrade). Every failure is a `CardError`.

    card = load_card("alice.png")          # or card_from_bytes(data, "alice.png")
    card.name, card.first_mes, card.warnings, card.avatar
    save_card(card, "alice.charx")         # .png, .json or .charx, by extension
"""

from app.core.cards.errors import CardError
from app.core.cards.io import (
    card_from_bytes,
    card_to_charx_bytes,
    card_to_json_bytes,
    card_to_png_bytes,
    load_card,
    load_lorebook,
    lorebook_from_bytes,
    placeholder_png,
    save_card,
    save_lorebook,
)
from app.core.cards.lorebook import (
    Decorator,
    lorebook_from_json,
    lorebook_to_json,
    lorebook_to_world_info,
    split_decorators,
)
from app.core.cards.model import (
    SPEC_V1,
    SPEC_V2,
    SPEC_V3,
    Card,
    card_from_json,
    new_card,
    to_v2_json,
    to_v3_json,
)
from app.core.cards.png import MAX_TEXT_CHUNK, sniff_image

__all__ = [
    "MAX_TEXT_CHUNK",
    "SPEC_V1",
    "SPEC_V2",
    "SPEC_V3",
    "Card",
    "CardError",
    "Decorator",
    "card_from_bytes",
    "card_from_json",
    "card_to_charx_bytes",
    "card_to_json_bytes",
    "card_to_png_bytes",
    "load_card",
    "load_lorebook",
    "lorebook_from_bytes",
    "lorebook_from_json",
    "lorebook_to_json",
    "lorebook_to_world_info",
    "new_card",
    "placeholder_png",
    "save_card",
    "save_lorebook",
    "sniff_image",
    "split_decorators",
    "to_v2_json",
    "to_v3_json",
]
