"""Roleplay text to safe HTML for the chat view.

Everything is escaped first: text from cards and models is never trusted markup. Only then
are the conventions roleplayers use turned into formatting, line by line: the blocks here
(fenced code, headings, bulleted and numbered lists, nested by indentation, block quotes,
horizontal rules) and the spans in `display_spans` (*actions*, "speech", __thoughts__,
**bold**, `code`). The result contains no attribute that could name a URL, so nothing in it
can load a remote resource.

Chat text is untrusted too, so formatting takes time linear in its length: every line is
looked at once, and what is open (a list per indentation level, a quote, a code block) is a
stack closed as the lines go. Qt lays out one long unbroken word in quadratic time, so a long
run of non-space characters gets invisible break opportunities, and a very long message is
shown cut, with a note; the stored text is untouched.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from app.core.chat.display_spans import CODE_SLOT
from app.core.chat.display_spans import inline as _inline

__all__ = ["DEFAULT_COLORS", "MAX_SHOWN", "WORD_RUN", "to_html"]

# Longest run of non-space characters laid out without a break opportunity (U+200B).
WORD_RUN = 64
# Characters of one message shown in its bubble; the rest is named in a note.
MAX_SHOWN = 100_000
# readable on light and dark bubbles; "thought" is __text__ (SillyTavern's underline colour)
DEFAULT_COLORS = {"action": "#8a8f98", "speech": "#c77d2e", "thought": "#3d9c88"}
MAX_DEPTH = 8  # lists nested deeper than this continue the deepest one
_LONG_RUN = re.compile(rf"\S{{{WORD_RUN}}}(?=\S)")
_RULE = re.compile(r"-{3,}|\*{3,}|_{3,}")  # a horizontal rule on a line of its own
_HEADING = re.compile(r"(#{1,6}) +(.*)")
_BULLET = re.compile(r"[-*+] +(.*)")
_NUMBER = re.compile(r"(\d{1,9})[.)] +(.*)")
_QUOTE_MARK = "&gt;"
_QUOTE_OPEN = '<span style="background-color:transparent">'


def to_html(text: str, colors: dict[str, str] | None = None) -> str:
    """Escape `text` and render roleplay formatting; safe to hand to a QTextDocument."""
    shown, note = _bounded(text)
    blocks = _Blocks({**DEFAULT_COLORS, **(colors or {})})
    for raw in html.escape(shown, quote=True).splitlines():
        blocks.line(raw)
    blocks.close_all()
    if note:
        blocks.out.append(f"<br><i>{html.escape(note)}</i>")
    html_text = "".join(blocks.out)
    return html_text[:-4] if html_text.endswith("<br>") else html_text


def _bounded(text: str) -> tuple[str, str]:
    """What the bubble lays out: at most MAX_SHOWN characters, long words breakable."""
    note = ""
    if len(text) > MAX_SHOWN:
        note = (
            f"… {len(text) - MAX_SHOWN:,} more characters are not shown here; "
            "Copy or Edit has the whole message."
        )
        text = text[:MAX_SHOWN]
    # NUL would be read as a code slot; Qt shows nothing for it anyway.
    text = text.replace(CODE_SLOT, "\ufffd")
    return _LONG_RUN.sub("\\g<0>\u200b", text), note


@dataclass
class _Blocks:
    """The open blocks while the lines go by: lists (one per indentation), a quote, code."""

    colors: dict[str, str]
    out: list[str] = field(default_factory=list)
    lists: list[tuple[int, str]] = field(default_factory=list)  # (indent, "ul" | "ol")
    quote: list[str] = field(default_factory=list)  # the open quote's lines
    in_code: bool = False

    def line(self, raw: str) -> None:
        stripped = raw.lstrip()
        if stripped.startswith("```"):  # a fenced code block: shown as written
            if not self.in_code:
                self.close_all()
                self._block_starts()
            self.out.append("</pre>" if self.in_code else "<pre>")
            self.in_code = not self.in_code
        elif self.in_code:
            self.out.append(raw + "\n")
        elif stripped.startswith(_QUOTE_MARK):
            self._close_lists()
            self.quote.append(stripped[len(_QUOTE_MARK) :].lstrip(" "))
        else:
            self._close_quote()
            self._block(raw, stripped)

    def _block(self, raw: str, stripped: str) -> None:
        if _RULE.fullmatch(stripped):
            self._close_lists()
            self._block_starts()
            self.out.append("<hr>")
            return
        if self._item(len(raw) - len(stripped), stripped):
            return
        self._close_lists()
        heading = _HEADING.fullmatch(stripped)
        if heading:
            self._block_starts()
            level = len(heading.group(1))
            self.out.append(f"<h{level}>{_inline(heading.group(2), self.colors)}</h{level}>")
        else:
            self.out.append(_inline(raw, self.colors) + "<br>")

    def _item(self, indent: int, stripped: str) -> bool:
        """A list item, in the list its indentation belongs to (opened if need be)."""
        number = _NUMBER.fullmatch(stripped)
        bullet = None if number else _BULLET.fullmatch(stripped)
        if bullet is not None and stripped.startswith("* *"):
            bullet = None  # "* *waves*": an action after a stray asterisk, not a list
        if number is None and bullet is None:
            return False
        kind = "ol" if number else "ul"
        if len(self.lists) >= MAX_DEPTH:  # deeper still: the deepest list (Qt lays out
            indent = min(indent, self.lists[-1][0])  # each level's indent again)
        while self.lists and self.lists[-1][0] > indent:
            self.out.append(f"</{self.lists.pop()[1]}>")
        if self.lists and self.lists[-1][0] == indent and self.lists[-1][1] != kind:
            self.out.append(f"</{self.lists.pop()[1]}>")
        if not self.lists or self.lists[-1][0] < indent:
            self._block_starts()
            start = int(number.group(1)) if number else 1
            self.out.append(f'<ol start="{start}">' if kind == "ol" and start != 1 else f"<{kind}>")
            self.lists.append((indent, kind))
        body = number.group(2) if number else bullet.group(1)  # type: ignore[union-attr]
        self.out.append(f"<li>{_inline(body, self.colors)}</li>")
        return True

    def _close_lists(self) -> None:
        while self.lists:
            self.out.append(f"</{self.lists.pop()[1]}>")

    def _block_starts(self) -> None:
        """A block starts on a line of its own with its own margin: the line break that
        ended the text before it, and one blank line, would only add empty space."""
        for _ in range(2):
            if not (self.out and self.out[-1].endswith("<br>")):
                return
            self.out[-1] = self.out[-1][:-4]
            if not self.out[-1]:
                self.out.pop()

    def _close_quote(self) -> None:
        if self.quote:
            self._block_starts()
            lines = "<br>".join(_inline(q, self.colors) for q in self.quote)
            # Qt paints a block's background under its first run of text twice over
            # unless the text says it has none of its own
            self.out.append(f"<blockquote>{_QUOTE_OPEN}{lines}</span></blockquote>")
            self.quote = []

    def close_all(self) -> None:
        self._close_lists()
        self._close_quote()
        if self.in_code:
            self.out.append("</pre>")
            self.in_code = False
