"""Issue 21, point 2: a card whose name holds macros must not blow up its greeting."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

from app.core.chat.job import greetings
from app.core.prompt.macros import HARD_CAP, MacroContext, expand_macros, output_budget
from tests.hostile import Bounded

NAME = "{{char}}" * 10  # 80 bytes: before, each pass multiplied the greeting by ten


@pytest.fixture(scope="module")
def bounded():
    child = Bounded(extra_mb=300)
    yield child
    child.close()


def _greet_and_store(folder: str, name: str, first_mes: str) -> tuple[int, int, str]:
    from app.core.store import Store

    store = Store(Path(folder) / "parlor.db")
    card = {"name": name, "first_mes": first_mes}
    character = store.characters.add(card)
    chat = store.chats.new(character, greetings(card, "Bob"))
    stored = store.messages.active_path(chat)[0].text
    store.close()
    return len(first_mes), len(stored), stored[:40]


def test_a_name_of_macros_is_expanded_once_and_the_greeting_stays_small(bounded, tmp_path):
    """The 349-byte card of the issue made a 25.6 M-character greeting; now it is bounded
    and stored, in a child limited to 300 MB more than it started with and 10 s."""
    size, stored, head = bounded(_greet_and_store, str(tmp_path), NAME, "{{char}} " * 30)
    assert stored <= output_budget(size)
    assert head.startswith("{{char}}{{char}}")  # the name's own macro, inserted as written


def test_over_budget_the_greeting_is_stored_as_written(bounded, tmp_path):
    first_mes = "{{char}}" * 3000
    size, stored, head = bounded(_greet_and_store, str(tmp_path), "x" * 200, first_mes)
    assert stored == size and head == first_mes[:40]


def test_the_warning_names_the_card_field(caplog):
    card = {"name": "n" * 5000, "first_mes": "hi", "alternate_greetings": ["{{char}}" * 100]}
    with caplog.at_level(logging.WARNING):
        out = greetings(card, "Bob")
    assert out[1] == "{{char}}" * 100
    assert "alternate_greetings[0]" in caplog.text and "left as written" in caplog.text


def test_warnings_go_to_the_context_when_it_collects_them():
    seen: list[str] = []
    ctx = MacroContext(char="c" * 100_000, warn=seen.append)
    assert expand_macros("{{char}}" * 30, ctx, "the description") == "{{char}}" * 30
    assert seen and "the description" in seen[0]


def test_the_hard_cap_holds_for_huge_inputs():
    assert output_budget(10**9) == HARD_CAP
    text = "{{user}}" * 300_000  # 2.4 M characters, each macro would add two
    assert expand_macros(text, MacroContext(user="abcdefghij")) == text


def test_names_with_macros_expand_once_and_ordinary_names_are_unchanged():
    ctx = MacroContext(char="{{user}}'s cat", user="Bob", rng=random.Random(1))
    assert expand_macros("Hi, {{char}}! <BOT>", ctx) == "Hi, Bob's cat! Bob's cat"
    # What the name's own expansion leaves is inserted literally, not read again.
    assert expand_macros("{{char}}", MacroContext(char="{{unknown}}")) == "{{unknown}}"
    assert expand_macros("{{char}}", MacroContext(char="{{random:a,b}}")) in {"a", "b"}
    assert expand_macros(
        "{{random:{{char}},x}}", MacroContext(char="{a}", rng=random.Random(3))
    ) in {"{a}", "x"}
    assert expand_macros("<user>", MacroContext(user="<b>Bo</b>")) == "<b>Bo</b>"


def test_angle_macros_count_against_the_budget():
    text = "<BOT>" * 10_000
    assert expand_macros(text, MacroContext(char="z" * 1000)) == text


def test_a_roll_with_thousands_of_digits_gives_nothing():
    """Python's int() refuses more than 4300 digits; the roll is refused before that."""
    assert expand_macros("[{{roll:d" + "9" * 5000 + "}}]", MacroContext()) == "[]"
    assert expand_macros("[{{roll:" + "9" * 5000 + "}}]", MacroContext()) == "[]"


def test_the_prompt_builder_reports_an_over_budget_field():
    from app.core.prompt import Message as PromptMessage
    from app.core.prompt import PromptInput, build_prompt, preset

    card = {"name": "N" * 5000, "description": "{{char}} " * 200, "first_mes": "Hi"}
    inp = PromptInput(
        card=card, user_name="Bob", persona="", history=[PromptMessage("user", "Hello")]
    )
    built = build_prompt(inp, preset("chatml"), lambda s: len(s) // 4, 100_000, 256)
    assert any("Macros in description were left as written" in w for w in built.warnings)
    assert "{{char}} {{char}}" in built.text


def test_a_text_holding_every_stand_in_is_still_bounded():
    """With no free stand-in character names cannot be sealed; the budget still holds."""
    from app.core.prompt.macros import _STAND_INS

    text = "".join(_STAND_INS) + "{{char}} " * 50
    out = expand_macros(text, MacroContext(char=NAME))
    assert len(out) <= output_budget(len(text))


def _many_writes() -> tuple[str, int, int, str]:
    from app.core.prompt.macros import Variables

    v = Variables(chat={"l": "[]"})
    line = "{{addvar::s::" + "x" * 50 + "}}" + "{{addvar::l::item}}" * 20_000
    out = expand_macros("\n".join([line] * 5), MacroContext(variables=v))
    return out, v.writes, len(v.chat["l"]), v.chat["s"]


def test_thousands_of_variable_writes_stay_cheap_and_bounded(bounded):
    """A card can hold a megabyte of `{{addvar}}`s on one variable: each would copy the
    growing value. Writes stop at `MAX_WRITES` per prompt and values at `MAX_CHARS`."""
    from app.core.prompt.macros.variables import MAX_CHARS, MAX_WRITES

    out, writes, size, s = bounded(_many_writes, seconds=10.0)
    assert out == "\n" * 4  # every macro is gone, written or not
    assert writes == MAX_WRITES and size <= MAX_CHARS
    assert s == "x" * 50  # later lines found the writes used up


def test_a_hostile_number_in_a_variable_reads_as_javascript_would():
    from app.core.prompt.macros import Variables

    v = Variables(chat={"h": "0x" + "f" * 1000, "n": "[" * 5000})
    ctx = MacroContext(variables=v)
    assert expand_macros("{{getvar::h}}|{{addvar::n::1}}", ctx) == "Infinity|"


def _many_rolls() -> tuple[int, int, list[str]]:
    warnings: list[str] = []
    text = "{{roll:1000d1000000}}" * 50_000 + "{{timeDiff::a::b}}" * 40_000
    out = expand_macros(text, MacroContext(rng=random.Random(1), warn=warnings.append))
    return out.count("{{roll:"), out.count("{{timeDiff"), warnings


def test_a_text_of_a_hundred_thousand_rolls_and_dates_works_out_the_first_few(bounded):
    """50,000 rolls of a thousand dice would take minutes: the first 500 macros with
    arguments are worked out, the rest stay as written, and a warning says so."""
    from app.core.prompt.macros.engine import MAX_WORKED

    rolls, dates, warnings = bounded(_many_rolls, seconds=10.0)
    assert rolls == 50_000 - MAX_WORKED and dates == 40_000
    assert len(warnings) == 1 and f"first {MAX_WORKED} rolls" in warnings[0]
