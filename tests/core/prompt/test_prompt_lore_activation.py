"""Recursion, probability, inclusion groups, min activations and the budget, matched to
SillyTavern 1.12's `checkWorldInfo` and `filterByInclusionGroups` (public/scripts/world-info.js).
"""

from __future__ import annotations

from app.core.prompt.worldinfo import Book, WorldInfoSettings, run_world_info
from app.core.prompt.worldinfo.scan import budget_tokens


def entry(name, keys, content="", order=100, **ext):
    return {
        "name": name,
        "keys": keys,
        "content": content or name.upper(),
        "enabled": True,
        "insertion_order": order,
        "extensions": ext,
    }


def run(
    entries,
    lines_newest_first,
    *,
    seed="s",
    max_context=10_000,
    length=None,
    timed_state=None,
    **settings,
):
    return run_world_info(
        [Book("b", {"entries": entries})],
        lines_newest_first,
        max_context=max_context,
        count_tokens=lambda s: len(s.split()),
        settings=WorldInfoSettings(**settings),
        seed=seed,
        chat_length=length,
        timed_state=timed_state,
    )


def fired(result) -> set[str]:
    return {t.entry for t in result.trace if t.fired}


def reason(result, name) -> str:
    return next(t.reason for t in result.trace if t.entry == name)


# --- recursion -------------------------------------------------------------------------------


def test_recursion_scans_the_lore_added_so_far():
    """`checkWorldInfo`: fired content goes to the recursion buffer and the next pass sees
    the chat plus that text; `world_info_recursive` is on in a new install."""
    entries = [
        entry("dragon", ["dragon"], "Dragons hoard gold."),
        entry("gold", ["gold"], "Gold is cursed."),
        entry("curse", ["cursed"]),
    ]
    result = run(entries, ["I met a dragon"])
    assert fired(result) == {"dragon", "gold", "curse"}
    assert reason(result, "curse") == "key 'cursed' in lore added by recursion"
    assert fired(run(entries, ["I met a dragon"], recursive=False)) == {"dragon"}
    assert fired(run(entries, ["I met a dragon"], max_recursion_steps=2)) == {"dragon", "gold"}


def test_prevent_and_exclude_recursion():
    """`preventRecursion` keeps an entry's text out of the recursion buffer;
    `excludeRecursion` keeps an entry from firing in a recursion pass (the chat still can)."""
    prevent = [
        entry("dragon", ["dragon"], "Dragons hoard gold.", prevent_recursion=True),
        entry("gold", ["gold"]),
    ]
    assert fired(run(prevent, ["a dragon"])) == {"dragon"}
    exclude = [
        entry("dragon", ["dragon"], "Dragons hoard gold."),
        entry("gold", ["gold"], exclude_recursion=True),
    ]
    result = run(exclude, ["a dragon"])
    assert fired(result) == {"dragon"}
    assert reason(result, "gold") == "excluded from recursion"
    assert fired(run(exclude, ["a dragon and gold"])) == {"dragon", "gold"}


def test_delay_until_recursion_levels():
    """`delayUntilRecursion`: such entries never fire in the first pass; the lowest level opens
    with the first recursion, and each further level opens when a scan would stop."""
    waits = [entry("gold", ["gold"], delay_until_recursion=True)]
    result = run(waits, ["gold everywhere"])
    assert fired(result) == set() and reason(result, "gold") == "waits for recursion"
    entries = [
        entry("dragon", ["dragon"], "A dragon sleeps."),
        entry("gold", ["gold"], "GOLD", delay_until_recursion=1),
        entry("ruby", ["ruby"], "RUBY", delay_until_recursion=2),
    ]
    result = run(entries, ["dragon gold ruby"])
    assert fired(result) == {"dragon", "gold", "ruby"}
    # with nothing to recurse on, the next level still opens (level 2 admits level 1 too)
    assert fired(run(entries, ["gold ruby"])) == {"gold", "ruby"}


# --- probability -----------------------------------------------------------------------------


