"""The prompt for a group's speaking member, from the chat's stored state.

The speaker's card (swap) or the members' joined fields (join) go to the ordinary prompt
builder; every past line carries its speaker's name, and the instruct format runs in group
mode (SillyTavern's "force for groups" names behaviour names everyone but the user). Every
member's lorebook is active: their cards' own books and the library books linked to them,
after the chat's and the global books, each book once (SillyTavern's `getCharacterLore` skips
a character's book that is already active as global or chat lore). Each other member's
`\\nName:` is a stop string (`getStoppingStrings`), so a reply ends where someone else would
begin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from app.core.appdata.settings import Settings
from app.core.chat.groups.cards import MemberCard, member_notes, speaker_card
from app.core.chat.job import (
    PromptJob,
    TokenCounter,
    chat_persona_of,
    prompt_input,
    prompt_message,
)
from app.core.chat.macro_state import stored_variables
from app.core.chat.world_info import lore_input
from app.core.engine import ModelInfo
from app.core.prompt import BuiltPrompt, ChatTemplate, PromptInput
from app.core.prompt import Message as PromptMessage
from app.core.prompt.history_tail import Earlier
from app.core.prompt.instruct import InstructTemplate, shipped_instruct
from app.core.prompt.worldinfo import Book, Source
from app.core.prompt.worldinfo.in_prompt import LoreInput, card_book
from app.core.store import Message, Store
from app.core.store.groups import Group
from app.core.store.world_state import WorldInfoStore


def member_cards(store: Store, group: Group) -> list[MemberCard]:
    """The members with their current cards (an edit applies at once)."""
    return [
        MemberCard(m.character_id, m.name, store.characters.card(m.character_id), m.muted)
        for m in group.members
    ]


def group_names(members: list[MemberCard]) -> str:
    """`{{group}}` (and `{{charIfNotGroup}}`) in a group: every member's name, muted ones
    too, in the group's order (script.js `substituteParams`, its `getGroupValue`)."""
    return ", ".join(m.name for m in members if m.name)


def member_stops(members: list[MemberCard], speaker_id: int) -> list[str]:
    return [f"\n{m.name}:" for m in members if m.character_id != speaker_id and m.name]


def group_history(
    history: list[Message], names: dict[int, str], speaker_name: str
) -> list[PromptMessage]:
    """Each stored line as the prompt sees it, under its speaker's current name; a line
    whose speaker is unknown (imported, or a deleted character) keeps the name it came with."""
    out = []
    for m in history:
        if not m.text or m.role == "system":
            continue
        if m.role == "assistant" and m.speaker_id in names:
            out.append(PromptMessage("assistant", m.text, names[m.speaker_id]))
        else:
            out.append(prompt_message(m, speaker_name))
    return out


def member_books(
    store: Store, members: list[MemberCard], lore: LoreInput, speaker_id: int
) -> list[Book]:
    """The other members' books, added after those the speaker's lore already has."""
    have = {b.name for b in lore.books}
    member_ids = {m.character_id for m in members}
    books: list[Book] = []
    for m in members:
        own = card_book(m.card) if m.character_id != speaker_id else None
        if own is not None and own.name not in have:
            books.append(own)
            have.add(own.name)
    for stored in WorldInfoStore(store).books():
        if stored.name not in have and member_ids & set(stored.characters):
            books.append(Book(stored.name, stored.book, Source.CHARACTER))
            have.add(stored.name)
    return books


def _wraps(settings: Settings) -> bool:
    """Whether joined fields go on their own lines (SillyTavern: the instruct `wrap`)."""
    chosen = shipped_instruct().get(settings.template)
    return chosen.wrap if chosen is not None else True


@dataclass
class GroupPrompt:
    """A group turn's prompt input, and what the job adds to it."""

    inp: PromptInput
    stops: list[str]
    speaker: MemberCard
    path_ids: list[int] = field(default_factory=list)


def group_prompt_input(
    store: Store,
    settings: Settings,
    chat_id: int,
    speaker_id: int,
    history: list[Message],
    *,
    instruction: str | None = None,
    continue_last: bool = False,
    earlier: Earlier | None = None,
) -> GroupPrompt:
    """What the builder needs for `speaker_id`'s next line in group chat `chat_id`;
    `history` is the path's newest part, `earlier` counts the rest (history_tail.py)."""
    group = store.groups.of_chat(chat_id)
    members = member_cards(store, group)
    speaker = _member(members, speaker_id, group)
    persona = chat_persona_of(store, chat_id)
    user = persona[0] if persona and persona[0] else settings.user_name
    card = speaker_card(members, speaker_id, group.settings, user, _wraps(settings))
    path_ids = [m.id for m in history]
    lore = lore_input(WorldInfoStore(store), chat_id, speaker_id, path_ids)
    lore = replace(
        lore,
        books=lore.books + member_books(store, members, lore, speaker_id),
        character_notes=member_notes(members, speaker_id, group.settings, user),
    )
    inp = prompt_input(card, settings, [], instruction=instruction, persona=persona, lore=lore)
    names = store.groups.speaker_names({m.speaker_id for m in history if m.speaker_id})
    names.update({m.character_id: m.name for m in members})
    turns = group_history(history, names, speaker.name)
    inp = replace(
        inp,
        history=turns + inp.history,
        continue_last=continue_last,
        earlier=earlier or Earlier(),
        macros=replace(
            inp.macros, group=group_names(members), variables=stored_variables(store, chat_id)
        ),
    )
    return GroupPrompt(inp, member_stops(members, speaker_id), speaker, path_ids)


def group_speaker(store: Store, chat_id: int, speaker_id: int) -> tuple[MemberCard, list[str]]:
    """The speaking member and the other members' stop strings: what the window needs when
    it asks for a reply; the prompt itself is built on the worker thread (it reads the path)."""
    group = store.groups.of_chat(chat_id)
    members = member_cards(store, group)
    return _member(members, speaker_id, group), member_stops(members, speaker_id)


def _member(members: list[MemberCard], speaker_id: int, group: Group) -> MemberCard:
    speaker = next((m for m in members if m.character_id == speaker_id), None)
    if speaker is None:
        raise ValueError(f"character {speaker_id} is not a member of {group.name}")
    return speaker


@dataclass
class GroupPromptJob(PromptJob):
    """A prompt job in group mode: names forced in the instruct format, member stops."""

    member_stops: list[str] = field(default_factory=list)

    def template(self) -> tuple[ChatTemplate, list[str]]:
        template, notes = super().template()
        if isinstance(template, InstructTemplate):
            template = replace(template, in_group=True)
        return template, notes

    def __call__(self, count_many: Callable[[list[str]], list[int]]) -> BuiltPrompt:
        built = super().__call__(count_many)
        built.stop = list(dict.fromkeys([*built.stop, *self.member_stops]))
        return built


def group_job(
    prompt: GroupPrompt, info: ModelInfo, settings: Settings, counter: TokenCounter
) -> GroupPromptJob:
    """The job for the worker (or `GroupChat.reply`), as for a one-character chat."""
    return GroupPromptJob(prompt.inp, info, settings, counter, member_stops=prompt.stops)
