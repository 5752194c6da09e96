"""The command line: the GUI by default, subcommands for scripts and power users."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from app import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parlor", description="Character roleplay chat.")
    parser.add_argument("--version", action="version", version=f"Parlor {__version__}")
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="open the window offscreen, chat once, print one JSON line, exit",
    )
    parser.add_argument("--model", help="GGUF file to load (with --smoke-test or at start)")
    parser.add_argument(
        "--remote", metavar="URL", help="use an OpenAI-compatible server instead of a local model"
    )
    parser.add_argument("--api-key", help="API key for --remote (or PARLOR_API_KEY)")
    parser.add_argument(
        "--prompt", default="Hello! Who are you?", help="message sent by --smoke-test"
    )
    parser.add_argument("--max-tokens", type=int, default=32, help="reply length for --smoke-test")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"app.commands.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command:
        return args.handler(args)
    if args.smoke_test:
        if not (args.model or args.remote):
            print("error: --smoke-test needs --model PATH or --remote URL", file=sys.stderr)
            return 2
        from app.gui.smoke import run_smoke_test

        return run_smoke_test(args)
    from app.gui.launch import run_gui

    return run_gui(args)
