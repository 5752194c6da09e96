"""Roleplay text to safe HTML for the chat view.

Everything is escaped first: text from cards and models is never trusted markup. Only then
are the conventions roleplayers use turned into formatting: *actions* in italics,
"speech" highlighted, **bold**, `code`, block quotes and simple lists. The result contains
no attribute that could name a URL, so nothing in it can load a remote resource.

Chat text is untrusted too, so formatting takes time linear in its length: each kind of span
is found in one pass over the line, with the next possible closing mark looked up in a table
instead of searched for again from every opening mark (the regexes this replaces took 20 s
on 40 KB of `“`). Qt lays out one long unbroken word in quadratic time, so a long run of
non-space characters gets invisible break opportunities, and a very long message is shown
cut, with a note; the stored text is untouched.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

# Longest run of non-space characters laid out without a break opportunity (U+200B).
WORD_RUN = 64
# Characters of one message shown in its bubble; the rest is named in a note.
MAX_SHOWN = 100_000
_LONG_RUN = re.compile(rf"\S{{{WORD_RUN}}}(?=\S)")
_CODE_SLOT = "\x00"  # stands for a code span while the other spans are found
_QUOTE = "&quot;"
_RULE = re.compile(r"-{3,}|\*{3,}|_{3,}")  # a horizontal rule on a line of its own


def to_html(text: str, colors: dict[str, str] | None = None) -> str:
    """Escape `text` and render roleplay formatting; safe to hand to a QTextDocument."""
    colors = colors or {"action": "#8a8f98", "speech": "#c77d2e"}
    shown, note = _bounded(text)
    out: list[str] = []
    in_list = in_code = False
    for raw in html.escape(shown, quote=True).splitlines():
        stripped = raw.lstrip()
        if stripped.startswith("```"):  # a fenced code block: shown as written
            if in_list:
                out.append("</ul>")
                in_list = False
            out.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            out.append(raw + "\n")
            continue
        if _RULE.fullmatch(stripped):
            out.append("<hr>")
            continue
        is_item = stripped.startswith(("- ", "* ")) and not stripped.startswith("* *")
        if is_item != in_list:
            out.append("<ul>" if is_item else "</ul>")
            in_list = is_item
        if is_item:
            out.append(f"<li>{_inline(stripped[2:], colors)}</li>")
        elif stripped.startswith("&gt; "):
            out.append(f"<blockquote>{_inline(stripped[5:], colors)}</blockquote>")
        else:
            out.append(_inline(raw, colors) + "<br>")
    if in_list:
        out.append("</ul>")
    if in_code:
        out.append("</pre>")
    if note:
        out.append(f"<br><i>{html.escape(note)}</i>")
    html_text = "".join(out)
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
    text = text.replace(_CODE_SLOT, "\ufffd")
    return _LONG_RUN.sub("\\g<0>\u200b", text), note


def _inline(line: str, colors: dict[str, str]) -> str:
    line, codes = _cut_code(line)
    line = _bold(line)
    action = f'<i><span style="color:{colors["action"]}">'
    line = _actions(line, action, "</span></i>")
    line = _speech(line, f'<span style="color:{colors["speech"]}">', "</span>")
    if not codes:
        return line
    parts = line.split(_CODE_SLOT)
    return "".join(p + (codes[i] if i < len(codes) else "") for i, p in enumerate(parts))


def _next_table(n: int, is_mark: Callable[[int], bool]) -> list[int]:
    """For each position, the first position at or after it where a mark starts (or n)."""
    table = [n] * (n + 1)
    for i in range(n - 1, -1, -1):
        table[i] = i if is_mark(i) else table[i + 1]
    return table


def _cut_code(line: str) -> tuple[str, list[str]]:
    """`code` spans (no backtick inside, not empty) become slots, kept from other formatting."""
    if "`" not in line:
        return line, []
    out, codes, i = [], [], 0
    while True:
        start = line.find("`", i)
        end = line.find("`", start + 1) if start >= 0 else -1
        if end < 0:
            out.append(line[i:])
            return "".join(out), codes
        if end == start + 1:  # "``" is no span; the second backtick may open one
            out.append(line[i:end])
            i = end
            continue
        out.append(line[i:start] + _CODE_SLOT)
        codes.append(f"<code>{line[start + 1 : end]}</code>")
        i = end + 1


def _bold(line: str) -> str:
    """`**x**`: x starts and ends with a non-space; the nearest closing `**` wins."""
    if "**" not in line:
        return line
    n = len(line)
    closer = _next_table(n, lambda j: line.startswith("**", j) and not line[j - 1].isspace())
    out, i, done = [], 0, 0
    while i < n - 4:
        if line.startswith("**", i) and not line[i + 2].isspace():
            end = closer[i + 3]
            if end < n:
                out.append(f"{line[done:i]}<b>{line[i + 2 : end]}</b>")
                i = done = end + 2
                continue
        i += 1
    return "".join(out) + line[done:]


def _actions(line: str, open_tag: str, close_tag: str) -> str:
    """`*x*`: no asterisk inside, x starts and ends with a non-space."""
    if "*" not in line:
        return line
    out, done, i = [], 0, line.find("*")
    while i >= 0:
        end = line.find("*", i + 1)
        if end < 0:
            break
        if end > i + 1 and not line[i + 1].isspace() and not line[end - 1].isspace():
            out.append(f"{line[done:i]}{open_tag}{line[i + 1 : end]}{close_tag}")
            done = end + 1
            i = line.find("*", done)
        else:
            i = end  # the closing candidate may open the next span
    return "".join(out) + line[done:]


def _speech(line: str, open_tag: str, close_tag: str) -> str:
    """ "x" or “x”: the nearest closing quote after at least one character."""
    if _QUOTE not in line and "\u201c" not in line:
        return line
    n = len(line)
    closer = _next_table(n, lambda j: line[j] == "\u201d" or line.startswith(_QUOTE, j))
    out, i, done = [], 0, 0
    while i < n:
        width = 1 if line[i] == "\u201c" else len(_QUOTE) if line.startswith(_QUOTE, i) else 0
        if width and i + width < n:
            end = closer[i + width + 1]
            if end < n:
                stop = end + (1 if line[end] == "\u201d" else len(_QUOTE))
                out.append(f"{line[done:i]}{open_tag}{line[i:stop]}{close_tag}")
                i = done = stop
                continue
        i += 1
    return "".join(out) + line[done:]
