"""The characters of the library: their cards (V3 `data`), avatars and the trash."""

from __future__ import annotations

import builtins
import json
import time
from typing import Any

from app.core.store.db import StoreError
from app.core.store.part import StorePart, new_id
from app.core.store.purge import GOING
from app.core.store.records import CharacterEntry, from_row


class Characters(StorePart):
    """`store.characters`: add, read, edit, find and trash characters."""

    def add(
        self,
        card_data: dict[str, Any],
        avatar: bytes | None = None,
        builtin_key: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """`card_data` is the V3 `data`; `extra` the card's other top-level keys (kept so an
        export gives back what was imported)."""
        now = time.time()
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO characters (name, card_json, avatar, builtin_key, created_at,"
                " updated_at, card_extra) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    card_data.get("name") or "Unnamed",
                    json.dumps(card_data),
                    avatar,
                    builtin_key,
                    now,
                    now,
                    json.dumps(extra) if extra else None,
                ),
            )
            return new_id(cur)

    def extra(self, character_id: int) -> dict[str, Any]:
        rows = self._query("SELECT card_extra FROM characters WHERE id = ?", (character_id,))
        try:
            extra = json.loads(rows[0]["card_extra"]) if rows and rows[0]["card_extra"] else {}
        except (TypeError, ValueError, RecursionError):
            extra = None
        return extra if isinstance(extra, dict) else {}  # optional keys: damaged means none

    def by_builtin(self, key: str) -> int | None:
        rows = self._query("SELECT id FROM characters WHERE builtin_key = ?", (key,))
        return rows[0]["id"] if rows else None

    def list(self) -> list[CharacterEntry]:
        rows = self._query(
            "SELECT id, name, avatar FROM characters WHERE deleted_at IS NULL"
            " ORDER BY name COLLATE NOCASE"
        )
        return [from_row(CharacterEntry, r) for r in rows]

    def update(
        self, character_id: int, card_data: dict[str, Any], avatar: bytes | None = None
    ) -> None:
        """Save an edited card (and avatar) over the stored one, in one commit."""
        with self._tx() as c:
            c.execute(
                "UPDATE characters SET name = ?, card_json = ?, avatar = ?,"
                " updated_at = ? WHERE id = ?",
                (
                    card_data.get("name") or "Unnamed",
                    json.dumps(card_data),
                    avatar,
                    time.time(),
                    character_id,
                ),
            )

    def card(self, character_id: int) -> dict[str, Any]:
        rows = self._query("SELECT card_json FROM characters WHERE id = ?", (character_id,))
        if not rows:
            raise StoreError(f"No character with id {character_id}")
        # A row written by an older, unchecked import may hold anything: say so, never crash
        # the library that lists it (it aborted every start).
        try:
            data = json.loads(rows[0]["card_json"])
        except (TypeError, ValueError, RecursionError) as exc:
            raise StoreError(
                f"Character {character_id} in {self._store.path} is damaged: its card "
                f"is not JSON ({exc})"
            ) from None
        if not isinstance(data, dict):
            raise StoreError(
                f"Character {character_id} in {self._store.path} is damaged: its card "
                f"is a JSON {type(data).__name__}, not an object"
            )
        return data

    def find(self, name: str) -> builtins.list[CharacterEntry]:
        """Characters (not in the trash) with this name, ignoring case, newest first."""
        rows = self._query(
            "SELECT id, name, card_json FROM characters WHERE deleted_at IS NULL"
            " AND name = ? COLLATE NOCASE ORDER BY id DESC",
            (name,),
        )
        return [from_row(CharacterEntry, r) for r in rows]

    def delete(self, character_id: int) -> None:
        """Move a character (and so its chats) to the trash; `restore` undoes it."""
        self.card(character_id)
        with self._tx() as c:
            c.execute(
                "UPDATE characters SET deleted_at = ? WHERE id = ?", (time.time(), character_id)
            )

    def restore(self, character_id: int) -> None:
        """Out of the trash, with its chats (those not in the trash themselves). One on its
        way out (`chats.delete_forever`) has had its chats' messages hidden: refused."""
        name = self.card(character_id).get("name") or character_id
        if self._query(f"SELECT 1 FROM characters WHERE id = ? AND {GOING}", (character_id,)):
            raise StoreError(f"“{name}” is being deleted for good")
        with self._tx() as c:
            c.execute("UPDATE characters SET deleted_at = NULL WHERE id = ?", (character_id,))

    def trash(self) -> builtins.list[CharacterEntry]:
        """The characters in the trash, last deleted first; not those on their way out."""
        rows = self._query(
            "SELECT id, name, avatar, deleted_at FROM characters"
            " WHERE deleted_at > 0 ORDER BY deleted_at DESC"
        )
        return [from_row(CharacterEntry, r) for r in rows]

    def chats_in_trash(self) -> dict[int, int]:
        """For each character in the trash, how many of its chats are hidden with it: they
        come back with it, or go with it for good. Its chats in the trash are listed there
        on their own, and a group chat it hosts belongs to the group (and moves to another
        member when it goes)."""
        rows = self._query(
            "SELECT ch.id, count(c.id) FROM characters ch LEFT JOIN chats c"
            " ON c.character_id = ch.id AND c.deleted_at IS NULL AND c.group_id IS NULL"
            " WHERE ch.deleted_at > 0 GROUP BY ch.id"
        )
        return {int(r[0]): int(r[1]) for r in rows}
