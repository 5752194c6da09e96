"""Key matching and the scanned text, against SillyTavern 1.12's `public/scripts/world-info.js`
(`WorldInfoBuffer.matchKeys`, `WorldInfoBuffer.get`, `parseRegexFromString`, `checkWorldInfo`)."""

import random
import time
from datetime import datetime
from pathlib import Path

import pytest

from app.core.cards import load_card
from app.core.prompt import Message, PromptInput, PromptSettings, build_prompt, preset
from app.core.prompt.worldinfo import WorldInfoSettings, activate_lore, run_world_info
from app.core.prompt.worldinfo.keys import js_to_python, parse_regex_key
from app.core.prompt.worldinfo.settings import Book

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "worldinfo"


def entry(keys, content="x", **kw):
    return {
        "keys": keys,
        "content": content,
        "enabled": True,
        "insertion_order": 100,
        "extensions": {},
        **kw,
    }


def fired(entries, lines_oldest_first, **settings):
    result = activate_lore(
        {"entries": entries},
        lines_oldest_first,
        scan_depth=settings.pop("depth", 2),
        budget_tokens=1000,
        count_tokens=lambda s: len(s.split()),
        settings=WorldInfoSettings(**settings),
    )
    return result.fired


def build(card, history, **kw):
    return build_prompt(
        PromptInput(card=card, user_name="Ann", history=history),
        preset("chatml"),
        lambda s: (len(s) + 3) // 4,
        4096,
        256,
        rng=random.Random(1),
        clock=lambda: datetime(2024, 5, 1),
        **kw,
    )


def test_seraphinas_glade_entry_fires_on_refuge_before_the_description():
    """SillyTavern exports `use_regex: true` on every entry and never reads it, so the plain key
    "refuge" matches (`matchKeys`); `position` 0 (`extensions.position` wins in
    `convertCharacterBook`) puts it in `worldInfoBefore`, ahead of the description in the
    default story string."""
    card = load_card(FIXTURES / "seraphina_like.json").data
    built = build(
        card,
        [
            Message("assistant", card["first_mes"]),
            Message("user", "Is this place some kind of refuge?"),
        ],
    )
    assert "glade" in built.lore
    glade = next(t for t in built.lore_trace if t.entry == "glade")
    assert glade.fired and glade.position == "before_char"
    assert glade.reason == "key 'refuge' in message 1 from the end"
    text = built.text
    assert text.index("The glade is a refuge") < text.index("Seraphina is a guardian")
    assert [p.name for p in built.parts][:3] == ["system", "lore_before", "description"]
    # the glade's text says "magic": recursion (on by default) brings in the power entry
    power = next(t for t in built.lore_trace if t.entry == "power")
    assert power.fired and power.reason == "key 'magic' in lore added by recursion"
    assert not next(t for t in built.lore_trace if t.entry == "shadowfang").fired


def test_only_slash_delimited_keys_are_regular_expressions():
    """`parseRegexFromString`: `/pattern/flags` with flags from gimsuy; an unescaped `/` inside,
    or a pattern that does not compile, leaves the key plain text."""
    assert fired([entry(["/drag(on|ons)/i"])], ["Two DRAGONS!"]) == ["/drag(on|ons)/i"]
    assert fired([entry(["drag(on|ons)"])], ["Two dragons!"]) == []
    assert parse_regex_key("/a/b/") is None and parse_regex_key("/[/") is None
    assert fired([entry(["/[/"])], ["see /[/ here"]) == ["/[/"]  # plain text then
    assert parse_regex_key(r"/a\/b/") is not None
    assert fired([entry([r"/a\/b/"])], ["x a/b y"]) == [r"/a\/b/"]


def test_a_regex_key_ignores_the_case_and_whole_word_settings():
    """`matchKeys` tests a regex on the raw text "and overrides all the other options"."""
    assert fired([entry(["/Cat/"])], ["a cat"]) == []
    assert fired([entry(["/Cat/i"])], ["a category"]) == ["/Cat/i"]
    assert fired([entry(["/cat/"], case_sensitive=False)], ["a Cat"]) == []


def test_javascript_regex_classes_stay_ascii():
    r"""JavaScript's `\w`, `\d` and `\b` are ASCII-only; Python's are Unicode. Translated, so
    `/\bcaf\b/` matches in "café" as it does in SillyTavern."""
    assert js_to_python(r"\w[\d\w]\b") == r"[A-Za-z0-9_][0-9A-Za-z0-9_](?a:\b)"
    assert fired([entry([r"/\bcaf\b/"])], ["un café"]) == [r"/\bcaf\b/"]
    assert fired([entry([r"/^\d+$/m"])], ["٣"]) == []  # an Arabic-Indic digit is not \d in JS


