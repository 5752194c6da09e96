"""`parlor group import|export|list`: SillyTavern groups and their chats, from scripts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.core.appdata.paths import default_paths
from app.core.chat_io import ChatIOError
from app.core.chat_io.st_group import export_st_group, import_st_group
from app.core.store import Store, StoreError
from app.terminal import safe_print


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "group",
        help="import, export and list group chats",
        description="SillyTavern groups and their chats in and out of Parlor.",
    )
    actions = parser.add_subparsers(dest="group_command", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import",
        help="import a SillyTavern group (groups/ID.json) and its chats (from ../group chats/)",
    )
    imp.add_argument("file", metavar="GROUP.json")
    imp.add_argument(
        "--chat",
        action="append",
        metavar="FILE.jsonl",
        help="the group's chat files, if not in ../group chats/ (repeatable)",
    )
    imp.set_defaults(handler=run_import)
    exp = actions.add_parser("export", help="write groups/ID.json and group chats/*.jsonl")
    exp.add_argument("group_id", type=int, metavar="GROUP_ID")
    exp.add_argument("folder", metavar="FOLDER")
    exp.set_defaults(handler=run_export)
    lst = actions.add_parser("list", help="list the groups")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(handler=run_list)


def _fail(message) -> int:
    safe_print(f"error: {message}", sys.stderr)
    return 1


def run_import(args: argparse.Namespace) -> int:
    if not Path(args.file).is_file():
        return _fail(f"{args.file}: no such file")
    try:
        store = Store(default_paths().database)
    except StoreError as exc:
        return _fail(exc)
    try:
        result = import_st_group(store, args.file, args.chat)
    except (ChatIOError, StoreError, ValueError) as exc:
        return _fail(exc)
    finally:
        store.close()
    for warning in result.warnings:
        safe_print(f"warning: {warning}", sys.stderr)  # names come from the files
    safe_print(
        f"group {result.group_id}: {len(result.chat_ids)} chat(s) "
        f"{', '.join(map(str, result.chat_ids))}".rstrip()
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    try:
        store = Store(default_paths().database)
    except StoreError as exc:
        return _fail(exc)
    try:
        files = export_st_group(store, args.group_id, args.folder)
    except (OSError, StoreError) as exc:
        return _fail(exc)
    finally:
        store.close()
    for path in files:
        safe_print(str(path))
    return 0


def run_list(args: argparse.Namespace) -> int:
    try:
        store = Store(default_paths().database)
    except StoreError as exc:
        return _fail(exc)
    try:
        rows = [
            {
                "id": g.id,
                "name": g.name,
                "members": [m.name for m in g.members],
                "muted": [m.name for m in g.members if m.muted],
                "chats": [c.id for c in store.groups.chats(g.id)],
            }
            for g in store.groups.all()
        ]
    finally:
        store.close()
    if args.json:
        safe_print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            safe_print(f"{row['id']}\t{row['name']}\t{', '.join(row['members'])}")
    return 0
