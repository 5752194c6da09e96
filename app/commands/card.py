"""`parlor card show FILE [--json]` and `parlor card convert IN OUT`: cards from scripts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.core.cards import (
    Card,
    CardError,
    load_card,
    save_card,
    sniff_image,
    to_v3_json,
)
from app.core.cards.png import image_size
from app.terminal import safe_print

_SECTIONS = (
    ("Description", "description"),
    ("Personality", "personality"),
    ("Scenario", "scenario"),
    ("First message", "first_mes"),
    ("Example messages", "mes_example"),
    ("System prompt", "system_prompt"),
    ("Post-history instructions", "post_history_instructions"),
    ("Creator notes", "creator_notes"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "card",
        help="show and convert character cards",
        description="Read, show and convert character cards (PNG, JSON, CharX; V1, V2, V3).",
    )
    actions = parser.add_subparsers(dest="card_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print a card, normalized to V3")
    show.add_argument("file", help="a PNG, JSON or CharX card")
    show.add_argument(
        "--json", action="store_true", help="print the V3 JSON (spec, spec_version, data)"
    )
    show.set_defaults(handler=run_show)
    convert = actions.add_parser(
        "convert", help="convert a card; the format follows OUT's extension (.png, .json, .charx)"
    )
    convert.add_argument("input", metavar="IN")
    convert.add_argument("output", metavar="OUT")
    convert.add_argument("--v2", action="store_true", help="write V2 JSON instead of V3")
    convert.add_argument("--image", metavar="PNG", help="use this PNG as the card's image")
    convert.set_defaults(handler=run_convert)


def run_show(args: argparse.Namespace) -> int:
    try:
        card = load_card(args.file)
    except CardError as exc:
        return _fail(exc)
    _warn(card.warnings)
    if args.json:
        v3 = to_v3_json(card)
        shown = {key: v3[key] for key in ("spec", "spec_version", "data")}
        _out(json.dumps(shown, ensure_ascii=False, indent=2))  # escaped again: C1 and bidi
    else:
        _out(describe(card))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    try:
        card = load_card(args.input)
        image = Path(args.image).read_bytes() if args.image else None
        warnings = save_card(card, args.output, avatar_png=image, v2=args.v2)
    except CardError as exc:
        return _fail(exc)
    except OSError as exc:
        return _fail(f"{args.image}: could not be read ({exc.strerror or exc})")
    _warn(card.warnings + warnings)
    return 0


def describe(card: Card) -> str:
    """A readable summary: the short fields, then every text field in full."""
    data = card.data
    name = card.name + (f" (nickname: {card.nickname})" if card.nickname else "")
    spec = card.spec + (f" {card.spec_version}" if card.spec_version else "")
    book = card.character_book
    lines = [
        f"Name:       {name}",
        f"Read from:  {spec}",
        f"Creator:    {card.creator}",
        f"Version:    {card.character_version}",
        f"Tags:       {', '.join(card.tags)}",
        f"Avatar:     {_avatar(card)}",
        f"Greetings:  first message, {len(card.alternate_greetings)} alternate, "
        f"{len(card.group_only_greetings)} group-only",
        f"Lorebook:   {_count(len(book['entries']), 'entry', 'entries') if book else 'none'}",
    ]
    for title, key in _SECTIONS:
        value = data.get(key)
        if value:
            lines += ["", f"{title}:", *("  " + line for line in value.splitlines())]
    for i, greeting in enumerate(card.alternate_greetings, 1):
        lines += ["", f"Alternate greeting {i}:", *("  " + ln for ln in greeting.splitlines())]
    return "\n".join(lines)


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _avatar(card: Card) -> str:
    if not card.avatar:
        return "none"
    kind = (sniff_image(card.avatar) or "unknown").upper()
    size = image_size(card.avatar)
    dims = f" {size[0]}x{size[1]}" if size else ""
    return f"{kind}{dims}, {len(card.avatar) / 1024:.1f} KB"


def _out(text: str, stream=None) -> None:
    safe_print(text, stream)  # a card's escape sequences never reach the terminal


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        _out(f"warning: {warning}", sys.stderr)


def _fail(error: object) -> int:
    _out(f"error: {error}", sys.stderr)
    return 1
