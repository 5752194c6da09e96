"""Macros ("curly braced syntax") in cards, personas, lore and messages, by concern.

`engine` expands them (bounded, see its docstring); the other modules hold the values:
`time` (clock, moment-style formats, durations), `variables` (chat and global variables),
`chat_state` (the chat's last messages and swipes), `instruct` (the instruct preset's
sequences). `MacroContext` (in `context`) carries what a text is expanded with.
"""

from app.core.prompt.macros.engine import (
    _STAND_INS,
    GROWTH,
    HARD_CAP,
    SLACK,
    MacroBudgetError,
    MacroContext,
    expand_bounded,
    expand_macros,
    output_budget,
    stable_rng,
)

__all__ = [
    "GROWTH",
    "HARD_CAP",
    "SLACK",
    "_STAND_INS",
    "MacroBudgetError",
    "MacroContext",
    "expand_bounded",
    "expand_macros",
    "output_budget",
    "stable_rng",
]