def test_probability_rolls_with_the_chats_seed():
    """`verifyProbability`: `Math.random() * 100 <= probability` unless `useProbability` is
    off or the probability is 100. Parlor draws from the chat's seed and length, so the same
    message regenerated rolls the same, and the roll is in the trace."""
    maybe = [entry("maybe", ["rain"], probability=50, useProbability=True)]
    outcomes = {
        seed: "maybe" in fired(run(maybe, ["rain"], seed=seed))
        for seed in (f"seed{i}" for i in range(40))
    }
    assert set(outcomes.values()) == {True, False}
    again = {seed: "maybe" in fired(run(maybe, ["rain"], seed=seed)) for seed in outcomes}
    assert again == outcomes
    roll = reason(run(maybe, ["rain"], seed="seed0"), "maybe")
    assert roll.startswith("key 'rain' in message 1 from the end; rolled ")
    lengths = {"maybe" in fired(run(maybe, ["rain"], length=n)) for n in range(40)}
    assert lengths == {True, False}  # a new message rolls again
    never = [entry("never", ["rain"], probability=0, useProbability=True)]
    assert fired(run(never, ["rain"])) == set()
    ignored = [entry("always", ["rain"], probability=0, useProbability=False)]
    assert fired(run(ignored, ["rain"])) == {"always"}


# --- inclusion groups ------------------------------------------------------------------------


def test_one_entry_per_group_weighted_and_seeded():
    """`filterByInclusionGroups`: a weighted draw (`groupWeight`, default 100) picks one winner;
    every other entry of the group is removed."""
    group = [
        entry("light", ["storm"], group="weather", group_weight=10),
        entry("heavy", ["storm"], group="weather", group_weight=90),
    ]
    wins = [fired(run(group, ["storm"], seed=f"s{i}")) for i in range(200)]
    assert all(len(w) == 1 for w in wins)
    heavy = sum(w == {"heavy"} for w in wins)
    assert 160 < heavy < 195
    first = run(group, ["storm"], seed="s1")
    assert fired(run(group, ["storm"], seed="s1")) == fired(first)
    loser = next(t for t in first.trace if not t.fired)
    assert loser.reason.startswith("group 'weather': drew ")


def test_group_override_and_multiple_groups():
    """`filterByInclusionGroups`: `groupOverride` entries win their group, the highest order
    first; `group` is split on `,\\s*`, so an entry can sit in several groups. A later pass
    finds a group closed only by a fired entry whose whole `group` text is the group's name
    (`x.group === key`): after "g1, g2" fired, the recursion pass lets b and c in, as in
    SillyTavern; without recursion there is no later pass."""
    entries = [
        entry("a", ["x"], order=10, group="g", group_override=True),
        entry("b", ["x"], order=20, group="g", group_override=True),
        entry("c", ["x"], order=30, group="g"),
    ]
    result = run(entries, ["x"])
    assert fired(result) == {"b"}
    assert reason(result, "c") == "group 'g': 'b' has priority"
    multi = [
        entry("a", ["x"], group="g1, g2", group_override=True),
        entry("b", ["x"], group="g1"),
        entry("c", ["x"], group="g2"),
    ]
    first_pass = run(multi, ["x"], recursive=False)
    assert fired(first_pass) == {"a"}
    assert reason(first_pass, "b") == "group 'g1': 'a' has priority"
    assert fired(run(multi, ["x"])) == {"a", "b", "c"}
    spaced = [entry("d", ["x"], "x", group="g1 ,g2"), entry("e", ["x"], group="g1")]
    assert fired(run(spaced, ["x"], recursive=False)) == {"d", "e"}  # "g1 " is not "g1"


def test_group_scoring_keeps_the_best_match():
    """`filterGroupsByScoring`: with scoring on, entries matching fewer keys
    (`getScore`) leave the group before the draw."""
    entries = [entry("one", ["x"], group="g"), entry("two", ["x", "y"], group="g")]
    scored = run(entries, ["x y"], use_group_scoring=True)
    assert fired(scored) == {"two"}
    assert reason(scored, "one") == "group 'g': scored 1 keys, the best scored 2"
    own = [
        entry("one", ["x"], group="g", use_group_scoring=True),
        entry("two", ["x", "y"], group="g", use_group_scoring=True),
    ]
    assert fired(run(own, ["x y"])) == {"two"}


def test_a_group_that_already_fired_takes_no_more():
    """`filterByInclusionGroups`: a recursion pass removes the entries of a group whose name
    is the whole `group` text of an entry that fired."""
    entries = [entry("first", ["dragon"], "gold", group="g"), entry("second", ["gold"], group="g")]
    result = run(entries, ["dragon"])
    assert fired(result) == {"first"}
    assert reason(result, "second") == "group 'g' already fired"


# --- min activations -------------------------------------------------------------------------


