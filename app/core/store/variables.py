"""SillyTavern's variables in the database: a chat's in its `chat_metadata.variables` (so a
chat's export and import carry them, as in SillyTavern), the global ones in their own table
(SillyTavern keeps them in its settings, `extension_settings.variables.global`).

A prompt reads them into `app.core.prompt.macros.Variables`, works on that copy, and the
chat saves it back (`save`) once the prompt is sent, so `{{setvar}}` takes effect when the
text holding it is prompted and survives a restart.
"""

from __future__ import annotations

import json
from typing import Any

from app.core.store.store import Store
from app.core.store.world_state import WorldInfoStore

_KEY = "variables"


class VariableStore:
    """Chat and global variables over one `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def chat(self, chat_id: int) -> dict[str, Any]:
        values = WorldInfoStore(self.store).chat_metadata(chat_id).get(_KEY)
        return dict(values) if isinstance(values, dict) else {}

    def save_chat(self, chat_id: int, values: dict[str, Any]) -> None:
        WorldInfoStore(self.store).update_chat_metadata(chat_id, {_KEY: dict(values)})

    def global_(self) -> dict[str, Any]:
        rows = self.store._query("SELECT name, value FROM global_variables ORDER BY name")
        out: dict[str, Any] = {}
        for row in rows:
            try:
                out[row["name"]] = json.loads(row["value"])
            except ValueError:  # written by hand: the text as it is
                out[row["name"]] = row["value"]
        return out

    def save_global(self, values: dict[str, Any]) -> None:
        """Replace the global variables with `values`."""
        with self.store._tx() as conn:
            conn.execute("DELETE FROM global_variables")
            conn.executemany(
                "INSERT INTO global_variables (name, value) VALUES (?, ?)",
                [(str(k), json.dumps(v, ensure_ascii=False)) for k, v in values.items()],
            )
