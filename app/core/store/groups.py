"""Groups kept in the database: a name, ordered members (muted or not), settings, chats.

A group chat is an ordinary chat (the same message tree, swipes and branches) with
`chats.group_id` set. Its `character_id` is a "host", one of the members, so every query that
lists chats by character keeps working; triggers in migration 5 move the host to another
member when that character is deleted or trashed, and `remove_member` does the same, so a
group's chats never go with one member. Each assistant message records its speaker
(`messages.speaker_id`); a member removed from the group keeps its past messages.

Members are characters from the library, read by id: an edit of a card applies to the group
at once. A group without its own avatar is shown with a collage of its members' portraits
(drawn by the GUI; `avatar` is then None).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any

from app.core.store.db import StoreError
from app.core.store.nodes import NewNode, insert_nodes
from app.core.store.part import new_id
from app.core.store.records import ChatEntry, from_row
from app.core.store.store import Store


class Strategy(str, Enum):
    """Who speaks next (SillyTavern's `group_activation_strategy`, plus manual)."""

    NATURAL = "natural"  # a member named in the last message, else by talkativeness
    LIST = "list"  # every unmuted member in order
    MANUAL = "manual"  # only the member the user picks


class CardMode(str, Enum):
    """SillyTavern's `group_generation_mode`: which cards the prompt holds."""

    SWAP = "swap"  # only the speaker's card
    JOIN = "join"  # every unmuted member's fields (and the speaker's, muted or not)
    JOIN_MUTED = "join_muted"  # every member's fields, muted ones too


@dataclass(frozen=True)
class GroupSettings:
    strategy: Strategy = Strategy.NATURAL
    card_mode: CardMode = CardMode.SWAP
    join_prefix: str = ""  # before each joined field; <FIELDNAME> and {{char}} are filled in
    join_suffix: str = ""
    allow_self_responses: bool = False
    auto_mode_turns: int = 10  # replies in a row without the user, in auto mode
    scenario: str = ""  # overrides the members' scenarios when set

    def to_json(self) -> str:
        raw = asdict(self)
        raw["strategy"], raw["card_mode"] = self.strategy.value, self.card_mode.value
        return json.dumps(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GroupSettings:
        """Checked values; ValueError names the first bad one (nothing is half-applied)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown group settings: {', '.join(unknown)}")
        out = cls()
        for key, value in raw.items():
            out = replace(out, **{key: _checked(key, value, getattr(out, key))})
        return out


def _checked(key: str, value: Any, default: Any) -> Any:
    if isinstance(default, Enum):
        try:
            return type(default)(value)
        except ValueError:
            choices = ", ".join(m.value for m in type(default))
            raise ValueError(f"{key} must be one of {choices}, not {value!r}") from None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, not {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{key} must be a whole number of 0 or more, not {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text, not {type(value).__name__}")
    return value


@dataclass(frozen=True)
class GroupMember:
    character_id: int
    name: str
    muted: bool = False


@dataclass(frozen=True)
class Group:
    id: int
    name: str
    members: tuple[GroupMember, ...]
    settings: GroupSettings = field(default_factory=GroupSettings)
    has_avatar: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # fields an imported file carried

    @property
    def speakers(self) -> tuple[GroupMember, ...]:
        """The members who may be picked to speak: the unmuted ones, in order."""
        return tuple(m for m in self.members if not m.muted)

    def member(self, character_id: int) -> GroupMember | None:
        return next((m for m in self.members if m.character_id == character_id), None)


class GroupStore:
    """Group reads and writes over one `Store` (its connection and transactions)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- groups -----------------------------------------------------------------------
    def create(
        self,
        name: str,
        character_ids: list[int],
        settings: GroupSettings | None = None,
        avatar: bytes | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        if not name.strip():
            raise ValueError("a group needs a name")
        if len(set(character_ids)) != len(character_ids):
            raise ValueError("a character can be in a group only once")
        for cid in character_ids:
            self.store.characters.card(cid)  # raises StoreError naming a missing character
        now = time.time()
        with self.store._tx() as c:
            gid = new_id(
                c.execute(
                    "INSERT INTO groups (name, avatar, settings, extra, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        name.strip(),
                        avatar,
                        (settings or GroupSettings()).to_json(),
                        json.dumps(extra, ensure_ascii=False) if extra else None,
                        now,
                        now,
                    ),
                )
            )
            for pos, cid in enumerate(character_ids):
                c.execute(
                    "INSERT INTO group_members (group_id, character_id, position) VALUES (?, ?, ?)",
                    (gid, cid, pos),
                )
        return gid

    def get(self, group_id: int) -> Group:
        rows = self.store._query("SELECT * FROM groups WHERE id = ?", (group_id,))
        if not rows:
            raise StoreError(f"No group with id {group_id}")
        return self._group(rows[0])

    def all(self) -> list[Group]:
        """Groups not in the trash, by name."""
        rows = self.store._query(
            "SELECT * FROM groups WHERE deleted_at IS NULL ORDER BY name COLLATE NOCASE, id"
        )
        return [self._group(r) for r in rows]

    def _group(self, row: sqlite3.Row) -> Group:
        members = self.store._query(
            "SELECT gm.character_id, ch.name, gm.muted FROM group_members gm"
            " JOIN characters ch ON ch.id = gm.character_id"
            " WHERE gm.group_id = ? AND ch.deleted_at IS NULL ORDER BY gm.position",
            (row["id"],),
        )
        try:
            settings = GroupSettings.from_dict(json.loads(row["settings"] or "{}"))
        except ValueError:
            settings = GroupSettings()  # a newer Parlor's setting: the defaults, not a crash
        return Group(
            row["id"],
            row["name"],
            tuple(GroupMember(m[0], m[1], bool(m[2])) for m in members),
            settings,
            row["avatar"] is not None,
            json.loads(row["extra"]) if row["extra"] else {},
        )

    def rename(self, group_id: int, name: str) -> None:
        if not name.strip():
            raise ValueError("a group needs a name")
        self._update(group_id, "name = ?", (name.strip(),))

    def set_settings(self, group_id: int, settings: GroupSettings) -> None:
        self._update(group_id, "settings = ?", (settings.to_json(),))

    def set_avatar(self, group_id: int, avatar: bytes | None) -> None:
        """None goes back to the collage of the members' portraits."""
        self._update(group_id, "avatar = ?", (avatar,))

    def avatar(self, group_id: int) -> bytes | None:
        rows = self.store._query("SELECT avatar FROM groups WHERE id = ?", (group_id,))
        return rows[0]["avatar"] if rows else None

    def set_extra(self, group_id: int, extra: dict[str, Any]) -> None:
        self._update(
            group_id, "extra = ?", (json.dumps(extra, ensure_ascii=False) if extra else None,)
        )

    def delete(self, group_id: int) -> None:
        """To the trash, with its chats (`restore` undoes it); members stay in the library."""
        self.get(group_id)
        now = time.time()
        with self.store._tx() as c:
            c.execute("UPDATE groups SET deleted_at = ? WHERE id = ?", (now, group_id))
            c.execute(
                "UPDATE chats SET deleted_at = ? WHERE group_id = ? AND deleted_at IS NULL",
                (now, group_id),
            )

    def restore(self, group_id: int) -> None:
        """Back from the trash, with the chats that went there with it (same stamp)."""
        self.get(group_id)
        with self.store._tx() as c:
            c.execute(
                "UPDATE chats SET deleted_at = NULL WHERE group_id = ? AND deleted_at ="
                " (SELECT deleted_at FROM groups WHERE id = ?)",
                (group_id, group_id),
            )
            c.execute("UPDATE groups SET deleted_at = NULL WHERE id = ?", (group_id,))

    def _update(self, group_id: int, assignment: str, args: tuple[Any, ...]) -> None:
        self.get(group_id)
        with self.store._tx() as c:
            c.execute(
                f"UPDATE groups SET {assignment}, updated_at = ? WHERE id = ?",
                (*args, time.time(), group_id),
            )

    # --- members ----------------------------------------------------------------------
    def add_member(self, group_id: int, character_id: int) -> None:
        """At the end of the list; adding a member twice is refused."""
        group = self.get(group_id)
        self.store.characters.card(character_id)
        present = group.member(character_id)
        if present is not None:
            raise ValueError(f"{present.name} is already in {group.name}")
        with self.store._tx() as c:
            last = c.execute(
                "SELECT COALESCE(MAX(position), -1) FROM group_members WHERE group_id = ?",
                (group_id,),
            ).fetchone()[0]
            c.execute(
                "INSERT INTO group_members (group_id, character_id, position) VALUES (?, ?, ?)",
                (group_id, character_id, last + 1),
            )

    def remove_member(self, group_id: int, character_id: int) -> None:
        """The member leaves; its past messages stay, and chats it hosted move to another."""
        with self.store._tx() as c:
            c.execute(
                "DELETE FROM group_members WHERE group_id = ? AND character_id = ?",
                (group_id, character_id),
            )
            c.execute(
                "UPDATE chats SET character_id = COALESCE((SELECT character_id FROM"
                " group_members WHERE group_id = ? ORDER BY position LIMIT 1),"
                " character_id) WHERE group_id = ? AND character_id = ?",
                (group_id, group_id, character_id),
            )

    def set_muted(self, group_id: int, character_id: int, muted: bool) -> None:
        with self.store._tx() as c:
            c.execute(
                "UPDATE group_members SET muted = ? WHERE group_id = ? AND character_id = ?",
                (int(muted), group_id, character_id),
            )

    def move_member(self, group_id: int, character_id: int, step: int) -> None:
        """Move up (negative) or down; stops at either end."""
        order = [m.character_id for m in self.get(group_id).members]
        if character_id not in order:
            raise ValueError(f"character {character_id} is not in group {group_id}")
        at = order.index(character_id)
        new = max(0, min(len(order) - 1, at + step))
        order.insert(new, order.pop(at))
        with self.store._tx() as c:
            for pos, cid in enumerate(order):
                c.execute(
                    "UPDATE group_members SET position = ? WHERE group_id = ? AND character_id = ?",
                    (pos, group_id, cid),
                )

    # --- chats ------------------------------------------------------------------------
    def new_chat(
        self,
        group_id: int,
        greetings: Sequence[tuple[int, str | Sequence[str]]],
        title: str = "",
    ) -> int:
        """A chat opening with each member's greeting in turn, one after another, as
        SillyTavern's `getGroupChat` adds every member's first message to a fresh chat.

        A member may bring several greetings (its first message and alternates): the first
        is shown, the others are its swipes, and each swipe is followed by the greetings of
        the members after it, so swiping an early greeting keeps the rest of the scene."""
        group = self.get(group_id)
        if not group.members:
            raise ValueError(f"{group.name} has no members: add a character first")
        openers = [
            (cid, [text] if isinstance(text, str) else list(text) or [""])
            for cid, text in greetings
        ]
        nodes = greeting_nodes(openers, time.time())
        return self.create_chat_from_nodes(
            group_id,
            title or time.strftime(f"{group.name} %Y-%m-%d %H:%M"),
            nodes,
            len(openers) - 1 if openers else None,  # the first greeting of each, in turn
        )

    def create_chat_from_nodes(
        self,
        group_id: int,
        title: str,
        nodes: list[NewNode],
        leaf_key: Hashable | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """A group chat holding `nodes` in one transaction (imports, new chats)."""
        group = self.get(group_id)
        if not group.members:
            raise ValueError(f"{group.name} has no members: add a character first")
        now = time.time()
        with self.store._tx() as c:
            chat_id = new_id(
                c.execute(
                    "INSERT INTO chats (character_id, group_id, title, created_at, last_used_at,"
                    " extra) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        group.members[0].character_id,
                        group_id,
                        title,
                        now,
                        now,
                        json.dumps(extra, ensure_ascii=False) if extra else None,
                    ),
                )
            )
            ids = insert_nodes(c, chat_id, nodes)
            c.execute(
                "UPDATE chats SET active_leaf_id = ? WHERE id = ?",
                (ids.get(leaf_key) if leaf_key is not None else None, chat_id),
            )
        if leaf_key is None and ids:
            self.store.messages.show_branch(chat_id, ids[nodes[0].key])
        return chat_id

    def attach_chat(self, chat_id: int, group_id: int) -> None:
        """Make a chat (a branch or a copy of a group chat) one of the group's."""
        host = self.get(group_id).members
        with self.store._tx() as c:
            c.execute(
                "UPDATE chats SET group_id = ?, character_id = COALESCE(?, character_id)"
                " WHERE id = ?",
                (group_id, host[0].character_id if host else None, chat_id),
            )

    def chats(self, group_id: int) -> list[ChatEntry]:
        rows = self.store._query(
            "SELECT id, title, last_used_at FROM chats WHERE group_id = ?"
            " AND deleted_at IS NULL ORDER BY last_used_at DESC",
            (group_id,),
        )
        return [from_row(ChatEntry, r) for r in rows]

    def of_chat(self, chat_id: int) -> Group:
        """The group whose chat this is; StoreError when it is no group's."""
        group_id = self.group_of_chat(chat_id)
        if group_id is None:
            raise StoreError(f"chat {chat_id} is not a group chat")
        return self.get(group_id)

    def group_of_chat(self, chat_id: int) -> int | None:
        rows = self.store._query("SELECT group_id FROM chats WHERE id = ?", (chat_id,))
        return rows[0][0] if rows else None

    # --- speakers ---------------------------------------------------------------------
    def append_reply(
        self,
        chat_id: int,
        parent_id: int | None,
        speaker_id: int,
        text: str = "",
        status: str = "streaming",
        gen_info: dict[str, Any] | None = None,
    ) -> int:
        """A member's reply under `parent_id`, shown at once (a swipe when it has siblings)."""
        with self.store._tx() as c:  # one commit: never a reply without its speaker
            mid = new_id(
                c.execute(
                    "INSERT INTO messages (chat_id, parent_id, role, text, status, gen_info,"
                    " created_at, speaker_id) VALUES (?, ?, 'assistant', ?, ?, ?, ?, ?)",
                    (
                        chat_id,
                        parent_id,
                        text,
                        status,
                        json.dumps(gen_info) if gen_info else None,
                        time.time(),
                        speaker_id,
                    ),
                )
            )
            self.store.messages._activate(c, chat_id, mid, parent_id)
        return mid

    def set_speaker(self, message_id: int, speaker_id: int | None) -> None:
        with self.store._tx() as c:
            c.execute("UPDATE messages SET speaker_id = ? WHERE id = ?", (speaker_id, message_id))

    def speaker_names(self, character_ids: set[int]) -> dict[int, str]:
        """Current names (a renamed card shows its new name in old messages too)."""
        if not character_ids:
            return {}
        marks = ", ".join("?" * len(character_ids))
        rows = self.store._query(
            f"SELECT id, name FROM characters WHERE id IN ({marks})", tuple(character_ids)
        )
        return {r["id"]: r["name"] for r in rows}


GREETING_NODES = 1000  # most messages a new group chat's greetings may make


def greeting_nodes(openers: list[tuple[int, list[str]]], now: float) -> list[NewNode]:
    """The greetings as a tree: under every swipe of a member's greeting, the next member's
    greetings with their swipes. The copies multiply, so past `GREETING_NODES` messages the
    earliest members' other greetings stay swipes without the rest of the scene under them
    (the scene goes on under their first greeting). Keys: the first path is 0, 1, 2, …"""
    carry = [len(texts) > 1 for _, texts in openers]

    def size(level: int) -> int:
        if level == len(openers):
            return 0
        n = len(openers[level][1])
        return n + (n if carry[level] else 1) * size(level + 1)

    for level in range(len(openers)):
        if size(0) <= GREETING_NODES:
            break
        carry[level] = False
    nodes: list[NewNode] = []

    def add(level: int, parent: int | None) -> None:
        if level == len(openers):
            return
        cid, texts = openers[level]
        for j, text in enumerate(texts):
            key = len(nodes)
            node = NewNode(
                key, parent, "assistant", text, created_at=now, shown=j == 0, speaker_id=cid
            )
            nodes.append(node)
            if j == 0 or carry[level]:
                add(level + 1, key)

    add(0, None)
    return nodes  # parents before children (insert_nodes needs it), swipes in their order
