"""World-info settings, with the defaults of a new SillyTavern install (its
`default/content/settings.json`), and the books a prompt draws lore from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any


class Strategy(IntEnum):
    """SillyTavern's `world_info_insertion_strategy`: how global and character lore merge."""

    EVENLY = 0
    CHARACTER_FIRST = 1
    GLOBAL_FIRST = 2


class Source(Enum):
    CHARACTER = "character"
    GLOBAL = "global"
    CHAT = "chat"


@dataclass
class WorldInfoSettings:
    depth: int = 2  # messages scanned, unless an entry says otherwise
    budget_percent: float = 25  # of the context left after the reply
    budget_cap: int = 0  # tokens; 0 = no cap
    include_names: bool = True  # scan "Name: message" lines
    recursive: bool = True
    case_sensitive: bool = False
    whole_words: bool = True
    use_group_scoring: bool = False
    min_activations: int = 0
    min_activations_depth_max: int = 0  # 0 = up to the whole chat
    max_recursion_steps: int = 0  # 0 = unlimited
    strategy: Strategy = Strategy.CHARACTER_FIRST


@dataclass
class Book:
    """A lorebook (V3 `character_book` shape) and where it comes from."""

    name: str
    data: dict[str, Any]
    source: Source = Source.CHARACTER
