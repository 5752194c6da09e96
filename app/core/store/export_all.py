""" "Export everything" to one zip, and import of that zip into an empty data folder.

The zip holds, for people and other apps: `cards/*.png` (Character Card V2+V3 PNGs),
`chats/<character>/*.jsonl` (SillyTavern chats: the active path, swipes kept), `personas.json`
and `settings.json` (without secrets). For Parlor it holds `parlor/library.json`: every row of
every table (the full message tree, drafts, gen info), with avatars in `parlor/avatars/`.
Import reads only the library, so nothing is lost in the round trip; it keeps row ids, so
parents, active leaves and remembered swipes still point where they did.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app import __version__
from app.core.appdata.paths import Paths
from app.core.appdata.secrets import looks_secret_key, redact
from app.core.appdata.settings import Settings
from app.core.cards import card_from_json, card_to_png_bytes, placeholder_png
from app.core.cards.charx import unsafe_name
from app.core.store import Store
from app.core.store.db import MIGRATIONS
from app.core.store.import_rows import RowError, check_tables, forget_stale_children
from app.core.store.purge import HIDDEN

FORMAT = "parlor-export"
FORMAT_VERSION = 1
LIBRARY = "parlor/library.json"
# parents before children
TABLES = ("characters", "personas", "groups", "group_members", "chats", "messages")
AVATAR_FOLDERS = {"characters": "avatars", "groups": "group-avatars"}
MAX_LIBRARY_BYTES = 2 << 30
MAX_TOTAL_BYTES = 16 << 30
log = logging.getLogger(__name__)


class ExportError(Exception):
    """The export or import failed; the message names the file and the problem."""


# --- export ------------------------------------------------------------------------------


def read_tables(db_path: Path) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    """Every row of every table, read in one transaction so the set is consistent; not the
    messages a delete hid and the purge has not removed yet (purge.py), which an import
    would keep for good as rows of no chat's tree."""
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("BEGIN")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {t: [dict(r) for r in conn.execute(_select(t))] for t in TABLES}
        conn.execute("COMMIT")
    finally:
        conn.close()
    forget_stale_children(tables["messages"])
    return version, tables


def _select(table: str) -> str:
    if table != "messages":
        return f"SELECT * FROM {table} ORDER BY rowid"
    return (
        f"WITH RECURSIVE {HIDDEN} SELECT * FROM messages m"
        " WHERE m.id NOT IN (SELECT id FROM hidden) ORDER BY rowid"
    )


def clean_settings(raw: dict[str, Any], secret_values: Iterable[str] = ()) -> dict[str, Any]:
    """Settings as exported: keys named like secrets dropped, secret-shaped values masked."""
    secret_values = tuple(secret_values)

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not looks_secret_key(str(k))}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return redact(value, secret_values) if isinstance(value, str) else value

    cleaned: dict[str, Any] = clean(raw)
    return cleaned


def _safe(text: str, limit: int = 40) -> str:
    return re.sub(r"[^\w\- ]+", "_", text, flags=re.UNICODE).strip()[:limit] or "untitled"


