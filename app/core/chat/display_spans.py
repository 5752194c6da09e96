"""The spans inside one line of chat text (already HTML-escaped): `code`, **bold**,
__thoughts__, *actions* (or _emphasis_, shown the same) and "speech".

Each kind of span is found in one pass over the line, with the next possible closing mark
looked up in a table instead of searched for again from every opening mark, so a line costs
time linear in its length whatever it holds (the regexes this replaces took 20 s on 40 KB of
`“`).

Thoughts are text between double underscores. SillyTavern renders `__x__` as underlined
text in a colour of its own (showdown's `underline` option; the third of its text colours,
beside quotes and italics), which is where roleplayers using it put inner thoughts; Parlor
gives it the "thought" colour, underlined the same way. Single backticks stay code, as in
Markdown and SillyTavern.
"""

from __future__ import annotations

from collections.abc import Callable

CODE_SLOT = "\x00"  # stands for a code span while the other spans are found
_QUOTE = "&quot;"


def inline(line: str, colors: dict[str, str]) -> str:
    """Format one escaped line; `colors` names the action, speech and thought colours."""
    line, codes = _cut_code(line)
    line = _bold(line)
    thought = colors.get("thought")
    if thought:
        line = _underscored(line, "__", f'<u><span style="color:{thought}">', "</span></u>")
    action = f'<i><span style="color:{colors["action"]}">'
    line = _actions(line, action, "</span></i>")
    line = _underscored(line, "_", action, "</span></i>")  # Markdown's other emphasis
    line = _speech(line, f'<span style="color:{colors["speech"]}">', "</span>")
    if not codes:
        return line
    parts = line.split(CODE_SLOT)
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
    out: list[str] = []
    codes: list[str] = []
    i = 0
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
        out.append(line[i:start] + CODE_SLOT)
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


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _underscored(line: str, mark: str, open_tag: str, close_tag: str) -> str:
    """`__x__` (thoughts) or `_x_` (emphasis): x starts and ends with a non-space; not
    inside a word (snake_case_names stay as written, like SillyTavern's literal mid-word
    underscores); the nearest closing mark wins."""
    if mark not in line:
        return line
    n, w = len(line), len(mark)

    def closes(j: int) -> bool:
        return (
            line.startswith(mark, j)
            and j > 0
            and not line[j - 1].isspace()
            and (w == 2 or line[j - 1] != "_")  # "a__" holds no emphasis
            and not (j + w < n and _is_word(line[j + w]))
        )

    closer = _next_table(n, closes)
    out: list[str] = []
    i = done = 0
    while i < n - 2 * w:
        opens = (
            line.startswith(mark, i)
            and not line[i + w].isspace()
            and line[i + w] != "_"
            and not (i > 0 and _is_word(line[i - 1]))
        )
        if opens:
            end = closer[i + w + 1]
            if end < n:
                out.append(f"{line[done:i]}{open_tag}{line[i + w : end]}{close_tag}")
                i = done = end + w
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
