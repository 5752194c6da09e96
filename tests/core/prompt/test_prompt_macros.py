import random
from datetime import datetime

import pytest

from app.core.prompt.macros import MacroContext, expand_macros

CLOCK = datetime(2024, 3, 9, 21, 5, 30)  # a Saturday evening


def ctx(**kw) -> MacroContext:
    base = dict(char="Alice", user="Bob", rng=random.Random(7), clock=lambda: CLOCK)
    return MacroContext(**{**base, **kw})


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{{char}} meets {{user}}", "Alice meets Bob"),
        ("{{CHAR}} and {{User}} and {{ char }}", "Alice and Bob and Alice"),
        ("<BOT> waves at <USER>; <bot>, <Char>, <user>", "Alice waves at Bob; Alice, Alice, Bob"),
        ("It is {{time}} on {{date}}.", "It is 9:05 PM on March 9, 2024."),
        ("{{weekday}} {{isodate}} {{isotime}}", "Saturday 2024-03-09 21:05"),
        ("a{{// a comment with {{char}} inside }}b", "ab"),
        ("a{{//\nmany\nlines\n}}b", "ab"),
        ("x{{comment: not for the model}}y{{hidden_key: k}}z", "xyz"),
        ("{{unknown}} {{ random }} stay", "{{unknown}} {{ random }} stay"),
        ("line{{newline}}next{{noop}}", "line\nnext"),
        ("{{reverse:abc}}", "cba"),
        ("no macros at all", "no macros at all"),
    ],
)
def test_expansion(text, expected):
    assert expand_macros(text, ctx()) == expected


def test_time_at_midnight_and_noon():
    midnight = ctx(clock=lambda: datetime(2024, 1, 1, 0, 7))
    noon = ctx(clock=lambda: datetime(2024, 1, 1, 12, 0))
    assert expand_macros("{{time}}", midnight) == "12:07 AM"
    assert expand_macros("{{time}}", noon) == "12:00 PM"


def test_original_is_used_once():
    c = ctx(original="Be nice to {{user}}.")
    assert expand_macros("{{original}} Also: {{original}}", c) == "Be nice to Bob. Also: "


@pytest.mark.parametrize(
    "text",
    ["{{random:red,green,blue}}", "{{random::red::green::blue}}", "{{RANDOM: red , green , blue}}"],
)
def test_random_picks_an_option_deterministically(text):
    first = expand_macros(text, ctx(rng=random.Random(3)))
    assert first in {"red", "green", "blue"}
    assert expand_macros(text, ctx(rng=random.Random(3))) == first
    seen = {expand_macros(text, ctx(rng=random.Random(seed))) for seed in range(40)}
    assert seen == {"red", "green", "blue"}


def test_random_keeps_escaped_commas_and_double_colon_keeps_commas():
    assert expand_macros("{{random:a\\,b}}", ctx()) == "a,b"
    seen = {expand_macros("{{random::x, 1::y, 2}}", ctx(rng=random.Random(s))) for s in range(20)}
    assert seen == {"x, 1", "y, 2"}


def test_nested_macros_expand_inside_out():
    seen = {
        expand_macros("{{random:{{char}},{{user}}}}", ctx(rng=random.Random(s))) for s in range(20)
    }
    assert seen == {"Alice", "Bob"}


def test_pick_is_stable_without_a_seed():
    a = expand_macros("{{pick:a,b,c,d,e,f}}", MacroContext())
    assert all(expand_macros("{{pick:a,b,c,d,e,f}}", MacroContext()) == a for _ in range(5))


@pytest.mark.parametrize(
    "formula, low, high",
    [
        ("{{roll:d20}}", 1, 20),
        ("{{roll:2d6}}", 2, 12),
        ("{{roll:6}}", 1, 6),
        ("{{roll 1d4}}", 1, 4),
        ("{{roll:2d6+3}}", 5, 15),
        ("{{ROLL:D8-1}}", 0, 7),
    ],
)
def test_rolls_stay_in_range(formula, low, high):
    values = {int(expand_macros(formula, ctx(rng=random.Random(s)))) for s in range(200)}
    assert min(values) == low and max(values) == high


@pytest.mark.parametrize(
    "formula", ["{{roll:banana}}", "{{roll:999999999d6}}", "{{roll:d0}}", "{{roll:1d99999999999}}"]
)
def test_bad_or_huge_rolls_give_nothing(formula):
    assert expand_macros(f"[{formula}]", ctx()) == "[]"


def test_same_rng_same_text():
    text = "{{roll:d100}} {{random:a,b,c,d}} {{roll:3d6}}"
    assert expand_macros(text, ctx(rng=random.Random(5))) == expand_macros(
        text, ctx(rng=random.Random(5))
    )