def sillytavern_jsonl(
    chat: dict[str, Any], messages: list[dict[str, Any]], user_name: str, char_name: str
) -> str:
    """The chat's active path as a SillyTavern .jsonl, each position's swipes kept.

    Stand-in until app/core/chat_io (the full ST reader/writer) lands; switch this call then.
    """
    by_id = {m["id"]: m for m in messages}
    children: dict[int | None, list[int]] = {}
    for m in messages:
        children.setdefault(m["parent_id"], []).append(m["id"])
    path, node = [], by_id.get(chat["active_leaf_id"])
    while node is not None:
        path.append(node)
        node = by_id.get(node["parent_id"])
    lines = [
        {
            "user_name": user_name,
            "character_name": char_name,
            "create_date": _st_date(chat["created_at"]),
            "chat_metadata": {},
        }
    ]
    for m in reversed(path):
        siblings = [
            by_id[i] for i in children.get(m["parent_id"], []) if by_id[i]["role"] == m["role"]
        ]
        line = {
            "name": user_name if m["role"] == "user" else char_name,
            "is_user": m["role"] == "user",
            "is_system": m["role"] == "system",
            "send_date": _st_date(m["created_at"]),
            "mes": m["text"],
            "extra": {},
        }
        if len(siblings) > 1:
            line["swipes"] = [s["text"] for s in siblings]
            line["swipe_id"] = [s["id"] for s in siblings].index(m["id"])
        lines.append(line)
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def _st_date(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + "Z"


def _card_png(row: dict[str, Any]) -> bytes:
    card = card_from_json(
        {"spec": "chara_card_v3", "spec_version": "3.0", "data": json.loads(row["card_json"])},
        row["name"],
    )
    avatar = row["avatar"]
    image = bytes(avatar) if avatar and bytes(avatar[:8]) == b"\x89PNG\r\n\x1a\n" else None
    return card_to_png_bytes(card, image or placeholder_png(card))


def _write_people_files(zf: zipfile.ZipFile, tables: dict[str, Any], user_name: str) -> None:
    names = {}
    for row in tables["characters"]:
        if row["deleted_at"] is None:
            names[row["id"]] = f"{row['id']}-{_safe(row['name'])}"
            zf.writestr(f"cards/{names[row['id']]}.png", _card_png(row))
    by_chat: dict[int, list[dict[str, Any]]] = {}
    for msg in tables["messages"]:
        by_chat.setdefault(msg["chat_id"], []).append(msg)
    characters = {row["id"]: row for row in tables["characters"]}
    for chat in tables["chats"]:
        if chat["deleted_at"] is None and chat["character_id"] in names:
            text = sillytavern_jsonl(
                chat,
                by_chat.get(chat["id"], []),
                user_name,
                characters[chat["character_id"]]["name"],
            )
            zf.writestr(
                f"chats/{names[chat['character_id']]}/{chat['id']}-{_safe(chat['title'])}.jsonl",
                text,
            )


def export_everything(paths: Paths, target: Path, secret_values: Iterable[str] = ()) -> Path:
    """Write the zip to `target` (atomically: a failed export leaves no half file)."""
    version, tables = read_tables(paths.database)
    settings_raw = (
        json.loads(paths.settings_file.read_text(encoding="utf-8"))
        if paths.settings_file.exists()
        else {}
    )
    settings_raw = clean_settings(settings_raw, secret_values)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            _write_library(zf, version, tables)
            _write_people_files(zf, tables, settings_raw.get("user_name", "You"))
            zf.writestr(
                "personas.json",
                json.dumps(
                    {
                        "personas": tables["personas"],
                        "current": {
                            "name": settings_raw.get("user_name", ""),
                            "description": settings_raw.get("persona", ""),
                        },
                    },
                    indent=2,
                ),
            )
            zf.writestr("settings.json", json.dumps(settings_raw, indent=2))
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ExportError(f"Could not write {target}: {exc.strerror or exc}") from None
    return target


def _write_library(zf: zipfile.ZipFile, version: int, tables: dict[str, Any]) -> None:
    rows = {name: [dict(r) for r in rows] for name, rows in tables.items()}
    for table, folder in AVATAR_FOLDERS.items():
        for row in rows.get(table, []):
            if row["avatar"] is not None:
                name = f"parlor/{folder}/{row['id']}.bin"
                zf.writestr(name, bytes(row["avatar"]))
                row["avatar"] = name
    zf.writestr(
        "manifest.json",
        json.dumps(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "app_version": __version__,
                "created_at": time.time(),
                "schema_version": version,
            },
            indent=2,
        ),
    )
    zf.writestr(LIBRARY, json.dumps({"schema_version": version, "tables": rows}))


# --- import ------------------------------------------------------------------------------


def _open_checked(source: Path) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ExportError(f"{source} is not a Parlor export: {exc}") from None
    infos = zf.infolist()
    bad = [i.filename for i in infos if unsafe_name(i.filename)]
    if bad:
        zf.close()
        raise ExportError(f"{source} holds a file that would leave its folder: {bad[0]!r}")
    if sum(i.file_size for i in infos) > MAX_TOTAL_BYTES or LIBRARY not in zf.namelist():
        zf.close()
        raise ExportError(f"{source} is not a Parlor export (no {LIBRARY}, or too large)")
    return zf


