"""World-info activation basics (SillyTavern's `checkWorldInfo`, public/scripts/world-info.js);
matching, placement and the activation rules in detail are in test_prompt_lore_*.py."""

import pytest

from app.core.prompt.worldinfo import WorldInfoSettings, activate_lore, parse_decorators


def entry(keys, content, **kw):
    return {
        "keys": keys,
        "content": content,
        "enabled": True,
        "insertion_order": 100,
        "extensions": {},
        **kw,
    }


def fire(entries, history, *, depth=4, budget=1000, settings=None, **book):
    return activate_lore(
        {"entries": entries, **book},
        history,
        scan_depth=depth,
        budget_tokens=budget,
        count_tokens=lambda s: len(s.split()),
        settings=settings,
    )


def test_key_in_the_last_messages_fires():
    result = fire(
        [entry(["dragon"], "Dragons breathe fire.", name="dragons")], ["hello", "I saw a Dragon!"]
    )
    assert result.fired == ["dragons"]
    assert result.text == "Dragons breathe fire."
    assert result.tokens == 3


def test_key_older_than_the_scan_depth_does_not_fire():
    history = ["a dragon", "b", "c", "d", "e"]
    assert fire([entry(["dragon"], "x")], history, depth=4).fired == []
    assert fire([entry(["dragon"], "x")], history, depth=5).fired == ["dragon"]


def test_constant_fires_without_keys_and_disabled_never_fires():
    entries = [
        entry([], "Always.", constant=True, name="always"),
        entry(["dragon"], "Never.", enabled=False, name="off"),
        entry([], "Off even if constant.", constant=True, enabled=False, name="off2"),
    ]
    assert fire(entries, ["a dragon"]).fired == ["always"]


@pytest.mark.parametrize(
    "logic, fires_on",
    [
        (0, {"dragon red", "dragon red blue"}),  # AND ANY
        (1, {"dragon", "dragon red"}),  # NOT ALL
        (2, {"dragon"}),  # NOT ANY
        (3, {"dragon red blue"}),  # AND ALL
        ("and_all", {"dragon red blue"}),
    ],
)
def test_secondary_keys_with_selective_logic(logic, fires_on):
    e = entry(
        ["dragon"],
        "x",
        selective=True,
        secondary_keys=["red", "blue"],
        extensions={"selectiveLogic": logic} if isinstance(logic, int) else {},
        **({} if isinstance(logic, int) else {"selective_logic": logic}),
    )
    fired = {
        text
        for text in ("dragon", "dragon red", "dragon red blue", "red blue")
        if fire([e], [text]).fired
    }
    assert fired == fires_on


def test_secondary_keys_are_ignored_unless_selective():
    e = entry(["dragon"], "x", selective=False, secondary_keys=["red"])
    assert fire([e], ["dragon"]).fired


def test_case_sensitivity():
    sensitive = entry(["Paris"], "city", case_sensitive=True, name="cs")
    assert fire([sensitive], ["paris is nice"]).fired == []
    assert fire([sensitive], ["Paris is nice"]).fired == ["cs"]
    insensitive = entry(["Paris"], "city", name="ci")
    assert fire([insensitive], ["PARIS!"]).fired == ["ci"]
    st_style = entry(["Paris"], "city", extensions={"case_sensitive": True})
    assert fire([st_style], ["paris"]).fired == []


def test_whole_words_per_entry_else_the_global_default_on():
    """`matchKeys`: `entry.matchWholeWords ?? world_info_match_whole_words`, and a new
    SillyTavern install ships `world_info_match_whole_words: true`."""
    assert fire([entry(["cat"], "x")], ["a category"]).fired == []
    assert fire([entry(["cat"], "x")], ["the cat sat"]).fired == ["cat"]
    parts = entry(["cat"], "x", extensions={"match_whole_words": False})
    assert fire([parts], ["a category"]).fired == ["cat"]
    off = WorldInfoSettings(whole_words=False)
    assert fire([entry(["cat"], "x")], ["a category"], settings=off).fired == ["cat"]


def test_insertion_order_decides_the_text_order():
    entries = [
        entry([], "third", constant=True, insertion_order=30),
        entry([], "first", constant=True, insertion_order=10),
        entry([], "second", constant=True, insertion_order=20),
    ]
    assert fire(entries, []).text == "first\nsecond\nthird"


