"""SillyTavern's macro set, each value derived from its code (`public/scripts/macros.js`
`evaluateMacros` unless a test says otherwise; `public/script.js` `substituteParams`;
`public/scripts/variables.js`; `public/scripts/instruct-mode.js` `replaceInstructMacros`)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from app.core.prompt.instruct import shipped_instruct
from app.core.prompt.macros import (
    CardFields,
    ChatState,
    MacroContext,
    MacroNotes,
    Variables,
    chat_state,
    expand_macros,
    instruct_values,
)
from app.core.prompt.macros.clock import format_moment, humanize

NOW = datetime(2024, 3, 5, 14, 7, 9, 123000, tzinfo=timezone.utc)  # a Tuesday
CARD = CardFields(
    description="{{char}} keeps the lighthouse.",
    personality="stern",
    scenario="A storm at {{user}}'s door.",
    persona="Ann is a sailor.",
    mes_examples="<START>\n{{char}}: Hm.",
    system="Stay in character as {{char}}.",
    jailbreak="Be brief.",
    version="2.1",
)


def ctx(**more) -> MacroContext:
    base = {
        "char": "Bob",
        "user": "Ann",
        "clock": lambda: NOW,
        "rng": random.Random(3),
        "card": CARD,
        "chat": ChatState(),
        "variables": Variables(),
        "notes": MacroNotes(),
        "model": "tiny-llama.gguf",
        "max_prompt": 3796,
    }
    return MacroContext(**{**base, **more})


def x(text: str, c: MacroContext | None = None) -> str:
    return expand_macros(text, c or ctx())


# -- substituteParams: the card's fields -----------------------------------------------------
@pytest.mark.parametrize(
    "macro, expected",
    [
        ("{{description}}", "Bob keeps the lighthouse."),
        ("{{personality}}", "stern"),
        ("{{scenario}}", "A storm at Ann's door."),
        ("{{persona}}", "Ann is a sailor."),
        ("{{mesExamples}}", "<START>\nBob: Hm."),
        ("{{charPrompt}}", "Stay in character as Bob."),
        ("{{charJailbreak}}", "Be brief."),
        ("{{charVersion}}", "2.1"),
        ("{{char_version}}", "2.1"),
        ("{{DESCRIPTION}}", "Bob keeps the lighthouse."),  # every regex there is /gi
    ],
)
def test_card_fields(macro, expected):
    """`substituteParams` fills `environment.description` ... from `getCharacterCardFields`,
    whose fields went through `baseChatReplace` ({{char}} and {{user}} already in)."""
    assert x(macro) == expected


def test_a_card_field_naming_itself_stays_as_written():
    """`baseChatReplace` calls `substituteParams(..., _replaceCharacterCard = false)`: inside a
    field, card macros are not known, so {{description}} stays."""
    card = CardFields(description="see {{description}}")
    assert x("{{description}}", ctx(card=card)) == "see {{description}}"


def test_card_macros_wait_without_a_card():
    """A greeting made with a new chat has no card context: the macro is left for the prompt."""
    c = ctx(card=None)
    assert x("{{description}}", c) == "{{description}}"
    assert c.notes is not None and not c.notes.unknown


# -- substituteParams: names, group, model -------------------------------------------------
def test_group_and_char_if_not_group_outside_a_group_are_the_character():
    """`getGroupValue`: without a selected group it is `_name2 ?? name2`."""
    assert x("{{group}}|{{charIfNotGroup}}|<GROUP>|<CHARIFNOTGROUP>") == "Bob|Bob|Bob|Bob"


def test_group_in_a_group_is_the_members_names():
    """`getGroupValue`: the members' names joined with ", "; `environment.group =
    environment.charIfNotGroup`."""
    c = ctx(group="Bob, Cy, Dee")
    assert (
        x("{{group}} / {{charIfNotGroup}} / <group>", c)
        == "Bob, Cy, Dee / Bob, Cy, Dee / Bob, Cy, Dee"
    )


def test_model_and_max_prompt():
    """`environment.model = getGeneratingModel()`; `{{maxPrompt}}` is `getMaxContextSize()`:
    the context less the reply (`max_context - amount_gen`)."""
    assert x("{{model}} {{maxPrompt}}") == "tiny-llama.gguf 3796"


def test_input_is_the_text_being_written():
    """`{{input}}` is `$('#send_textarea').val()`."""
    assert x("[{{input}}]", ctx(input="half a thought")) == "[half a thought]"
    assert x("[{{input}}]") == "[]"


# -- evaluateMacros: plain replacements --------------------------------------------------------
def test_trim_eats_the_line_breaks_around_it():
    """`content.replace(/(?:\\r?\\n)*{{trim}}(?:\\r?\\n)*/gi, '')`."""
    assert x("one\n\n{{trim}}\r\n\ntwo") == "onetwo"


def test_newline_noop_and_comments():
    assert x("a{{newline}}b{{noop}}c{{// hidden {{char}} }}d") == "a\nbcd"


def test_reverse():
    """`{{reverse:(.+?)}}`: `Array.from(str).reverse().join('')`."""
    assert x("{{reverse:lighthouse}}") == "esuohthgil"


# -- the chat's state ---------------------------------------------------------------------------
STATE = chat_state(
    [
        ("assistant", "Welcome.", NOW - timedelta(hours=5)),
        ("user", "Hello!", NOW - timedelta(hours=3)),
        ("assistant", "Storm's coming.", NOW - timedelta(hours=2)),
        ("system", "[the lamp flickers]", NOW - timedelta(hours=1)),
        ("user", "Light the lamp.", NOW - timedelta(minutes=1)),
    ],
    swipe=(1, 3),
    first_included=1,
)


@pytest.mark.parametrize(
    "macro, expected",
    [
        ("{{lastMessage}}", "Light the lamp."),  # getLastMessage: any message
        ("{{lastMessageId}}", "4"),  # getLastMessageId: its index in the chat
        ("{{lastUserMessage}}", "Light the lamp."),  # filter m.is_user && !m.is_system
        ("{{lastCharMessage}}", "Storm's coming."),  # filter !m.is_user && !m.is_system
        ("{{firstIncludedMessageId}}", "1"),  # getFirstIncludedMessageId
        ("{{currentSwipeId}}", "2"),  # getCurrentSwipeId: swipe_id + 1
        ("{{lastSwipeId}}", "3"),  # getLastSwipeId: swipes.length
        # getTimeSinceLastMessage: the user's message before the last one, humanized
        ("{{idle_duration}}", "3 hours"),
    ],
)
def test_chat_state(macro, expected):
    assert x(macro, ctx(chat=STATE)) == expected


def test_chat_state_of_an_empty_chat():
    """No message: ids are empty (`String(null ?? '')`), idle is "just now"."""
    empty = chat_state([])
    assert x(
        "[{{lastMessage}}|{{lastMessageId}}|{{lastSwipeId}}|{{idle_duration}}]", ctx(chat=empty)
    ) == ("[|||just now]")


def test_a_message_text_is_inserted_as_written_not_expanded_again():
    state = ChatState(last_message="{{char}} said {{roll:d6}}")
    assert x("{{lastMessage}}", ctx(chat=state)) == "{{char}} said {{roll:d6}}"


# -- time --------------------------------------------------------------
@pytest.mark.parametrize(
    "macro, expected",
    [
        ("{{time}}", "2:07 PM"),  # moment().format('LT')
        ("{{date}}", "March 5, 2024"),  # 'LL'
        ("{{weekday}}", "Tuesday"),  # 'dddd'
        ("{{isotime}}", "14:07"),  # 'HH:mm'
        ("{{isodate}}", "2024-03-05"),  # 'YYYY-MM-DD'
        ("{{datetimeformat DD.MM.YYYY HH:mm:ss}}", "05.03.2024 14:07:09"),
        ("{{datetimeformat dddd, MMMM Do YYYY [at] h A}}", "Tuesday, March 5th 2024 at 2 PM"),
        ("{{datetimeformat LLLL}}", "Tuesday, March 5, 2024 2:07 PM"),
        (
            "{{datetimeformat ddd MMM D YY, Q, DDDD, E, d, SSS, Z}}",
            "Tue Mar 5 24, 1, 065, 2, 2, 123, +00:00",
        ),
        ("{{time_UTC+2}}", "4:07 PM"),  # utcOffset(2): under 16 means hours
        ("{{time_UTC-5}}", "9:07 AM"),
        ("{{time_UTC+330}}", "7:37 PM"),  # 16 and over: minutes
    ],
)
def test_time_macros(macro, expected):
    assert x(macro) == expected


def test_datetimeformat_weeks_follow_the_english_locale_and_iso():
    """moment's `w` (en: weeks from Sunday, the week of January 1st is the first) and `W`."""
    sunday = datetime(2023, 1, 1, tzinfo=timezone.utc)
    assert format_moment(sunday, "w W gggg GGGG") == "1 52 2023 2022"
    friday = datetime(2021, 12, 31, tzinfo=timezone.utc)
    assert format_moment(friday, "w gggg") == "1 2022"  # its week holds January 1st, 2022
    assert format_moment(datetime(2022, 12, 31, tzinfo=timezone.utc), "w") == "53"


@pytest.mark.parametrize(
    "macro, expected",
    [
        ("{{timeDiff::2024-01-03::2024-01-01}}", "in 2 days"),  # humanize(true)
        ("{{timeDiff::2024-01-01::2024-01-03}}", "2 days ago"),
        ("{{timeDiff::2024-01-01T10:00::2024-01-01T09:59:30}}", "in a few seconds"),
        ("{{timeDiff::2024-01-01 10:50::2024-01-01 10:00}}", "in an hour"),  # 50 min rounds to 1 h
        ("{{timeDiff::2024-03-01::2024-01-01}}", "in 2 months"),
        (
            "{{timeDiff::March 5, 2024 2:07 PM::March 4, 2024 2:07 PM}}",
            "in a day",
        ),  # {{date}} {{time}}
        ("{{timeDiff::{{date}} {{time}}::2024-03-05T13:07:09Z}}", "in an hour"),
        ("{{timeDiff::never::2024-01-01}}", "Invalid date"),
    ],
)
def test_time_diff(macro, expected):
    """`timeDiffReplace`: `moment.duration(moment(a).diff(moment(b))).humanize(true)`."""
    c = ctx(clock=lambda: NOW.replace(tzinfo=None)) if "{{date}}" in macro else ctx()
    assert x(macro, c) == expected


@pytest.mark.parametrize(
    "delta, expected",
    [
        (timedelta(seconds=44), "a few seconds"),
        (timedelta(seconds=45), "a minute"),
        (timedelta(seconds=89), "a minute"),
        (timedelta(seconds=90), "2 minutes"),
        (timedelta(minutes=44), "44 minutes"),
        (timedelta(minutes=45), "an hour"),
        (timedelta(hours=21), "21 hours"),
        (timedelta(hours=22), "a day"),
        (timedelta(hours=36), "2 days"),
        (timedelta(days=25), "25 days"),
        (timedelta(days=26), "a month"),
        (timedelta(days=45), "a month"),  # 1.48 months rounds to 1
        (timedelta(days=46), "2 months"),
        (timedelta(days=320), "a year"),
        (timedelta(days=547), "a year"),
        (timedelta(days=548), "2 years"),
    ],
)
def test_humanize_thresholds(delta, expected):
    """moment's `relativeTime`: thresholds ss 44, s 45, m 45, h 22, d 26, M 11; `round`."""
    assert humanize(delta) == expected


# -- banned, random, pick, roll -------------------------------------------------------------
def test_banned_is_removed_and_its_words_noted():
    """`bannedWordsReplace`: the macro goes; its words go to the banned-strings list."""
    c = ctx()
    assert x('No {{banned "sorry"}}apologies.', c) == "No apologies."
    assert c.notes is not None and c.notes.banned == ["sorry"]


def test_random_pick_and_roll_still_work():
    out = x("{{random::a::b}} {{pick::c::d}} {{roll:1d1+4}}")
    first, second, third = out.split(" ")
    assert first in ("a", "b") and second in ("c", "d") and third == "5"


# -- variables --------------------------------------------------------------
def test_setvar_leaves_nothing_and_getvar_reads_it_on_a_later_line():
    """`replaceVariableMacros` runs line by line; `{{setvar}}` returns ''."""
    v = Variables()
    assert x("{{setvar::mood::calm}}\nMood: {{getvar::mood}}", ctx(variables=v)) == "\nMood: calm"
    assert v.chat == {"mood": "calm"} and v.changed == {"chat"}


def test_on_one_line_getvar_runs_before_setvar():
    """Within a line every `getvar` is replaced before any `setvar` (the order of the
    `line.replace` calls), so it reads the old value."""
    v = Variables(chat={"n": "1"})
    assert x("{{setvar::n::2}}[{{getvar::n}}]", ctx(variables=v)) == "[1]"
    assert v.chat["n"] == "2"


def test_getvar_of_a_number_is_the_number():
    """`getLocalVariable` returns `Number(value)` when it reads as one; unset is ''."""
    v = Variables(chat={"a": "05", "b": "1.50", "c": "0x10", "d": "text", "e": "  "})
    got = x(
        "{{getvar::a}}|{{getvar::b}}|{{getvar::c}}|{{getvar::d}}|{{getvar::e}}|{{getvar::zz}}",
        ctx(variables=v),
    )
    assert got == "5|1.5|16|text|  |"


def test_addvar_adds_numbers_joins_text_and_appends_to_arrays():
    """`addLocalVariable`: numbers add, text joins, a JSON array gets the value pushed."""
    v = Variables(chat={"n": "2", "s": "ab", "l": '["x"]'})
    assert (
        x("{{addvar::n::3}}{{addvar::s::cd}}{{addvar::l::y}}{{addvar::new::7}}", ctx(variables=v))
        == ""
    )
    assert v.chat == {"n": 5, "s": "abcd", "l": '["x","y"]', "new": 7}
    assert x("{{addvar::n::x}}{{getvar::n}}", ctx(variables=v)) == "5"  # getvar ran first
    assert v.chat["n"] == "5x"


def test_incvar_and_decvar_give_the_new_value():
    """`incrementLocalVariable` returns `addLocalVariable(name, 1)`, which is the new value."""
    v = Variables()
    assert x("{{incvar::n}} {{incvar::n}} {{decvar::m}}", ctx(variables=v)) == "1 2 -1"
    assert v.chat == {"n": 2, "m": -1}


def test_global_variables_are_their_own_set():
    v = Variables(chat={"x": "chat"})
    out = x(
        "{{setglobalvar::x::global}}\n{{getvar::x}} {{getglobalvar::x}} {{incglobalvar::k}}",
        ctx(variables=v),
    )
    assert out == "\nchat global 1"
    assert v.glob == {"x": "global", "k": 1} and v.changed == {"global"}
    assert x("{{addglobalvar::k::2}}{{decglobalvar::k}}", ctx(variables=v)) == "2"
    assert v.glob["k"] == 2


def test_a_read_only_view_reads_and_writes_nothing():
    v = Variables(chat={"n": 4})
    assert x("{{setvar::n::9}}{{getvar::n}}", ctx(variables=v.reader())) == "4"
    assert v.chat == {"n": 4} and not v.changed


def test_variable_macros_wait_without_variables():
    c = ctx(variables=None)
    assert x("{{setvar::a::1}}", c) == "{{setvar::a::1}}"
    assert c.notes is not None and not c.notes.unknown


def test_a_variable_value_is_not_expanded_again():
    v = Variables(chat={"t": "{{user}}"})
    assert x("{{getvar::t}}", ctx(variables=v)) == "{{user}}"


# -- instruct macros --------------------------------------------------------------
def test_instruct_macros_with_a_preset():
    """`replaceInstructMacros`: each name and alias gives the preset's sequence; first/last
    fall back to the plain sequence; the system prompt ones give the system prompt."""
    chatml = shipped_instruct()["ChatML"]
    values = instruct_values(
        chatml,
        system_prompt="Card prompt.",
        default_system_prompt="Default prompt.",
        example_separator="***",
        chat_start="###",
    )
    c = ctx(instruct=values)
    assert x("{{instructInput}}|{{instructUserPrefix}}", c) == "<|im_start|>user|<|im_start|>user"
    assert x("{{instructOutput}}{{instructSeparator}}", c) == "<|im_start|>assistant<|im_end|>\n"
    assert x("{{instructFirstOutput}}", c) == "<|im_start|>assistant"
    assert x("{{instructLastInput}}|{{instructStop}}", c) == "<|im_start|>user|<|im_end|>"
    assert (
        x("{{instructSystemPrefix}}|{{instructSystemSuffix}}", c)
        == "<|im_start|>system|<|im_end|>\n"
    )
    assert x("{{systemPrompt}}|{{defaultSystemPrompt}}|{{instructSystem}}", c) == (
        "Card prompt.|Default prompt.|Default prompt."
    )
    assert x("{{exampleSeparator}}|{{chatStart}}", c) == "***|###"


def test_instruct_macros_without_instruct_mode_are_empty():
    """With instruct mode off, `power_user.instruct.enabled` is false: every sequence is ''."""
    values = instruct_values(
        None, system_prompt="S", default_system_prompt="S", example_separator="", chat_start=""
    )
    assert (
        x(
            "[{{instructInput}}{{instructOutput}}{{instructStop}}]{{systemPrompt}}",
            ctx(instruct=values),
        )
        == "[]S"
    )


# -- unknown macros --------------------------------------------------------------
def test_an_unknown_macro_is_left_as_written_and_noted():
    c = ctx()
    assert x("Hi {{frobnicate}} and {{setvar::only_a_name}} {{char}}", c) == (
        "Hi {{frobnicate}} and {{setvar::only_a_name}} Bob"
    )
    assert c.notes is not None
    assert list(c.notes.unknown) == ["{{frobnicate}}", "{{setvar::only_a_name}}"]


def test_a_hostile_text_cannot_grow_the_unknown_list_without_end():
    c = ctx()
    x("".join(f"{{{{nope{i}}}}}" for i in range(5000)), c)
    assert c.notes is not None and len(c.notes.unknown) == 100
