"""Who speaks next in a group: SillyTavern's activation strategies, with a seeded roll.

Matched to SillyTavern's `public/scripts/group-chats.js` (1.12): `activateNaturalOrder`
(mentions of a member's name in the activating text, then one talkativeness roll per member
in shuffled order, then a random chatty member if nobody was drawn), `activateListOrder`
(every unmuted member in order) and `activateSwipe` (a regenerated or continued message is
written by its own speaker). SillyTavern rolls `Math.random()`; here the roll comes from a
`random.Random` seeded with the chat's seed and the message the turn answers, so the choice
is reproducible from the chat and the "speaks next" shown in the window is what happens.
Manual mode is Parlor's own: nobody is drawn, the user picks.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from app.core.store.groups import Strategy

TALKATIVENESS_DEFAULT = 0.5  # SillyTavern's `talkativeness_default` (script.js)
_WORD = re.compile(r"\b\w+\b")
T = TypeVar("T")


@dataclass(frozen=True)
class Candidate:
    """A group member as the draw sees it."""

    character_id: int
    name: str
    talkativeness: float = TALKATIVENESS_DEFAULT
    muted: bool = False


def talkativeness(card: dict[str, Any]) -> float:
    """`data.extensions.talkativeness` (SillyTavern writes it as text, "0.5"); anything
    that is not a number is the default, as SillyTavern's `isNaN` check makes it."""
    ext = card.get("extensions")
    value = ext.get("talkativeness") if isinstance(ext, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return TALKATIVENESS_DEFAULT
    try:
        number = float(value)
    except (TypeError, ValueError):
        return TALKATIVENESS_DEFAULT
    return number if number == number else TALKATIVENESS_DEFAULT  # NaN


def words(text: str) -> list[str]:
    """SillyTavern's `extractAllWords`: `\\b\\w+\\b` matches, lower-cased."""
    return [w.lower() for w in _WORD.findall(text or "")]


def turn_rng(chat_seed: str, answered_message_id: int | None) -> random.Random:
    """The draw for the turn that answers this message; the same chat state gives the same
    speakers (a swipe of the turn draws again from its own parent's id)."""
    return random.Random(f"{chat_seed}:{answered_message_id}")


def shuffled(items: Sequence[T], rng: random.Random) -> list[T]:
    """SillyTavern's `shuffle` (Fisher-Yates from the end), with our roll."""
    out = list(items)
    i = len(out)
    while i:
        j = int(rng.random() * i)
        i -= 1
        out[i], out[j] = out[j], out[i]
    return out


def natural_order(
    members: Sequence[Candidate], text: str, rng: random.Random, *, banned: str | None = None
) -> list[int]:
    """`activateNaturalOrder`: the speakers for this turn, in order.

    `members` are the unmuted ones; `banned` is the name of the member who wrote the last
    message when it is not the user's and self-responses are off."""
    activated: list[int] = []
    for word in words(text):  # each word activates the first member whose name has it
        for m in members:
            if m.name != banned and word in words(m.name):
                activated.append(m.character_id)
                break
    chatty: list[Candidate] = []
    for m in shuffled(members, rng):
        if m.name == banned:
            continue
        if m.talkativeness >= rng.random():
            activated.append(m.character_id)
        if m.talkativeness > 0:
            chatty.append(m)
    pool = chatty or list(members)
    tries = 0
    while not activated and tries < len(pool):
        tries += 1
        activated.append(pool[int(rng.random() * len(pool))].character_id)
    return list(dict.fromkeys(activated))


def list_order(members: Sequence[Candidate]) -> list[int]:
    """`activateListOrder`: every unmuted member, in the group's order."""
    return list(dict.fromkeys(m.character_id for m in members))


@dataclass(frozen=True)
class LastMessage:
    """The message the turn answers, as the draw needs it."""

    text: str
    from_user: bool
    speaker_name: str | None = None  # for an assistant message
    hidden: bool = False  # a system line: never activates anyone


def plan_turn(
    strategy: Strategy,
    members: Sequence[Candidate],
    last: LastMessage | None,
    rng: random.Random,
    *,
    allow_self_responses: bool,
    user_input: str | None = None,
    auto: bool = False,
) -> list[int]:
    """The members who answer, in order (SillyTavern's `generateGroupWrapper`).

    `user_input` is the user's new message when the turn was started by sending one; the
    activating text is then that message, else the last message's text."""
    speakers = [m for m in members if not m.muted]
    if not speakers:
        return []
    is_user_input = bool(user_input) and not auto
    text = user_input if is_user_input else (last.text if last and not last.hidden else "")
    if strategy is Strategy.LIST:
        return list_order(speakers)
    if strategy is Strategy.MANUAL:
        return []
    banned = None
    if not allow_self_responses and not is_user_input and last and not last.from_user:
        banned = last.speaker_name
    return natural_order(speakers, text or "", rng, banned=banned)
