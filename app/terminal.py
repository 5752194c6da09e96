"""Printing text from cards and chats to a terminal without handing it control.

A card name or chat line can hold escape sequences: OSC 52 writes the clipboard, OSC 0 sets
the window title, 0x9b is a one-byte CSI, and bidirectional overrides make text read other
than it is. Everything a command prints from a file goes through `escape_controls`; newline
and tab stay, as they lay text out and do nothing else.
"""

from __future__ import annotations

import re
import sys

# C0 controls but newline and tab, DEL, C1 controls, and the bidi overrides and isolates.
_UNSAFE = re.compile("[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]")


def escape_controls(text: str) -> str:
    """`text` with terminal control characters written as `\\uXXXX` (valid in JSON too)."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def safe_print(text: str, stream=None) -> None:
    """Print `text` escaped; a console that cannot show a character gets it escaped too."""
    text = escape_controls(text)
    try:
        print(text, file=stream)
    except UnicodeEncodeError:
        encoding = (stream or sys.stdout).encoding or "ascii"
        print(text.encode(encoding, "backslashreplace").decode(encoding), file=stream)
