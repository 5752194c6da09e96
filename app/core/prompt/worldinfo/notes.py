"""Author's note and character's note, and how in-chat injections enter the history.

The author's note follows SillyTavern's `setFloatingPrompt` (interval counted in user messages)
and its `chat_metadata` keys; the character's note is the card's `extensions.depth_prompt`.
In-chat prompts are merged per depth and role the way `getExtensionPrompt` and `doChatInject`
do it: at one depth, prompts of one role are joined in the order of their internal names (the
author's note, then the character's note, then `@depth` lore), and the roles end up in the chat
as assistant, user, system, so the system text sits nearest to the reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from app.core.prompt.presets import Message
from app.core.prompt.worldinfo.entry import DEFAULT_DEPTH, Role, _role, as_dict
from app.core.prompt.worldinfo.placement import Placement

NOTE_KEYS = ("note_prompt", "note_interval", "note_position", "note_depth", "note_role")


class NotePosition(IntEnum):
    """SillyTavern's `extension_prompt_types`."""

    IN_PROMPT = 0  # after the system block (the story string)
    IN_CHAT = 1  # in the chat at a depth, with a role
    BEFORE_PROMPT = 2  # before the system block


@dataclass
class AuthorsNote:
    text: str = ""
    interval: int = 1  # every N user messages; 0 = off
    position: NotePosition = NotePosition.IN_CHAT
    depth: int = DEFAULT_DEPTH
    role: Role = Role.SYSTEM

    def applies(self, user_messages: int) -> bool:
        """SillyTavern's rule: interval 1 is always on; otherwise every N-th user message."""
        count = 1 if self.interval == 1 else user_messages
        if count <= 0 or self.interval <= 0:
            return False
        left = count % self.interval if count >= self.interval else self.interval - count
        return left == 0

    @classmethod
    def from_chat_metadata(cls, meta: dict[str, Any]) -> AuthorsNote:
        base = cls()
        return cls(
            text=str(meta.get("note_prompt") or ""),
            interval=_int(meta.get("note_interval"), base.interval),
            position=_note_position(meta.get("note_position")),
            depth=_int(meta.get("note_depth"), base.depth),
            role=_role(meta.get("note_role")),
        )

    def to_chat_metadata(self) -> dict[str, Any]:
        return {
            "note_prompt": self.text,
            "note_interval": self.interval,
            "note_position": int(self.position),
            "note_depth": self.depth,
            "note_role": int(self.role),
        }


@dataclass
class CharacterNote:
    text: str = ""
    depth: int = DEFAULT_DEPTH
    role: Role = Role.SYSTEM

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> CharacterNote:
        raw = as_dict(as_dict(card.get("extensions")).get("depth_prompt"))
        return cls(
            text=str(raw.get("prompt") or "").strip(),
            depth=_int(raw.get("depth"), DEFAULT_DEPTH),
            role=_role(raw.get("role")),
        )


@dataclass
class InChat:
    name: str  # sorts the prompts of one depth and role, as SillyTavern's keys do
    text: str
    depth: int
    role: Role


def note_with_lore(note: AuthorsNote | None, placement: Placement, user_messages: int) -> str:
    """The author's note with the lore placed at its top and bottom, or "" when it is off."""
    note = note or AuthorsNote()
    if not note.applies(user_messages):
        return ""
    return "\n".join([*placement.an_top, note.text.strip(), *placement.an_bottom]).strip()


def in_chat_prompts(
    note: AuthorsNote | None,
    note_text: str,
    char_note: CharacterNote | list[CharacterNote],
    placement: Placement,
) -> list[InChat]:
    """`char_note` is the card's note, or a group's list of its members' notes (SillyTavern's
    `getGroupDepthPrompts`, each kept as `DEPTH_PROMPT_<n>` among those with text)."""
    prompts = []
    note = note or AuthorsNote()
    if note_text and note.position == NotePosition.IN_CHAT:
        prompts.append(InChat("2_floating_prompt", note_text, note.depth, note.role))
    if isinstance(char_note, list):
        for i, member in enumerate(n for n in char_note if n.text):
            prompts.append(InChat(f"DEPTH_PROMPT_{i}", member.text, member.depth, member.role))
    elif char_note.text:
        prompts.append(InChat("DEPTH_PROMPT", char_note.text, char_note.depth, char_note.role))
    for group in placement.depth:
        prompts.append(
            InChat(
                f"customDepthWI-{group.depth}-{int(group.role)}",
                group.text,
                group.depth,
                group.role,
            )
        )
    return prompts


def inject(
    history: list[Message], prompts: list[InChat], continue_last: bool, names: dict[Role, str]
) -> list[Message]:
    """`history` with the in-chat prompts inserted `depth` messages from the end."""
    if not prompts:
        return history
    newest_first = list(reversed(history))
    inserted = 0
    for depth in sorted({max(0, p.depth) for p in prompts}):
        block = []
        for role in (Role.SYSTEM, Role.USER, Role.ASSISTANT):
            texts = [
                p.text.strip()
                for p in sorted(prompts, key=lambda p: p.name)
                if max(0, p.depth) == depth and p.role == role and p.text.strip()
            ]
            if texts:
                block.append(Message(role.message_role, "\n".join(texts), names.get(role)))
        if block:
            at = (1 if continue_last and depth == 0 else depth) + inserted
            newest_first[at:at] = block
            inserted += len(block)
    return list(reversed(newest_first))


def _note_position(value: Any) -> NotePosition:
    try:
        return NotePosition(int(value))
    except (TypeError, ValueError, OverflowError):
        return NotePosition.IN_CHAT


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite number
        return default