def test_min_activations_widen_the_scan():
    """`world_info_min_activations`: while fewer entries fired, scan one message deeper, until
    the depth passes `min_activations_depth_max` (checked before widening) or the chat."""
    entries = [entry("far", ["lantern"])]
    lines = ["a", "b", "c", "the lantern", "e"]
    assert fired(run(entries, lines)) == set()
    assert fired(run(entries, lines, min_activations=1)) == {"far"}
    assert fired(run(entries, lines, min_activations=1, min_activations_depth_max=3)) == {"far"}
    assert fired(run(entries, lines, min_activations=1, min_activations_depth_max=2)) == set()
    assert fired(run(entries, ["a", "b"], min_activations=1)) == set()


# --- budget ----------------------------------------------------------------------------------


def test_budget_is_a_share_of_the_context_with_a_cap():
    """`Math.round(world_info_budget * maxContext / 100) || 1`, then `world_info_budget_cap`."""
    assert budget_tokens(WorldInfoSettings(), 3584) == 896
    assert budget_tokens(WorldInfoSettings(budget_percent=10), 1005) == 101  # 100.5 rounds up
    assert budget_tokens(WorldInfoSettings(budget_cap=300), 3584) == 300
    assert budget_tokens(WorldInfoSettings(budget_percent=0), 3584) == 1


def test_constants_count_and_the_scan_stops_at_the_first_entry_that_does_not_fit():
    """Constants go through the same budget loop; once an entry does not fit, it and every
    later entry are cut, and no further pass runs."""
    entries = [
        {**entry("big", [], "one two three four five six", order=300), "constant": True},
        {**entry("small", [], "tiny", order=200), "constant": True},
        entry("keyed", ["x"], "also small", order=100),
    ]
    result = run(entries, ["x"], max_context=20)  # 25% of 20 = 5 tokens
    assert fired(result) == set()
    assert all(t.reason == "cut by the budget: 0 of 5 tokens were used" for t in result.trace)
    assert any("budget (5)" in w for w in result.warnings)
    roomy = run(entries, ["x"], max_context=60)  # 15 tokens
    assert fired(roomy) == {"big", "small", "keyed"}


def test_the_budget_counts_this_passs_text_and_earlier_recursion_text_as_sillytavern():
    """`checkWorldInfo`'s budget check: `getTokenCountAsync(allActivatedText)` plus the tokens
    of this pass's text so far (`newContent`, each entry's content and a line break, counted
    as one text) must stay under the budget. `allActivatedText` holds only the text earlier
    passes gave recursion, so an entry that prevents recursion no longer counts in a later
    pass."""
    entries = [
        entry("prevent", ["x"], "p1 p2 p3 p4", prevent_recursion=True),
        entry("recurse", ["x"], "gold"),
        entry("later", ["gold"], "q1 q2"),
    ]
    # 25% of 28 = 7: pass one is 4 + 1 = 5 tokens; pass two counts "gold\n" (1) and
    # "q1 q2\n" (2): 3 < 7, so "later" fits although all three hold 7 tokens
    result = run(entries, ["x"], max_context=28)
    assert fired(result) == {"prevent", "recurse", "later"}
    tight = run(entries, ["x"], max_context=20)  # 5 tokens: pass one already reaches it
    assert fired(tight) == {"prevent"}
    assert reason(tight, "recurse") == "cut by the budget: 4 of 5 tokens were used"


def test_the_budget_counts_the_passs_text_as_one():
    """`getTokenCountAsync(newContent)`: the pass's entries are counted together, not one by
    one; with a counter that rounds up per text, three 2-character entries are 2 tokens
    together although each alone counts 1."""
    import math

    entries = [entry(name, ["x"], "a", order=order) for name, order in (("1", 3), ("2", 2))]
    entries.append(entry("3", ["x"], "a", order=1))
    result = run_world_info(
        [Book("b", {"entries": entries})],
        ["x"],
        max_context=12,  # 25%: 3 tokens
        count_tokens=lambda s: math.ceil(len(s) / 4),
        settings=WorldInfoSettings(recursive=False),
    )
    assert fired(result) == {"1", "2", "3"}  # "a\na\na\n" is 6 characters: 2 tokens


# --- timed effects ---------------------------------------------------------------------------


