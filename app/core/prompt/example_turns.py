"""Example dialogue as real turns for a model's own chat template (a GGUF's Jinja).

As SillyTavern's chat completion does (`public/scripts/openai.js`:
`setOpenAIMessageExamples`, `parseExampleIntoIndividual`, `populateDialogueExamples`): each
`<START>` block is a heading ("[Example Chat]", or the example separator when the user set
one) and then the block's lines as user and assistant turns, the speaker's `Name:` taken off;
after the examples that are kept, "[Start a new Chat]" opens the real chat. A block without
a speaker line is sent as it is, as a system turn, rather than lost.

Blocks are fitted one by one like the text examples (`fit.Layout.example_turns`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from app.core.prompt.instruct import split_example
from app.core.prompt.presets import Message
from app.core.prompt.prompt_macros import EXAMPLE_CHAT, NEW_CHAT

_START = re.compile(r"<START>", re.I)


def example_turns(
    texts: list[str], expand: Callable[[str], str], separator: str, user: str, char: str
) -> tuple[list[str], list[list[Message]]]:
    """The blocks of `texts` (the card's examples and lore's) as (a text per block, for the
    first estimate of its size; the block's messages)."""
    heading = (
        separator.strip()
        if separator.strip() and separator.strip().upper() != "<START>"
        else EXAMPLE_CHAT
    )
    estimates, blocks = [], []
    for text in texts:
        if not text.strip():
            continue
        for block in _blocks(expand(text).replace("\r", "")):
            messages = _turns(block, user, char) or [Message("system", block)]
            blocks.append([Message("system", heading), *messages])
            estimates.append("\n".join(m.text for m in blocks[-1]))
    return estimates, blocks


def chat_start() -> Message:
    """What follows the kept examples."""
    return Message("system", NEW_CHAT)


def _blocks(raw: str) -> list[str]:
    if not _START.match(raw.lstrip()):
        raw = "<START>\n" + raw
    return [b.strip() for b in _START.split(raw)[1:] if b.strip()]


def _turns(block: str, user: str, char: str) -> list[Message]:
    turns = split_example("{Example Dialogue:}\n" + block, user, char)
    return [Message("user" if who == "user" else "assistant", text) for who, text in turns if text]
