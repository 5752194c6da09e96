"""Personas: who the user is in a chat. Several, one default, and a per-chat choice."""

from __future__ import annotations

import sqlite3

from app.core.store.db import StoreError
from app.core.store.part import StorePart, new_id
from app.core.store.records import Persona


class Personas(StorePart):
    """`store.personas`: who the user is, one default, a choice per chat."""

    def add(self, name: str, description: str = "", make_default: bool = False) -> int:
        """Add a persona; the first one (or `make_default`) becomes the default."""
        with self._tx() as c:
            has_default = c.execute("SELECT 1 FROM personas WHERE is_default = 1").fetchone()
            pid = new_id(
                c.execute(
                    "INSERT INTO personas (name, description) VALUES (?, ?)", (name, description)
                )
            )
            if make_default or not has_default:
                self._make_default(c, pid)
        return pid

    @staticmethod
    def _make_default(c: sqlite3.Connection, persona_id: int) -> None:
        c.execute("UPDATE personas SET is_default = 0 WHERE is_default = 1")
        c.execute("UPDATE personas SET is_default = 1 WHERE id = ?", (persona_id,))

    def list(self) -> list[Persona]:
        rows = self._query(
            "SELECT id, name, description, is_default FROM personas"
            " ORDER BY name COLLATE NOCASE, id"
        )
        return [Persona.of(r) for r in rows]

    def get(self, persona_id: int) -> Persona:
        rows = self._query(
            "SELECT id, name, description, is_default FROM personas WHERE id = ?", (persona_id,)
        )
        if not rows:
            raise StoreError(f"No persona with id {persona_id}")
        return Persona.of(rows[0])

    def update(
        self, persona_id: int, name: str | None = None, description: str | None = None
    ) -> None:
        self.get(persona_id)
        with self._tx() as c:
            c.execute(
                "UPDATE personas SET name = COALESCE(?, name),"
                " description = COALESCE(?, description) WHERE id = ?",
                (name, description, persona_id),
            )

    def delete(self, persona_id: int) -> None:
        """Delete; chats that chose it fall back to the default, and if it was the default,
        the oldest remaining persona takes over."""
        was_default = self.get(persona_id).is_default
        with self._tx() as c:
            c.execute("DELETE FROM personas WHERE id = ?", (persona_id,))
            heir = c.execute("SELECT min(id) FROM personas").fetchone()[0]
            if was_default and heir is not None:
                self._make_default(c, heir)

    def set_default(self, persona_id: int) -> None:
        self.get(persona_id)
        with self._tx() as c:
            self._make_default(c, persona_id)

    def default(self) -> Persona | None:
        rows = self._query(
            "SELECT id, name, description, is_default FROM personas WHERE is_default = 1"
        )
        return Persona.of(rows[0]) if rows else None

    def set_for_chat(self, chat_id: int, persona_id: int | None) -> None:
        """Choose the chat's persona; None means "use the default"."""
        if persona_id is not None:
            self.get(persona_id)
        with self._tx() as c:
            c.execute("UPDATE chats SET persona_id = ? WHERE id = ?", (persona_id, chat_id))

    def of_chat(self, chat_id: int) -> Persona | None:
        """The chat's own persona, else the default one, else None (no personas yet)."""
        rows = self._query(
            "SELECT p.id, p.name, p.description, p.is_default FROM chats c"
            " JOIN personas p ON p.id = c.persona_id WHERE c.id = ?",
            (chat_id,),
        )
        return Persona.of(rows[0]) if rows else self.default()
