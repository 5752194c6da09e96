"""Roleplay text to safe HTML for the chat view.

Everything is escaped first: text from cards and models is never trusted markup. Only then
are the conventions roleplayers use turned into formatting: *actions* in italics,
"speech" highlighted, **bold**, `code`, block quotes and simple lists. The result contains
no attribute that could name a URL, so nothing in it can load a remote resource.
"""

from __future__ import annotations

import html
import re

_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ACTION = re.compile(r"\*(?=\S)([^*\n]+?)(?<=\S)\*")
_SPEECH = re.compile(r"(&quot;|\u201c)(.+?)(&quot;|\u201d)")


def _inline(line: str, colors: dict[str, str]) -> str:
    codes: list[str] = []

    def keep_code(m: re.Match) -> str:
        codes.append(f"<code>{m.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    line = _CODE.sub(keep_code, line)
    line = _BOLD.sub(r"<b>\1</b>", line)
    line = _ACTION.sub(rf'<i><span style="color:{colors["action"]}">\1</span></i>', line)
    line = _SPEECH.sub(rf'<span style="color:{colors["speech"]}">\1\2\3</span>', line)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], line)


def to_html(text: str, colors: dict[str, str] | None = None) -> str:
    """Escape `text` and render roleplay formatting; safe to hand to a QTextDocument."""
    colors = colors or {"action": "#8a8f98", "speech": "#c77d2e"}
    out: list[str] = []
    in_list = False
    for raw in html.escape(text, quote=True).splitlines():
        stripped = raw.lstrip()
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
    html_text = "".join(out)
    return html_text[:-4] if html_text.endswith("<br>") else html_text
