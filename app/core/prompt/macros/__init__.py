"""Macros ("curly braced syntax") in cards, personas, lore and messages, by concern.

`engine` expands them (bounded, see its docstring); the other modules hold the values:
`clock` (time, moment-style formats, durations), `variables` (chat and global variables),
`chat_state` (the chat's last messages and swipes), `instruct` (the instruct preset's
sequences). `MacroContext` (in `context`) carries what a text is expanded with.
"""

from app.core.prompt.macros.chat_state import chat_state
from app.core.prompt.macros.context import (
    CardFields,
    ChatState,
    MacroContext,
    MacroInput,
    MacroNotes,
)
from app.core.prompt.macros.engine import (
    _STAND_INS,
    GROWTH,
    HARD_CAP,
    SLACK,
    MacroBudgetError,
    expand_bounded,
    expand_macros,
    output_budget,
    stable_rng,
)
from app.core.prompt.macros.instruct import instruct_values
from app.core.prompt.macros.variables import Variables

__all__ = [
    "GROWTH",
    "HARD_CAP",
    "SLACK",
    "_STAND_INS",
    "CardFields",
    "ChatState",
    "MacroBudgetError",
    "MacroContext",
    "MacroInput",
    "MacroNotes",
    "Variables",
    "chat_state",
    "expand_bounded",
    "expand_macros",
    "instruct_values",
    "output_budget",
    "stable_rng",
]
