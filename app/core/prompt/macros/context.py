"""What a text's macros are expanded with: names, the card, the chat's state, variables.

Everything but the names is optional: a greeting made with a new chat knows no variables
and no last message, and its macros of those kinds are then left as written.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from app.core.prompt.macros.variables import Variables


@dataclass(frozen=True)
class CardFields:
    """The card's texts SillyTavern's `getCharacterCardFields` offers as macros
    (`{{description}}`, `{{charPrompt}}`, ...), as written on the card."""

    description: str = ""
    personality: str = ""
    scenario: str = ""
    persona: str = ""
    mes_examples: str = ""
    system: str = ""  # the card's system prompt: {{charPrompt}}
    jailbreak: str = ""  # its post-history instructions: {{charJailbreak}}
    version: str = ""


@dataclass(frozen=True)
class ChatState:
    """The chat as `{{lastMessage}}`, `{{lastMessageId}}`, swipes and `{{idle_duration}}`
    see it. Ids are positions in the chat (the first message is 0), as in SillyTavern."""

    last_message: str = ""
    last_message_id: int | None = None
    last_user_message: str = ""
    last_char_message: str = ""
    first_included_message_id: int | None = None  # from the last prompt built
    current_swipe_id: int | None = None  # 1-based
    last_swipe_id: int | None = None  # the number of swipes
    idle_since: datetime | None = None  # the user's message before the last message


@dataclass
class MacroNotes:
    """What expansion found, for the prompt inspector: macros nobody knows (left as
    written) and the words of `{{banned "..."}}` (removed from the text)."""

    unknown: dict[str, None] = field(default_factory=dict)  # an ordered set
    banned: list[str] = field(default_factory=list)
    limit: int = 100  # a hostile card cannot grow the lists without end

    def add_unknown(self, macro: str) -> None:
        if len(self.unknown) < self.limit:
            self.unknown.setdefault(macro[:200], None)

    def add_banned(self, words: str) -> None:
        if len(self.banned) < self.limit and words not in self.banned:
            self.banned.append(words)


@dataclass(frozen=True)
class MacroContext:
    char: str = ""
    user: str = "User"
    original: str = ""
    rng: random.Random | None = None
    clock: Callable[[], datetime] | None = None
    # Where over-budget warnings go (the prompt builder collects them); None logs them.
    warn: Callable[[str], None] | None = None
    # {{group}}, {{charIfNotGroup}}, <GROUP>: the members' names in a group chat, else char
    group: str | None = None
    card: CardFields | None = None
    model: str | None = None  # the loaded model's name
    input: str = ""  # the text being written in the chat's input box
    max_prompt: int | None = None  # the context size less the reply's share
    chat: ChatState | None = None
    # instruct macros by lower-case name, aliases included (see `instruct.instruct_values`)
    instruct: Mapping[str, str] | None = None
    variables: Variables | None = None
    notes: MacroNotes | None = None


@dataclass
class MacroInput:
    """What the chat adds to a prompt's macros, beyond the card and the names: its stored
    variables (None: an empty set, kept only in the built prompt), its state (None: taken
    from the history given), the model's name, the input box, and a group's member names."""

    variables: Variables | None = None
    chat: ChatState | None = None
    model: str | None = None
    input: str = ""
    group: str | None = None
