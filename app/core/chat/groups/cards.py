"""The card a group's speaking member is prompted with, in swap or join mode.

Swap mode (SillyTavern's `group_generation_mode.SWAP`, where `getGroupCharacterCards` returns
nothing) sends the speaker's card alone; the others appear by name in the turns. Join mode
(`APPEND`, and `APPEND_DISABLED` which keeps muted members too) replaces the description,
personality, scenario and examples by every member's, each field wrapped in the group's
prefix and suffix (`replaceAndPrepareForJoin`: `<FIELDNAME>` and the member's `{{char}}`
filled in, joined with a newline when the instruct format wraps), one member per line.
A group scenario replaces the members' scenarios in both modes (`scenarioOverride`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from app.core.prompt import MacroContext, expand_macros
from app.core.prompt.worldinfo import CharacterNote
from app.core.store.groups import CardMode, GroupSettings

JOINED_FIELDS = (
    ("description", "Description"),
    ("personality", "Personality"),
    ("scenario", "Scenario"),
    ("mes_example", "Example Messages"),
)
_FIELDNAME = re.compile(r"<FIELDNAME>", re.I)
_GROUP = re.compile(r"\{\{(group|charIfNotGroup)\}\}", re.I)


@dataclass(frozen=True)
class MemberCard:
    character_id: int
    name: str
    card: dict[str, Any]  # the V3 `data`
    muted: bool = False


def _replace(value: str, field_name: str, char: str, user: str) -> str:
    """SillyTavern's `customBaseChatReplace`: the field name, then the member's macros."""
    if not value:
        return ""
    value = _FIELDNAME.sub(lambda _: field_name, value)
    return expand_macros(value.strip(), MacroContext(char=char, user=user), field_name)


def _prepared(
    value: str, member: MemberCard, field_name: str, settings: GroupSettings, user: str, wrap: bool
) -> str:
    """`replaceAndPrepareForJoin`: one member's field inside the prefix and suffix."""
    value = (value or "").strip()
    if not value:
        return ""
    prefix = _replace(settings.join_prefix, field_name, member.name, user)
    suffix = _replace(settings.join_suffix, field_name, member.name, user)
    sep = "\n" if wrap else ""
    value = _replace(value, field_name, member.name, user)
    return f"{prefix + sep if prefix else ''}{value}{sep + suffix if suffix else ''}"


def joined_fields(
    members: list[MemberCard],
    speaker_id: int,
    settings: GroupSettings,
    user: str,
    wrap: bool = True,
) -> dict[str, str]:
    """`getGroupCharacterCards`: each field of every member who counts, one per line.
    A muted member counts when it is the speaker, or in JOIN_MUTED mode."""
    out: dict[str, list[str]] = {key: [] for key, _ in JOINED_FIELDS}
    for m in members:
        if (
            m.muted
            and m.character_id != speaker_id
            and settings.card_mode is not CardMode.JOIN_MUTED
        ):
            continue
        for key, label in JOINED_FIELDS:
            raw = m.card.get(key)
            out[key].append(
                _prepared(raw if isinstance(raw, str) else "", m, label, settings, user, wrap)
            )
    joined = {key: "\n".join(t for t in texts if t) for key, texts in out.items()}
    if settings.scenario.strip():
        joined["scenario"] = settings.scenario.strip()
    return joined


def member_notes(
    members: list[MemberCard], speaker_id: int, settings: GroupSettings, user: str
) -> list[CharacterNote] | None:
    """Join mode's character notes (`getGroupDepthPrompts`): every unmuted member's, and the
    speaker's even when muted (muted members stay out in join-with-muted mode too), each
    with its own `{{char}}`. None in swap mode: the speaker's card brings its own."""
    if settings.card_mode is CardMode.SWAP:
        return None
    notes = []
    for m in members:
        if m.muted and m.character_id != speaker_id:
            continue
        note = CharacterNote.from_card(m.card)
        if note.text:
            ctx = MacroContext(char=m.name, user=user)
            notes.append(replace(note, text=expand_macros(note.text, ctx, "a character's note")))
    return notes


def speaker_card(
    members: list[MemberCard],
    speaker_id: int,
    settings: GroupSettings,
    user: str,
    wrap: bool = True,
) -> dict[str, Any]:
    """The card the builder gets: the speaker's, with the group's fields in join mode,
    the group scenario when set, and `{{group}}` as the members' names."""
    speaker = next(m for m in members if m.character_id == speaker_id)
    card = dict(speaker.card)
    if settings.card_mode is CardMode.SWAP:
        if settings.scenario.strip():
            card["scenario"] = settings.scenario.strip()
    else:
        card.update(joined_fields(members, speaker_id, settings, user, wrap))
    names = ", ".join(m.name for m in members)
    return {k: _GROUP.sub(lambda _: names, v) if isinstance(v, str) else v for k, v in card.items()}


def group_greetings(card: dict[str, Any]) -> list[str]:
    """A member's greetings in a group: its V3 `group_only_greetings` when it has any,
    else its first message and alternate greetings."""
    only = [g for g in card.get("group_only_greetings") or [] if isinstance(g, str) and g]
    if only:
        return only
    texts = [card.get("first_mes") or "", *(card.get("alternate_greetings") or [])]
    return [t for t in texts if isinstance(t, str) and t]
