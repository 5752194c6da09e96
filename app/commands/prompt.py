"""`parlor prompt`: print the exact text the model would receive for the next reply."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.core.prompt import (
    PRESET_NAMES,
    ChatTemplate,
    Message,
    PromptInput,
    build_prompt,
    estimate_tokens,
    preset,
    template_from_gguf,
)
from app.core.prompt.instruct import instruct_template, shipped_instruct
from app.core.prompt.macros import MacroInput, Variables
from app.core.prompt.st_chat import read_st_chat
from app.core.prompt.worldinfo import AuthorsNote, Book, Source
from app.core.prompt.worldinfo.in_prompt import LoreInput
from app.terminal import escape_controls, safe_print


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prompt",
        help="print the prompt the model would receive for the next reply",
        description="Print the exact text the model would receive for the next reply: the "
        "card, persona, lore and chat, in the model's chat template, within the "
        "context. Warnings go to stderr.",
    )
    parser.add_argument(
        "--card",
        required=True,
        action="append",
        help="character card (PNG, JSON or CharX); repeat it for a group, whose "
        "next speaker gets the prompt",
    )
    parser.add_argument(
        "--speaker",
        metavar="NAME",
        help="with several cards: who speaks next (default: the one "
        "SillyTavern's natural order picks, from the chat's seed)",
    )
    parser.add_argument(
        "--group-mode",
        choices=("swap", "join"),
        default="swap",
        help="with several cards: only the speaker's card (swap, the default) "
        "or every member's fields (join)",
    )
    parser.add_argument(
        "--chat",
        metavar="FILE.jsonl",
        help="SillyTavern chat; without it, the chat holds the card's greeting",
    )
    parser.add_argument(
        "--model",
        dest="gguf",
        metavar="GGUF",
        help="use this model's tokenizer and, without --template, its chat template",
    )
    parser.add_argument(
        "--template",
        choices=(*PRESET_NAMES, *shipped_instruct()),
        metavar="NAME",
        help="a built-in format or one of SillyTavern's instruct presets "
        f"({', '.join((*PRESET_NAMES, *shipped_instruct()))}); it "
        "overrides the model's template (default: the model's, else "
        "chatml)",
    )
    parser.add_argument("--user", help="the user's name (default: the chat's, else User)")
    parser.add_argument("--persona", default="", help="the user's persona description")
    parser.add_argument(
        "--ctx", type=int, default=4096, metavar="N", help="context size in tokens (default: 4096)"
    )
    parser.add_argument(
        "--reply-tokens",
        type=int,
        default=512,
        metavar="N",
        help="tokens kept free for the reply (default: 512)",
    )
    parser.add_argument(
        "--world",
        action="append",
        default=[],
        metavar="FILE",
        help="a global world-info book (SillyTavern JSON or lorebook_v3), "
        "used with the card's own; may be repeated",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON: prompt, tokens, parts, dropped_messages, lore "
        "(fired entries in prompt order), lore_trace (every entry, fired "
        "or not, and why), unknown_macros (left as written), banned_words",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        cards = [load_card_data(path) for path in args.card]
        card = cards[0]
        chat = read_st_chat(args.chat) if args.chat else None
        books = [_world_book(path) for path in args.world]
        template, count, notes = _template_and_counter(args)
    except Exception as exc:  # noqa: BLE001 - files from anywhere: report, never a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    user = args.user or (chat and chat.user_name) or "User"
    if chat is not None:  # names come from --user and the card; other group members keep theirs
        char = card.get("nickname") or card.get("name")
        history = [
            Message(m.role, m.text, m.name if m.role == "assistant" and m.name != char else None)
            for m in chat.messages
        ]
    else:
        greeting = card.get("first_mes")
        history = [Message("assistant", greeting)] if isinstance(greeting, str) and greeting else []
    lore = _chat_lore(chat.metadata if chat else {}, books, args.chat or args.card[0])
    speaker = None
    if len(cards) > 1:  # a group: the next speaker's prompt (core/chat/groups/from_cards.py)
        from app.core.chat.groups.from_cards import GroupRequest, group_prompt

        request = GroupRequest(
            args.speaker, args.group_mode, args.persona, args.ctx, args.reply_tokens
        )
        try:
            built, speaker = group_prompt(request, cards, chat, lore, template, count, str(user))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"speaker: {speaker}", file=sys.stderr)
    else:
        macros = _chat_macros(chat.metadata if chat else {}, args.model)
        built = build_prompt(
            PromptInput(card, str(user), args.persona, history, lore=lore, macros=macros),
            template,
            count,
            args.ctx,
            args.reply_tokens,
        )
    for warning in [*notes, *built.warnings]:
        safe_print(f"warning: {warning}", sys.stderr)
    if not args.json:
        # Exact when piped; on a terminal, a card's escape sequences are shown, not obeyed.
        sys.stdout.write(escape_controls(built.text) if sys.stdout.isatty() else built.text)
        return 0
    json.dump(
        {
            "prompt": built.text,
            "tokens": built.tokens,
            "parts": [{"name": p.name, "tokens": p.tokens, "text": p.text} for p in built.parts],
            "dropped_messages": built.dropped_messages,
            "lore": built.lore,
            "lore_trace": [t.as_json() for t in built.lore_trace],
            "stop": built.stop,
            "warnings": built.warnings,
            "unknown_macros": built.unknown_macros,  # left as written
            "banned_words": built.banned_words,  # {{banned "..."}}: taken out of the prompt
            **({"speaker": speaker} if speaker else {}),
        },
        sys.stdout,
        ensure_ascii=False,
        indent=2,
    )
    sys.stdout.write("\n")
    return 0


def _world_book(path: str) -> Book:
    from app.core.cards import load_lorebook

    book = load_lorebook(path)
    return Book(str(book.get("name") or Path(path).stem), book, Source.GLOBAL)


def _chat_lore(header: dict[str, Any], books: list[Book], source: str) -> LoreInput:
    """The chat's author's note and scenario from SillyTavern's `chat_metadata`; the seed
    from its `integrity` id (else the file name), so a chat rolls the same every time."""
    meta = header.get("chat_metadata") if isinstance(header.get("chat_metadata"), dict) else {}
    scenario = meta.get("scenario")
    return LoreInput(
        books=books,
        seed=str(meta.get("integrity") or Path(source).name),
        timed_state=meta.get("timedWorldInfo"),
        authors_note=AuthorsNote.from_chat_metadata(meta),
        scenario=scenario if isinstance(scenario, str) and scenario else None,
    )


def _chat_macros(header: dict[str, Any], model: str | None) -> MacroInput:
    """The chat file's own variables (SillyTavern's `chat_metadata.variables`; what the
    prompt's {{setvar}}s change is not written back) and the model's name."""
    meta = header.get("chat_metadata") if isinstance(header.get("chat_metadata"), dict) else {}
    variables = meta.get("variables")
    return MacroInput(
        variables=Variables(chat=dict(variables)) if isinstance(variables, dict) else None,
        model=Path(model).name if model else None,
    )


def load_card_data(path: str) -> dict[str, Any]:
    from app.core.cards import load_card

    data = getattr(load_card(path), "data", None)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: no character data in this card")
    return data


def _chosen(name: str) -> ChatTemplate:
    return instruct_template(name) if name in shipped_instruct() else preset(name)


def _template_and_counter(args) -> tuple[ChatTemplate, Callable[[str], int], list[str]]:
    """The template (--template over the model's own) and the counter (the model's
    tokenizer when --model is given)."""
    if not args.gguf:
        return _chosen(args.template or "chatml"), estimate_tokens, []
    if not Path(args.gguf).is_file():
        raise FileNotFoundError(f"{args.gguf}: no such model file")
    chat_template, bos, eos = _header_tokens(args.gguf)
    try:
        from llama_cpp import Llama
    except ImportError:
        note = "llama-cpp-python is not installed, so token counts are estimates."
        template, notes = _model_template(args, chat_template, bos, eos)
        return template, estimate_tokens, [note, *notes]
    from app.core.engine.template_guard import disable_gguf_template_compilation

    disable_gguf_template_compilation()  # the model's template runs in Parlor's sandbox only
    llm = Llama(model_path=args.gguf, vocab_only=True, verbose=False)

    def count(text: str) -> int:
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    template, notes = _model_template(args, chat_template, bos, eos)
    return template, count, notes


def _model_template(
    args, chat_template: str | None, bos: str, eos: str
) -> tuple[ChatTemplate, list[str]]:
    if args.template:
        return _chosen(args.template), []
    template = template_from_gguf(chat_template, bos, eos)
    if chat_template and chat_template.strip():
        return template, []
    return template, [
        f"{args.gguf} has no chat template of its own; the {template.name} "
        "format is a guess (choose one with --template)."
    ]


def _header_tokens(path: str) -> tuple[str | None, str, str]:
    """The chat template and the text of the BOS and EOS tokens, from the GGUF header."""
    from app.core.gguf.header import read_header

    meta = read_header(path).metadata
    tokens = meta.get("tokenizer.ggml.tokens") or []

    def token(key: str) -> str:
        index = meta.get(key)
        ok = isinstance(index, int) and 0 <= index < len(tokens)
        return tokens[index] if ok and isinstance(tokens[index], str) else ""

    template = meta.get("tokenizer.chat_template")
    return (
        template if isinstance(template, str) else None,
        token("tokenizer.ggml.bos_token_id"),
        token("tokenizer.ggml.eos_token_id"),
    )
