"""Issue 21, point 5: chat formatting takes time linear in the text, and Qt is never handed
a line it lays out slowly."""

from __future__ import annotations

import html
import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.chat.display import MAX_SHOWN, WORD_RUN, _inline, to_html

# The regexes the single pass replaced, kept as the reference for what it must produce on
# short lines (they are quadratic on long ones).
_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ACTION = re.compile(r"\*(?=\S)([^*\n]+?)(?<=\S)\*")
_SPEECH = re.compile(r"(&quot;|\u201c)(.+?)(&quot;|\u201d)")
COLORS = {"action": "A", "speech": "S"}


def _reference_inline(line: str) -> str:
    codes: list[str] = []

    def keep(m: re.Match) -> str:
        codes.append(f"<code>{m.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    line = _CODE.sub(keep, line)
    line = _BOLD.sub(r"<b>\1</b>", line)
    line = _ACTION.sub(r'<i><span style="color:A">\1</span></i>', line)
    line = _SPEECH.sub(r'<span style="color:S">\1\2\3</span>', line)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], line)


_LINE = st.text(alphabet='*`"\u201c\u201d ab', max_size=30)


@settings(max_examples=500, deadline=None)
@given(_LINE)
def test_the_single_pass_formats_as_the_regexes_did(line):
    escaped = html.escape(line, quote=True)
    assert _inline(escaped, COLORS) == _reference_inline(escaped)


def _best_of(runs: int, text: str) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        to_html(text)
        best = min(best, time.perf_counter() - start)
    return best


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet='*`"\u201c\u201d &<ab\n', min_size=1, max_size=12))
def test_time_is_linear_in_the_input(unit):
    """Stated factor: 16 times the text may take at most 3 x 16 times as long (plus 20 ms of
    noise); a quadratic formatter takes 256 times as long."""
    small = (unit * (3000 // len(unit) + 1))[:3000]
    large = small * 16
    assert _best_of(5, large) <= 3 * 16 * _best_of(5, small) + 0.02


def test_the_crafted_texts_of_the_issue_format_quickly():
    """40 KB of “ took 20 s, `**a ` x 25,000 took 73 s."""
    for text in (
        "\u201c" * 40_000,
        "**a " * 25_000,
        '"' * 40_000,
        "*a " * 30_000,
        "`" * 40_000,
        "**" * 40_000,
    ):
        start = time.monotonic()
        to_html(text)
        assert time.monotonic() - start < 1.0, text[:8]


def test_long_words_get_break_opportunities_and_long_messages_are_cut():
    out = to_html("a" * 1000)
    assert out.replace("\u200b", "") == "a" * 1000
    assert max(len(run) for run in out.split("\u200b")) == WORD_RUN
    long = "word " * (MAX_SHOWN // 5 + 2000)
    shown = to_html(long)
    assert len(shown) < MAX_SHOWN + 200 and "10,000 more characters are not shown" in shown


def test_nul_characters_cannot_pose_as_code_spans():
    assert to_html("a\x000\x00b `c`") == "a\ufffd0\ufffdb <code>c</code>"


_BLOCKS = st.text(alphabet='#>-+*_`1.) \n"ab', min_size=1, max_size=14)


@settings(max_examples=25, deadline=None)
@given(_BLOCKS)
def test_time_is_linear_with_headings_lists_quotes_and_thoughts(unit):
    """The same stated factor over the block syntax (headings, nested and numbered lists,
    quotes, fences) and __thoughts__: lists nest by indentation, so runs of spaces matter."""
    small = (unit * (3000 // len(unit) + 1))[:3000]
    large = small * 16
    assert _best_of(5, large) <= 3 * 16 * _best_of(5, small) + 0.02


_THOUGHT = re.compile(r"(?<![\w])__(?=[^\s_])(.+?)(?<=\S)__(?![\w])")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="_ ab*", max_size=24))
def test_thoughts_match_the_plain_regex_on_short_lines(line):
    """Nearest valid closer, as the non-greedy regex (quadratic on long lines) finds it."""
    colors = {**COLORS, "thought": "T"}
    tagged = _THOUGHT.sub(r'<u><span style="color:T">\1</span></u>', line)
    assert _inline(line, colors) == _inline_without_thoughts(tagged)


def _inline_without_thoughts(line: str) -> str:
    return _inline(line, COLORS)


def test_deep_indentation_and_many_quotes_format_quickly():
    for text in (
        "".join(" " * i + "- x\n" for i in range(3000)),
        "> a\n" * 20_000,
        "# " * 20_000,
        "1. " * 20_000 + "\n" + "1) a\n" * 10_000,
        "__a " * 25_000,
        "_" * 40_000,
    ):
        start = time.monotonic()
        to_html(text)
        assert time.monotonic() - start < 1.0, text[:8]


_EMPHASIS = re.compile(r"(?<![\w])_(?=[^\s_])(.+?)(?<=[^\s_])_(?![\w])")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="_ ab", max_size=24))
def test_underscore_emphasis_matches_the_plain_regex_on_short_lines(line):
    expected = _EMPHASIS.sub(r'<i><span style="color:A">\1</span></i>', line)
    assert _inline(line, COLORS) == expected
