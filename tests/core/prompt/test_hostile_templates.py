"""Issue 21, point 3: the template sandbox's own checks run in linear time, and sizes are
checked before Python allocates (each case in a child limited in time and memory)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.prompt import Message, preset, template_from_gguf
from app.core.prompt.format_checks import HUGE, deep_size, format_width, percent_width
from tests.hostile import Bounded

CONVERSATION = [Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Bye")]
CHATML_TAIL = "{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}"


@pytest.fixture(scope="module")
def bounded():
    child = Bounded(extra_mb=300)
    yield child
    child.close()


def _render(source: str) -> tuple[float, str, str]:
    start = time.monotonic()
    out = template_from_gguf(source + CHATML_TAIL, "", "<|im_end|>").render(CONVERSATION)
    fallback = out.text == preset("chatml").render(CONVERSATION).text
    return time.monotonic() - start, "fallback" if fallback else "model", " ".join(out.warnings)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ('{' + ':' * 200000).format() }}",  # held the interpreter for over 60 s
        "{{ ('{' + ':' * 100000 + '9' * 100000).format() }}",
        "{{ ('%' + '0' * 200000 + '.') % 1 }}",
    ],
)
def test_format_checks_are_linear(bounded, source):
    seconds, used, _ = bounded(_render, source, seconds=20)
    assert seconds < 2 and used == "fallback"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ('a' * 2000000)|wordwrap(1) }}",  # never returned
        "{{ '{0:{1}}'.format('a', 10**10) }}",  # allocated N characters, then checked
        "{{ '{:{}}'.format('a', 10**10) }}",
        "{{ '{x:>{w}}'.format(x='a', w=10**10) }}",
        "{{ '{a:{b}}'.format_map({'a': 'x', 'b': 10**10}) }}",
        "{{ '{:.{}f}'.format(1.5, '9999999999') }}",
        "{{ '%(a)9999999999s' % {'a': 'x'} }}",
        "{{ '%*s' % (10**10, 'a') }}",
        "{{ ('%3999999s' * 4) % ('a', 'b', 'c', 'd') }}",  # each fits, together they do not
        "{{ '%(a)9999999999s'|format(a='x') }}",
        "{{ ([['x' * 1000] * 1000] * 1000)|tojson }}",
        "{{ ('a' * 100000).translate({97: 'b' * 1000}) }}",
        "{{ [['x'] * 3000000, ['y'] * 3000000]|sum(start=[]) }}",
        "{{ ('a. ' * 1300000)|sort|length }}",  # 6 s in C, holding the interpreter lock
        "{{ ('a. ' * 1300000)|urlize }}",  # 8 s before the deadline could be checked
        "{{ ('ab' * 1000000)|unique|list|length }}",
    ],
)
def test_sizes_are_checked_before_allocation(bounded, source):
    """A size error, not a MemoryError: the child has 300 MB to spare and 10 s."""
    seconds, used, warning = bounded(_render, source)
    assert used == "fallback" and seconds < 3
    assert "too large" in warning and "MemoryError" not in warning


def test_ordinary_formatting_still_renders():
    source = (
        "{{ '%-5s|%05.1f' % ('ab', 2.5) }}{{ '{:>6}|{:.2f}|{x}'.format('r', 1.234, x='k') }}"
        "{{ 'some words'|wordwrap(5) }}"
    )
    out = template_from_gguf(source + CHATML_TAIL, "", "<|im_end|>").render(CONVERSATION)
    assert out.warnings == []
    assert out.text.startswith("ab   |002.5     r|1.23|ksome\nwords")


_PERCENT = st.text(alphabet="%(a)-+ #0123456789.*sdfxr%", max_size=24)
_BRACES = st.text(alphabet="{}:<>^0123456789.,fsdx!r", max_size=24)
_ARGS = (7, "abc", 2.5, 12, "z", 3.25)


@settings(max_examples=400, deadline=None)
@given(_PERCENT)
def test_percent_width_never_underestimates(fmt):
    """Whatever Python builds from a format fits in its length, the measured widths and the
    values themselves (generous: 40 characters per field)."""
    for args in (_ARGS[: fmt.count("%")], {"a": "x"}):
        try:
            out = fmt % args
        except (TypeError, ValueError, KeyError, OverflowError):
            continue
        assert len(out) <= len(fmt) + percent_width(fmt) + 40 * fmt.count("%")


@settings(max_examples=400, deadline=None)
@given(_BRACES)
def test_format_width_never_underestimates(fmt):
    try:
        out = fmt.format(*_ARGS, x="k")
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError):
        return
    assert len(out) <= len(fmt) + format_width(fmt, _ARGS, {"x": "k"}) + 40 * fmt.count("{")


def _measure_seconds(fmt: str) -> float:
    """The best of three, so a busy machine's pauses do not count."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        percent_width(fmt), format_width(fmt, (), {})
        best = min(best, time.perf_counter() - start)
    return best


def _best_of_three(measure) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        measure()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.slow
def test_measures_read_each_character_once():
    """The worst shapes for a backtracking check: ten times the input takes about ten times
    as long (a quadratic check would take a hundred times; at 1 M characters, hours). A
    ratio rather than a time, so a loaded machine does not fail it."""
    shapes = [
        lambda n: "{" + ":" * n,
        lambda n: "%" + "0" * n,
        lambda n: "%(" * (n // 2),
        lambda n: "{:" + "{" * n,
        lambda n: "%." * (n // 2),
    ]
    for shape in shapes:
        small, large = _measure_seconds(shape(100_000)), _measure_seconds(shape(1_000_000))
        assert large < 60 * max(small, 1e-3), shape(8)  # quadratic: 100 times, or hours
    shared = ["x" * 1000] * 1000
    assert deep_size([shared] * 1000) > 10**9
    inner = _best_of_three(lambda: deep_size(shared))
    outer = _best_of_three(lambda: deep_size([shared] * 1000))
    assert outer < 100 * max(inner, 1e-5)  # measured once, not 1,000 times
    assert percent_width("%*d") == HUGE
