"""Opening the database and migrating its schema.

One writer connection per process (docs/ARCHITECTURE.md, "Decisions": one owner per
single-threaded resource).
WAL lets readers run while a reply is being saved; foreign keys keep the tree whole.
Each migration runs in one transaction and bumps PRAGMA user_version, so a crash mid-way
leaves the previous version intact.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from app.core.store.backup import BackupError, snapshot

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE characters (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        card_json TEXT NOT NULL,
        avatar BLOB,
        builtin_key TEXT UNIQUE,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        deleted_at REAL
    );
    CREATE TABLE personas (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        is_default INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE chats (
        id INTEGER PRIMARY KEY,
        character_id INTEGER NOT NULL REFERENCES characters(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        persona_id INTEGER REFERENCES personas(id) ON DELETE SET NULL,
        active_leaf_id INTEGER,
        draft TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        last_used_at REAL NOT NULL,
        deleted_at REAL
    );
    CREATE INDEX chats_by_character ON chats(character_id, last_used_at);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
        text TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'complete'
            CHECK (status IN ('complete', 'streaming', 'stopped', 'interrupted', 'error')),
        active_child_id INTEGER,
        gen_info TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX messages_by_parent ON messages(chat_id, parent_id);
    CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', content_rowid='id');
    CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    CREATE TRIGGER messages_au AFTER UPDATE OF text ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
    END;
    """,
    # 2: unknown fields from imported files (SillyTavern) kept as JSON; one default persona;
    # a library-wide "sorted by last use" index.
    """
    ALTER TABLE messages ADD COLUMN extra TEXT;
    ALTER TABLE chats ADD COLUMN extra TEXT;
    CREATE INDEX chats_by_last_use ON chats(last_used_at);
    CREATE UNIQUE INDEX personas_one_default ON personas(is_default) WHERE is_default = 1;
    """,
    # 3: a card's top-level keys besides spec, spec_version and data, kept for export.
    """
    ALTER TABLE characters ADD COLUMN card_extra TEXT;
    """,
    # 4: world info: sticky/cooldown state after a message (each branch its own timeline),
    # and the library of world-info books, global or linked to characters (world_state.py).
    """
    CREATE TABLE world_info_timed (
        message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        state TEXT NOT NULL
    );
    CREATE TABLE world_books (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        book_json TEXT NOT NULL,
        is_global INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL
    );
    CREATE TABLE world_book_characters (
        book_id INTEGER NOT NULL REFERENCES world_books(id) ON DELETE CASCADE,
        character_id INTEGER NOT NULL REFERENCES characters(id) ON DELETE CASCADE,
        PRIMARY KEY (book_id, character_id)
    );
    """,
    # 5: group chats (store/groups.py): groups and their ordered members; a chat may belong to
    # a group (its character_id is then the group's "host", a member, kept valid by the
    # triggers so deleting one member never takes the group's chats with it); a message
    # records which character spoke it. Existing chats and messages are left as they are.
    """
    CREATE TABLE groups (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        avatar BLOB,
        settings TEXT NOT NULL DEFAULT '{}',
        extra TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        deleted_at REAL
    );
    CREATE TABLE group_members (
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        character_id INTEGER NOT NULL REFERENCES characters(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        muted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (group_id, character_id)
    );
    ALTER TABLE chats ADD COLUMN group_id INTEGER REFERENCES groups(id) ON DELETE CASCADE;
    ALTER TABLE messages ADD COLUMN speaker_id INTEGER
        REFERENCES characters(id) ON DELETE SET NULL;
    CREATE INDEX chats_by_group ON chats(group_id, last_used_at);
    CREATE TRIGGER group_chats_rehost_on_delete BEFORE DELETE ON characters BEGIN
        UPDATE chats SET character_id = (
            SELECT gm.character_id FROM group_members gm WHERE gm.group_id = chats.group_id
            AND gm.character_id != old.id ORDER BY gm.position LIMIT 1)
        WHERE character_id = old.id AND group_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM group_members gm WHERE gm.group_id = chats.group_id
            AND gm.character_id != old.id);
    END;
    CREATE TRIGGER group_chats_rehost_on_trash AFTER UPDATE OF deleted_at ON characters
    WHEN new.deleted_at IS NOT NULL BEGIN
        UPDATE chats SET character_id = (
            SELECT gm.character_id FROM group_members gm JOIN characters ch
            ON ch.id = gm.character_id WHERE gm.group_id = chats.group_id
            AND ch.deleted_at IS NULL ORDER BY gm.position LIMIT 1)
        WHERE character_id = new.id AND group_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM group_members gm JOIN characters ch ON ch.id = gm.character_id
            WHERE gm.group_id = chats.group_id AND ch.deleted_at IS NULL);
    END;
    """,
    # 6: SillyTavern's global variables ({{setglobalvar}}, store/variables.py), each value
    # JSON; a chat's own variables are in its chat_metadata.
    """
    CREATE TABLE global_variables (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 7: deleting a long branch (purge.py): the messages a delete hid, each its own parent,
    # removed a batch at a time; and an index on parent_id alone, which the cascade of
    # `parent_id` needs (without it, each deleted message scans the whole table).
    """
    CREATE INDEX messages_by_parent_id ON messages(parent_id);
    CREATE TABLE message_purges (
        message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE
    );
    """,
]


class StoreError(Exception):
    """The database cannot be opened or written; the message says which file and why."""


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(f"the database was written by a newer Parlor (schema {version})")
    for number in range(version + 1, len(MIGRATIONS) + 1):
        script = MIGRATIONS[number - 1]
        # executescript commits first, so wrap the whole step in one explicit transaction.
        try:
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at `path`.

    The first open is read-write: a hot rollback journal left by a kill mid-write can only
    be rolled back by a connection that may write, and a read-only probe would fail on it
    at every start. The snapshot before a migration is taken after that recovery."""
    conn = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)
        conn.row_factory = sqlite3.Row
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # rolls a hot journal back
        if 0 < version < len(MIGRATIONS):
            snapshot(path, "before-migration")  # a migration that goes wrong can be undone
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn)
    except (sqlite3.Error, OSError, BackupError) as exc:
        if conn is not None:
            conn.close()
        raise StoreError(f"Cannot open the chat database {path}: {_reason(exc)}") from exc
    return conn


def _reason(exc: BaseException) -> str:
    """What the user can act on, for the failures a data folder can have."""
    text = str(exc)
    if isinstance(exc, sqlite3.Error) and "readonly" in text:
        return f"{text} (the folder or the file may not be writable)"
    if "disk is full" in text or getattr(exc, "errno", None) == errno.ENOSPC:
        return f"{text} (the disk is full: free some space and start Parlor again)"
    return text
