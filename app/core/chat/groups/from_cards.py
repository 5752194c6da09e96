"""A group's prompt from card files alone, without the store (`parlor prompt --card A
--card B …`): the prompt for the next speaker.

The members are the cards in the order given. The speaker is `--speaker NAME`, else the one
SillyTavern's natural order picks for the chat as it stands (a mention in the last message,
else talkativeness), rolled from the chat's seed (its `integrity` id, else the file name) so
the same chat always names the same speaker. Without `--chat`, the chat holds each member's
greeting in turn, as a new SillyTavern group chat does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from app.core.chat.groups.cards import MemberCard, group_greetings, member_notes, speaker_card
from app.core.chat.groups.prompt import group_names, member_stops
from app.core.chat.groups.speakers import (
    Candidate,
    LastMessage,
    plan_turn,
    talkativeness,
    turn_rng,
)
from app.core.prompt import (
    BuiltPrompt,
    ChatTemplate,
    LoreInput,
    Message,
    PromptInput,
    build_prompt,
)
from app.core.prompt.instruct import InstructTemplate
from app.core.prompt.macros import MacroInput
from app.core.prompt.st_chat import StChat
from app.core.prompt.worldinfo.in_prompt import card_book
from app.core.store.groups import CardMode, GroupSettings, Strategy

MODES = {"swap": CardMode.SWAP, "join": CardMode.JOIN}


def members_of(cards: list[dict[str, Any]]) -> list[MemberCard]:
    names = [str(c.get("name") or f"Character {i + 1}") for i, c in enumerate(cards)]
    if len(set(n.casefold() for n in names)) != len(names):
        raise ValueError("two cards have the same name; a group needs each member once")
    return [
        MemberCard(i, name, card) for i, (name, card) in enumerate(zip(names, cards, strict=True))
    ]


def pick_speaker(
    members: list[MemberCard], history: list[Message], seed: str, wanted: str | None
) -> MemberCard:
    if wanted:
        for m in members:
            if m.name.casefold() == wanted.casefold():
                return m
        raise ValueError(
            f"--speaker {wanted!r} is none of the cards: " + ", ".join(m.name for m in members)
        )
    last = history[-1] if history else None
    order = plan_turn(
        Strategy.NATURAL,
        [Candidate(m.character_id, m.name, talkativeness(m.card)) for m in members],
        LastMessage(last.text, last.role == "user", last.name) if last else None,
        turn_rng(seed, len(history)),
        allow_self_responses=False,
    )
    return members[order[0]]


def history_of(members: list[MemberCard], chat: StChat | None) -> list[Message]:
    if chat is not None:
        return [
            Message(m.role, m.text, m.name if m.role == "assistant" else None)
            for m in chat.messages
        ]
    return [
        Message("assistant", greets[0], m.name)
        for m in members
        if (greets := group_greetings(m.card))
    ]


@dataclass(frozen=True)
class GroupRequest:
    """What the command line asks for: the speaker (None: the natural pick) and the mode."""

    speaker: str | None = None
    mode: str = "swap"  # "swap" | "join"
    persona: str = ""
    n_ctx: int = 4096
    reply_tokens: int = 512


def group_prompt(
    request: GroupRequest,
    cards: list[dict[str, Any]],
    chat: StChat | None,
    lore: LoreInput,
    template: ChatTemplate,
    count: Callable[[str], int],
    user: str,
) -> tuple[BuiltPrompt, str]:
    """The built prompt and the speaker's name; ValueError names a bad request."""
    members = members_of(cards)
    history = history_of(members, chat)
    speaker = pick_speaker(members, history, lore.seed, request.speaker)
    settings = GroupSettings(card_mode=MODES[request.mode])
    wrap = template.preset.wrap if isinstance(template, InstructTemplate) else True
    card = speaker_card(members, speaker.character_id, settings, user, wrap)
    others = [
        b
        for m in members
        if m.character_id != speaker.character_id and (b := card_book(m.card)) is not None
    ]
    lore = replace(
        lore,
        books=others + list(lore.books),
        character_notes=member_notes(members, speaker.character_id, settings, user),
    )
    if isinstance(template, InstructTemplate):
        template = replace(template, in_group=True)
    built = build_prompt(
        PromptInput(
            card,
            user,
            request.persona,
            history,
            lore=lore,
            macros=MacroInput(group=group_names(members)),
        ),
        template,
        count,
        request.n_ctx,
        request.reply_tokens,
    )
    built.stop = list(dict.fromkeys([*built.stop, *member_stops(members, speaker.character_id)]))
    return built, speaker.name