def test_budget_takes_entries_by_order_and_stops_at_the_first_that_does_not_fit():
    """`checkWorldInfo`: entries in `order`, highest first (`priority` is not read); each adds
    its content and a newline, and the scan stops once the total reaches the budget
    (`>= budget`), even if a later, smaller entry would fit. A V2 book's `token_budget` is not
    read either (`convertCharacterBook` drops it)."""
    entries = [
        entry(["a"], "low priority words here", priority=9, name="low", insertion_order=1),
        entry(["a"], "high priority words", priority=1, name="high", insertion_order=3),
        entry(["a"], "mid", priority=5, name="mid", insertion_order=2),
    ]
    result = fire(entries, ["a"], budget=5)  # "high priority words\n" is 3, "mid\n" 1 more
    assert result.fired == ["mid", "high"]
    assert result.tokens == 4
    assert "low" in result.warnings[0]
    cut = fire(entries, ["a"], budget=3)  # 3 >= 3: the first entry already does not fit
    assert cut.fired == []
    assert [t.reason.startswith("cut by the budget") for t in cut.trace] == [True] * 3
    assert fire(entries, ["a"], budget=100, token_budget=3).fired == ["low", "mid", "high"]


def test_v3_decorators_are_stripped_and_honoured():
    entries = [
        entry(["zzz"], "@@activate\nForced in.", name="forced"),
        entry(["dragon"], "@@dont_activate\nNever.", name="never"),
        entry(["dragon"], "@@additional_keys red,blue\nNeeds a colour.", name="colour"),
        entry(["dragon"], "@@exclude_keys baby\nNot for babies.", name="grown"),
        entry(["ancient"], "@@scan_depth 10\nDeep memory.", name="deep"),
        entry(["dragon"], "@@depth 4\n@@role system\nUnknown decorators vanish.", name="plain"),
    ]
    history = ["an ancient tale"] + ["filler"] * 6 + ["a red dragon"]
    result = fire(entries, history)
    assert set(result.fired) == {"forced", "colour", "grown", "deep", "plain"}
    assert "@@" not in result.text
    assert "Unknown decorators vanish." in result.text
    assert "baby" not in fire(entries, ["a baby dragon"]).fired


def test_parse_decorators_with_fallbacks():
    found, content = parse_decorators(
        "@@risu_only 4\n@@@scan_depth 2\n@@activate\n@@@dont_activate\n\nBody\n@@not a decorator"
    )
    assert found == {"scan_depth": "2", "activate": ""}
    assert content == "Body\n@@not a decorator"


def test_recursive_scanning():
    """Recursion is a global setting, on in a new SillyTavern install (`world_info_recursive`);
    the book's `recursive_scanning` is not read. Of two entries with the same order, the one
    that fired later is placed first (`checkWorldInfo` unshifts them in turn)."""
    entries = [
        entry(["dragon"], "Dragons hoard gold.", name="dragon"),
        entry(["gold"], "Gold is heavy.", name="gold"),
    ]
    assert fire(entries, ["a dragon"]).fired == ["gold", "dragon"]
    off = WorldInfoSettings(recursive=False)
    assert fire(entries, ["a dragon"], settings=off, recursive_scanning=True).fired == ["dragon"]
    no_recursion = [entries[0], {**entries[1], "extensions": {"exclude_recursion": True}}]
    assert fire(no_recursion, ["a dragon"]).fired == ["dragon"]


def test_use_regex_never_disables_an_entry():
    """SillyTavern writes `use_regex: true` on every entry it exports and never reads it: a
    key is a regex only when written /pattern/ (`parseRegexFromString`)."""
    plain = entry(["(a+)+$"], "x", use_regex=True, name="re")
    assert fire([plain], ["a" * 40 + "!"]).fired == []  # plain text, not found
    assert fire([plain], ["it says (a+)+$ here"]).fired == ["re"]
    assert fire([entry(["dragon"], "x", use_regex=True)], ["a dragon"]).fired == ["dragon"]


def test_labels_fall_back_from_name_to_comment_to_key():
    entries = [
        entry(["k1"], "a", comment="A comment"),
        entry(["k2"], "b"),
        entry([], "c", constant=True),
    ]
    assert fire(entries, ["k1 k2"]).fired == ["entry 3", "k2", "A comment"]  # same order


def test_macros_expand_in_content_and_keys():
    result = activate_lore(
        {"entries": [entry(["{{char}}"], "{{char}} is a fox.")]},
        ["Alice?"],
        scan_depth=4,
        budget_tokens=100,
        count_tokens=len,
        expand=lambda s: s.replace("{{char}}", "Alice"),
    )
    assert result.text == "Alice is a fox."


@pytest.mark.parametrize(
    "book",
    [
        None,
        {},
        {"entries": None},
        {"entries": ["junk", 3]},
        {"entries": [{"keys": "a, b", "content": None}]},
        {"entries": [{"keys": [None, 5], "insertion_order": "x"}]},
    ],
)
def test_malformed_books_do_not_crash(book):
    result = activate_lore(book, ["a b 5"], scan_depth=4, budget_tokens=100, count_tokens=len)
    assert result.text == ""