def _read_library(zf: zipfile.ZipFile, source: Path) -> dict[str, Any]:
    if zf.getinfo(LIBRARY).file_size > MAX_LIBRARY_BYTES:
        raise ExportError(f"{source}: {LIBRARY} is too large")
    try:
        library = json.loads(zf.read(LIBRARY))
        version, tables = int(library["schema_version"]), library["tables"]
    except (
        ValueError,
        KeyError,
        TypeError,
        RecursionError,
        zipfile.BadZipFile,
        zlib.error,
        OSError,
    ) as exc:
        raise ExportError(f"{source}: {LIBRARY} cannot be read ({exc})") from None
    if version > len(MIGRATIONS):
        raise ExportError(f"{source} was written by a newer Parlor (schema {version})")
    with_avatars = [tables.get(t, []) for t in AVATAR_FOLDERS] if isinstance(tables, dict) else []
    for row in (r for rows in with_avatars if isinstance(rows, list) for r in rows):
        if isinstance(row, dict) and isinstance(row.get("avatar"), str):
            try:
                row["avatar"] = zf.read(row["avatar"])
            except (KeyError, zipfile.BadZipFile, zlib.error, OSError) as exc:
                raise ExportError(
                    f"{source}: the avatar {row['avatar']!r} cannot be read ({exc})"
                ) from None
    try:  # every row checked before any is written
        checked = check_tables(tables)
    except RowError as exc:
        raise ExportError(f"{source} could not be imported: {exc}") from None
    if checked.replaced_surrogates:
        log.warning(
            "%s: %d broken characters (lone surrogates) were replaced with U+FFFD",
            source,
            checked.replaced_surrogates,
        )
    return checked.tables


def _is_empty(conn: sqlite3.Connection) -> bool:
    """Nothing the user made: no own characters, and no chat past its greetings (opening
    the app starts a chat with the built-in character, which must not block an import)."""
    written = conn.execute(
        "SELECT count(*) FROM messages WHERE parent_id IS NOT NULL OR role = 'user'"
    ).fetchone()[0]
    own = conn.execute("SELECT count(*) FROM characters WHERE builtin_key IS NULL").fetchone()[0]
    return bool(written == 0 and own == 0)


def _insert_all(conn: sqlite3.Connection, tables: dict[str, Any]) -> dict[str, int]:
    counts = {}
    conn.execute("DELETE FROM characters")  # only built-ins are left: the import has them
    for table in TABLES:
        columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        count = 0
        for row in tables.get(table, []):
            keys = [k for k in row if k in columns]
            conn.execute(
                f"INSERT INTO {table} ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                [row[k] for k in keys],
            )
            count += 1
        counts[table] = count
    return counts


def import_everything(
    source: Path, paths: Paths, cancel: threading.Event | None = None
) -> dict[str, int]:
    """Load an export into this data folder, which must hold no chats or own characters.

    All rows go in one transaction: a failed import leaves the folder as it was, and so
    does `cancel` set before the commit (the window's Cancel). Returns how many rows of
    each table were imported.
    """
    with _open_checked(source) as zf:
        tables = _read_library(zf, source)
        settings_raw = _read_settings(zf, source)
    paths.ensure()
    Store(paths.database).close()  # creates and migrates the schema
    conn = sqlite3.connect(paths.database, isolation_level=None, timeout=5)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN IMMEDIATE")
        if not _is_empty(conn):
            conn.execute("ROLLBACK")
            raise ExportError(
                f"{paths.data} already holds chats or characters: import into an empty data folder"
            )
        try:
            counts = _insert_all(conn, tables)
            if cancel is not None and cancel.is_set():
                raise ExportError(f"The import of {source.name} was cancelled; nothing was added.")
            conn.execute("COMMIT")
        except BaseException as exc:  # any failure: nothing of the import stays
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise ExportError(f"{source} could not be imported: {exc}") from None
            raise
    finally:
        conn.close()
    if isinstance(settings_raw, dict):
        _import_settings(settings_raw, paths)
    return counts


def _read_settings(zf: zipfile.ZipFile, source: Path) -> dict[str, Any] | None:
    """The export's settings, or None (with a logged warning) when they cannot be read:
    the library matters, settings can be set again."""
    if "settings.json" not in zf.namelist():
        return None
    try:  # NaN and 1e999 are no settings: refused, and read as null (then the default)
        raw = json.loads(
            zf.read("settings.json"), parse_constant=_no_constant, parse_float=_finite_or_none
        )
    except (ValueError, RecursionError, zipfile.BadZipFile, zlib.error, OSError) as exc:
        log.warning(
            "%s: settings.json cannot be read (%s); settings were not imported", source, exc
        )
        return None
    return raw if isinstance(raw, dict) else None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def _finite_or_none(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None


def _import_settings(raw: dict[str, Any], paths: Paths) -> None:
    tmp = paths.config / ".imported-settings.json"
    tmp.write_text(json.dumps(raw), encoding="utf-8")
    settings = Settings.load(tmp)
    tmp.unlink(missing_ok=True)
    if settings.model_path and not Path(settings.model_path).exists():
        settings.model_path = ""  # a path on the other machine; ask for a model instead
    settings.save(paths.settings_file)