def test_a_cooldown_follows_a_sticky_that_ended():
    """`WorldInfoTimedEffects`: sticky and cooldown both start when the entry fires; while
    sticky it stays in despite the cooldown; when sticky ends, a protected cooldown starts
    then (`#onEnded.sticky`) and survives a regenerate at that length."""
    book = [entry("ward", ["dragon"], sticky=2, cooldown=2)]
    state = None
    seen = {}
    for length in range(2, 8):
        result = run(book, ["a dragon"], length=length, timed_state=state)
        seen[length] = reason(result, "ward")
        state = result.timed_state
    assert seen[2].startswith("key 'dragon'")
    assert seen[3] == "sticky until message 4"
    assert seen[4] == seen[5] == "on cooldown until message 6"
    assert seen[6].startswith("key 'dragon'")
    again = run(
        book,
        ["a dragon"],
        length=4,
        timed_state=run(
            book,
            ["a dragon"],
            length=4,
            timed_state=run(
                book,
                ["a dragon"],
                length=3,
                timed_state=run(book, ["a dragon"], length=2).timed_state,
            ).timed_state,
        ).timed_state,
    )
    assert reason(again, "ward") == "on cooldown until message 6"


def test_delay_keeps_an_entry_out_of_a_short_chat():
    """`#checkDelayEffect`: `chat.length < entry.delay`."""
    book = [entry("late", ["dragon"], delay=5)]
    assert (
        reason(run(book, ["a dragon"], length=4), "late") == "delayed until the chat has 5 messages"
    )
    assert fired(run(book, ["a dragon"], length=5)) == {"late"}


def test_entries_filtered_by_character():
    """`checkWorldInfo`: `characterFilter.names` keeps an entry to those characters, or with
    `isExclude` away from them. (SillyTavern matches the card's file name; Parlor the name.)"""
    world = {
        "entries": {
            "0": {
                "uid": 0,
                "key": ["rain"],
                "content": "only Mira",
                "comment": "only",
                "characterFilter": {"isExclude": False, "names": ["Mira"], "tags": []},
            },
            "1": {
                "uid": 1,
                "key": ["rain"],
                "content": "not Mira",
                "comment": "not",
                "characterFilter": {"isExclude": True, "names": ["Mira"], "tags": []},
            },
            "2": {
                "uid": 2,
                "key": ["rain"],
                "content": "anyone",
                "comment": "any",
                "characterFilter": {"isExclude": False, "names": [], "tags": []},
            },
        }
    }
    from app.core.cards import lorebook_from_json

    book = lorebook_from_json(world)

    def names(character):
        result = run_world_info(
            [Book("w", book)], ["rain"], max_context=1000, count_tokens=len, character=character
        )
        return fired(result), reason(result, "not" if character == "Mira" else "only")

    assert names("Mira") == (
        {"only", "any"},
        "filtered out for this character (Mira): not for Mira",
    )
    assert names("Bob") == ({"not", "any"}, "filtered out for this character (Bob): only for Mira")


def test_entries_filtered_by_the_characters_tags():
    """`checkWorldInfo`: after the names, `characterFilter.tags` keeps an entry to characters
    with one of the tags (or with `isExclude` away from them); an entry with both must pass
    both. (SillyTavern's tags are its own tag ids; Parlor compares the card's tags, in any
    case.) Written into a card's own book, the filter is `extensions.character_filter`."""

    def wi(uid, name, **flt):
        return {
            "uid": uid,
            "key": ["rain"],
            "content": name,
            "comment": name,
            "characterFilter": {"isExclude": False, "names": [], "tags": [], **flt},
        }

    world = {
        "entries": {
            "0": wi(0, "elves", tags=["Elf"]),
            "1": wi(1, "no elves", tags=["elf"], isExclude=True),
            "2": wi(2, "Mira the elf", names=["Mira"], tags=["elf"]),
        }
    }
    from app.core.cards import lorebook_from_json

    book = lorebook_from_json(world)
    book["entries"].append(
        {
            "keys": ["rain"],
            "content": "card",
            "name": "card filter",
            "extensions": {"character_filter": {"names": ["Bob"], "isExclude": True}},
        }
    )

    def run_for(character, tags):
        return run_world_info(
            [Book("w", book)],
            ["rain"],
            max_context=1000,
            count_tokens=len,
            character=character,
            character_tags=tags,
        )

    assert fired(run_for("Mira", ("ELF", "archer"))) == {"elves", "Mira the elf", "card filter"}
    assert fired(run_for("Mira", ("human",))) == {"no elves", "card filter"}
    assert fired(run_for("Bob", ("elf",))) == {"elves"}
    human = run_for("Bob", ())
    assert reason(human, "elves") == "filtered out for this character (Bob): only for tags Elf"
    assert reason(human, "Mira the elf") == ("filtered out for this character (Bob): only for Mira")
    assert reason(human, "card filter") == "filtered out for this character (Bob): not for Bob"
