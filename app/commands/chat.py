"""`parlor chat import|export|list|search`: move chats in and out of Parlor from scripts."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from app.core.appdata.paths import default_paths
from app.core.cards import CardError, load_card
from app.core.chat_io import FORMATS, ChatIOError, LineProblem, export_chat, import_st_chat
from app.core.store import Store, StoreError
from app.terminal import safe_print


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "chat",
        help="import, export, list and search chats",
        description="Move chats in and out of Parlor's history.",
    )
    actions = parser.add_subparsers(dest="chat_command", metavar="ACTION", required=True)
    imp = actions.add_parser("import", help="import a SillyTavern .jsonl chat")
    imp.add_argument("file", metavar="FILE.jsonl")
    who = imp.add_mutually_exclusive_group(required=True)
    who.add_argument("--card", help="the character's card (PNG, JSON or CharX)")
    who.add_argument("--character", type=int, metavar="ID", help="a character already here")
    imp.add_argument(
        "--create-missing",
        action="store_true",
        help="add the card's character to the library if it is not there yet",
    )
    imp.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="import the rest of the file when some lines are malformed",
    )
    imp.add_argument("--title", help="the chat's title (default: the file name)")
    imp.set_defaults(handler=run_import)
    exp = actions.add_parser("export", help="export a chat; the format follows OUT's extension")
    exp.add_argument("chat_id", type=int, metavar="CHAT_ID")
    exp.add_argument("output", metavar="OUT", help="OUT.jsonl (SillyTavern), OUT.md or OUT.txt")
    exp.add_argument("--format", choices=FORMATS, help="override the extension")
    exp.set_defaults(handler=run_export)
    lst = actions.add_parser("list", help="list chats, most recently used first")
    lst.add_argument("--trash", action="store_true", help="list the chats in the trash")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(handler=run_list)
    find = actions.add_parser("search", help="search the text of all chats")
    find.add_argument("text")
    find.add_argument("--json", action="store_true", help="print JSON")
    find.set_defaults(handler=run_search)


def _open() -> Store:
    return Store(default_paths().database)


def _fail(message: Any) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _confirm(question: str) -> bool:
    """Ask only a person at a terminal; scripts get "no" and a hint about the flag."""
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def run_import(args: argparse.Namespace) -> int:
    if not Path(args.file).is_file():  # before a character is added for nothing
        return _fail(f"{args.file}: no such file")
    try:
        store = _open()
    except StoreError as exc:
        return _fail(exc)
    try:
        character = _character_for(store, args)
        if character is None:
            return 1

        def accept(problems: list[LineProblem]) -> bool:
            for problem in problems:
                print(f"{args.file}, {problem}", file=sys.stderr)
            if args.skip_bad_lines:
                return True
            if _confirm(f"{len(problems)} line(s) cannot be read. Import the rest?"):
                return True
            print("hint: --skip-bad-lines imports the rest", file=sys.stderr)
            return False

        result = import_st_chat(store, args.file, character, title=args.title, accept=accept)
    except (ChatIOError, StoreError, CardError) as exc:
        return _fail(exc)
    finally:
        store.close()
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Imported {result.messages} messages as chat {result.chat_id}")
    return 0


def _character_for(store: Store, args: argparse.Namespace) -> int | None:
    """The library's character for this import; None (after saying why) if there is none."""
    if args.character is not None:
        store.characters.card(args.character)  # raises StoreError naming the id
        return args.character
    card = load_card(args.card)
    name = card.data.get("name") or "Unnamed"
    matches = store.characters.find(name)
    same = [r.id for r in matches if json.loads(r.card_json) == card.data]
    if same or matches:
        return (same or [matches[0].id])[0]
    if args.create_missing or _confirm(f"{name} is not in the library. Add the card?"):
        character = store.characters.add(card.data, card.avatar)
        print(f"Added {name} to the library (character {character})", file=sys.stderr)
        return character
    _fail(f"{name} (from {args.card}) is not in the library; --create-missing adds the card")
    return None


def run_export(args: argparse.Namespace) -> int:
    try:
        store = _open()
    except StoreError as exc:
        return _fail(exc)
    try:
        store.chats.info(args.chat_id)
        fmt = export_chat(store, args.chat_id, args.output, args.format)
    except (ChatIOError, StoreError) as exc:
        return _fail(exc)
    finally:
        store.close()
    print(f"Wrote chat {args.chat_id} to {args.output} ({fmt})")
    return 0


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M")


def run_list(args: argparse.Namespace) -> int:
    try:
        store = _open()
        rows = store.chats.trash() if args.trash else store.chats.all()
        store.close()
    except StoreError as exc:
        return _fail(exc)
    keys = ("id", "title", "character_id", "character_name", "message_count", "last_used_at")
    if args.json:
        safe_print(
            json.dumps(
                [{k: getattr(r, k) for k in keys} for r in rows], ensure_ascii=False, indent=2
            )
        )
        return 0
    for r in rows:  # names and titles come from files: escaped for the terminal
        safe_print(
            f"{r.id:>5}  {_when(r.last_used_at)}  {r.character_name}: "
            f"{r.title}  ({r.message_count} messages)"
        )
    if not rows:
        print("No chats in the trash." if args.trash else "No chats yet.", file=sys.stderr)
    return 0


def run_search(args: argparse.Namespace) -> int:
    try:
        store = _open()
        hits = store.chats.search(args.text)
        store.close()
    except StoreError as exc:
        return _fail(exc)
    if args.json:
        safe_print(json.dumps([hit.__dict__ for hit in hits], ensure_ascii=False, indent=2))
        return 0
    for hit in hits:
        safe_print(f"{hit.chat_id:>5}  {hit.character_name}: {hit.chat_title}  {hit.snippet}")
    return 0