@pytest.mark.parametrize(
    "flags, text, hit",
    [("s", "a\nb", True), ("", "a\nb", False), ("m", "x\nab", True), ("y", "ab", False)],
)
def test_javascript_flags(flags, text, hit):
    """`new RegExp(pattern, flags)`: s lets `.` match a newline, m anchors `^` at each line, y
    (sticky) matches only at the start, which is the scan text's leading `\\x01`."""
    key = {"s": "/a.b/s", "": "/a.b/", "m": "/^ab/m", "y": "/ab/y"}[flags]
    assert (fired([entry([key])], [text]) == [key]) is hit


def test_a_hostile_regex_key_does_not_hang_the_prompt():
    """Catastrophic backtracking (`/(a|a)*$/` on a long run of a's) is stopped by the time
    limit; the key counts as not found and the user is told."""
    card = {
        "name": "C",
        "character_book": {
            "entries": [entry(["/(a|a)*$/"], "never", name="evil"), entry(["a"], "fine", name="ok")]
        },
    }
    history = [Message("user", "a " + "a" * 5000 + "!")]
    start = time.perf_counter()
    built = build(card, history)
    assert time.perf_counter() - start < 2
    assert built.lore == ["ok"]
    assert any("took too long" in w for w in built.warnings)
    again = build(card, history)  # not run again, still reported
    assert again.lore == ["ok"] and any("took too long" in w for w in again.warnings)


def test_whole_words_across_scripts():
    """`matchKeys` bounds a one-word key with JavaScript's ASCII `\\W`: every non-ASCII letter
    is a boundary, so a Korean key followed by a particle matches (서울 in 서울에), and a
    key of several words is matched as a substring."""
    assert fired([entry(["서울"])], ["서울에 갔어요"]) == ["서울"]
    assert fired([entry(["кот"])], ["мой котик"]) == ["кот"]
    assert fired([entry(["cat"])], ["concatenate"]) == []
    assert fired([entry(["cat"])], ["(cat)"]) == ["cat"]
    assert fired([entry(["cat"])], ["caté"]) == ["cat"]  # é is a boundary, as in SillyTavern
    assert fired([entry(["red dragon"])], ["the red dragonfly"]) == ["red dragon"]
    assert fired([entry(["sir-knight"])], ["hello sir-knight!"]) == ["sir-knight"]
    assert fired([entry(["sir-knight"])], ["hello sir-knights"]) == []


def test_case_sensitivity_per_entry_else_global():
    """`#transformString`: `entry.caseSensitive ?? world_info_case_sensitive` (default off)."""
    assert fired([entry(["Paris"])], ["paris"]) == ["Paris"]
    assert fired([entry(["Paris"])], ["paris"], case_sensitive=True) == []
    own = entry(["Paris"], extensions={"case_sensitive": False})
    assert fired([own], ["paris"], case_sensitive=True) == ["Paris"]


def test_scan_text_is_name_colon_message_newest_first_depth_two():
    """`chatForWI` is `${name}: ${mes}` lines, reversed; `WorldInfoBuffer.get` takes the newest
    `entry.scanDepth ?? world_info_depth` (2 in a new install) of them."""
    book = {
        "entries": [
            entry(["Ann"], "names are scanned", name="by name"),
            entry(["lantern"], "three back", name="lantern"),
            entry(["lantern"], "deep", name="deep", extensions={"scan_depth": 3}),
        ]
    }
    lines = ["Bob: I lit the lantern.", "Ann: Good.", "Bob: Let's go."]
    result = run_world_info(
        [Book("b", book)], list(reversed(lines)), max_context=1000, count_tokens=len
    )
    assert {t.entry: t.fired for t in result.trace} == {
        "by name": True,
        "lantern": False,
        "deep": True,
    }
    lantern = next(t for t in result.trace if t.entry == "lantern")
    assert lantern.reason == "no key found in the last 2 messages"
    card = {"name": "Bob", "character_book": book}
    history = [
        Message("assistant", "I lit the lantern."),
        Message("user", "Good."),
        Message("assistant", "Let's go."),
    ]
    assert "by name" in build(card, history).lore


def test_names_can_be_left_out_of_the_scan():
    """`world_info_include_names` off scans the bare messages."""
    card = {"name": "Bob", "character_book": {"entries": [entry(["Ann"], "n", name="n")]}}
    history = [Message("user", "Hello.")]
    assert build(card, history).lore == ["n"]
    off = PromptSettings(world_info=WorldInfoSettings(include_names=False))
    assert build(card, history, settings=off).lore == []
