"""The shortcuts that keep big books fast (entries read once per book, a word index, the
chat part searched once per turn) give the same answers as reading everything afresh."""

from __future__ import annotations

import copy
import random

from app.core.prompt.worldinfo import Book, WorldInfoSettings, run_world_info


def entry(name, keys, content="", **kw):
    return {
        "name": name,
        "keys": keys,
        "content": content or name,
        "enabled": True,
        "insertion_order": 100,
        "extensions": {},
        **kw,
    }


def fired(book, lines, **settings):
    result = run_world_info(
        [Book("b", book)],
        lines,
        max_context=100_000,
        count_tokens=lambda s: len(s.split()),
        settings=WorldInfoSettings(**settings),
    )
    return sorted(t.entry for t in result.trace if t.fired)


def test_a_changed_book_is_read_again():
    book = {"entries": [entry("a", ["apple"])]}
    assert fired(book, ["an apple"]) == ["a"]
    book["entries"][0] = entry("a", ["pear"])  # a new entry dict in the same list
    assert fired(book, ["an apple"]) == []
    edited = copy.deepcopy(book)
    edited["entries"].append(entry("b", ["apple"]))
    assert fired(edited, ["an apple"]) == ["b"]
    assert fired(book, ["an apple"]) == []


def test_index_respects_case_depth_and_rules_per_entry():
    book = {
        "entries": [
            entry("case", ["Rome"], extensions={"case_sensitive": True}),
            entry("deep", ["moon"], extensions={"scan_depth": 3}),
            entry("parts", ["cat"], extensions={"match_whole_words": False}),
            entry("plain", ["sun"]),
        ]
    }
    lines = ["the rome road", "a category", "old moon", "sun"]  # newest first
    assert fired(book, lines) == ["deep", "parts"]
    assert fired(book, ["Rome"]) == ["case"]
    assert fired(book, lines, depth=4) == ["deep", "parts", "plain"]
    assert fired(book, lines, case_sensitive=True, whole_words=False) == ["deep", "parts"]


def test_recursion_finds_keys_only_in_added_lore():
    book = {
        "entries": [
            entry("start", ["gate"], "The two words: red dragon, and /ember/."),
            entry("multi", ["red dragon"]),
            entry("regex", ["/emb(er|ers)/"]),
            entry("later", ["nothing here"]),
        ]
    }
    assert fired(book, ["the gate"]) == ["multi", "regex", "start"]
    assert fired(book, ["the gate"], recursive=False) == ["start"]


def test_many_random_books_agree_with_a_plain_reading():
    """Against a direct reading of SillyTavern's rule for plain single-word keys without
    recursion: an entry fires when one of its keys is a word of the newest `depth` lines."""
    rng = random.Random(3)
    words = [f"w{i}" for i in range(60)]
    for _ in range(30):
        entries = [entry(f"e{i}", rng.sample(words, 2)) for i in range(40)]
        lines = [" ".join(rng.sample(words, 3)) for _ in range(6)]
        depth = rng.randint(1, 6)
        expected = sorted(
            e["name"] for e in entries if set(e["keys"]) & set(" ".join(lines[:depth]).split())
        )
        assert fired({"entries": entries}, lines, depth=depth, recursive=False) == expected


def _reference(entries, lines, depth):
    """SillyTavern's loop (`checkWorldInfo`, `WorldInfoBuffer.get`/`matchKeys`) for plain and
    /regex/ keys with recursion, written straight from its code: every open entry is tested
    against the whole text in every pass."""
    import re

    def matches(text, key):
        if key.startswith("/") and key.endswith("/") and len(key) > 2:
            return re.search(key[1:-1], text) is not None
        text, key = text.lower(), key.lower()
        if len(key.split()) > 1:
            return key in text
        return (
            re.search(rf"(?:^|[^A-Za-z0-9_]){re.escape(key)}(?:$|[^A-Za-z0-9_])", text) is not None
        )

    fired, recurse = [], []
    while True:
        text = "\x01" + "\n\x01".join(lines[:depth])
        if recurse:
            text += "\n\x01" + "\n\x01".join(recurse)
        new = [
            e
            for e in entries
            if e["name"] not in fired and any(matches(text, k) for k in e["keys"])
        ]
        if not new:
            return sorted(fired)
        fired += [e["name"] for e in new]
        recurse.append("\n".join(e["content"] for e in new))


def test_mixed_keys_with_recursion_agree_with_sillytaverns_loop():
    rng = random.Random(5)
    words = [f"w{i}" for i in range(40)]

    def key():
        kind = rng.random()
        if kind < 0.15:
            return f"/{rng.choice(words)}[0-9]?/"
        if kind < 0.3:
            return f"{rng.choice(words)} {rng.choice(words)}"
        return rng.choice(words)

    for _ in range(40):
        entries = [
            entry(f"e{i}", [key(), key()], " ".join(rng.sample(words, 3))) for i in range(30)
        ]
        lines = [" ".join(rng.choice(words) for _ in range(4)) for _ in range(5)]
        depth = rng.randint(1, 5)
        assert fired({"entries": entries}, lines, depth=depth) == _reference(entries, lines, depth)


def _st_match(text, key, case_sensitive, whole_words):
    """SillyTavern's `WorldInfoBuffer.matchKeys`, read from its code: a `/regex/` key as is;
    otherwise lower-cased unless case-sensitive, and with whole words a one-word key between
    JavaScript `\\W` characters (ASCII), a key of several words as a substring."""
    import re

    if key.startswith("/") and key.endswith("/") and len(key) > 2:
        return re.search(key[1:-1], text) is not None
    if not case_sensitive:
        text, key = text.lower(), key.lower()
    if whole_words and len(key.split()) == 1:
        pattern = rf"(?:^|[^A-Za-z0-9_]){re.escape(key)}(?:\Z|[^A-Za-z0-9_])"
        return re.search(pattern, text) is not None
    return key in text


def _st_loop(entries, lines, depth, case_sensitive, whole_words):
    """`checkWorldInfo` with recursion, every open entry tested in every pass, each with its
    own scan depth (`WorldInfoBuffer.get`), case and whole-word rule (else the global one)."""
    fired, recurse = [], []
    while True:
        new = []
        for e in entries:
            if e["name"] in fired:
                continue
            ext = e["extensions"]
            own = ext.get("scan_depth")
            text = "\x01" + "\n\x01".join(lines[: own if own is not None else depth])
            if recurse:
                text += "\n\x01" + "\n\x01".join(recurse)
            if own == 0:  # `WorldInfoBuffer.get`: nothing at all, not even recursion
                text = ""

            case = ext.get("case_sensitive", case_sensitive)
            whole = ext.get("match_whole_words", whole_words)
            if any(_st_match(text, k, case, whole) for k in e["keys"]):
                new.append(e)
        if not new:
            return sorted(fired)
        fired += [e["name"] for e in new]
        recurse.append("\n".join(e["content"] for e in new))


def test_keys_of_every_kind_over_a_growing_chat_agree_with_sillytaverns_loop():
    """The plan's tables (`plan.KeyIndex`: word sets, substrings, required regex text, each
    message's answer kept across turns) wake exactly the entries SillyTavern's loop fires:
    keys in other scripts, of several words, case-sensitive or not, with and without whole
    words, regexes with and without a required text, per-entry scan depths, multi-line
    messages, over a chat that grows a message per turn."""
    rng = random.Random(17)
    words = ["Rome", "rome", "서울", "서울에", "Ærø", "cat", "category", "w1", "w2", "w3", "a b"]
    spanning = ["w1\nw2", "cat\nRome"]  # may span two recursion texts (joined by "\n")

    def key():
        kind = rng.random()
        if kind < 0.1:
            return rng.choice(["/rom[a-z]/", "/cat(egory)?/", "/서울[에]/", "/w[0-9] a/"])
        if kind < 0.15:
            return "/^\x01?[A-Z]/"  # no required text: looked at in every pass
        if kind < 0.3:
            return f"{rng.choice(words)} {rng.choice(words)}"
        if kind < 0.35:
            return rng.choice(spanning)
        return rng.choice(words)

    def extensions():
        ext = {}
        if rng.random() < 0.2:
            ext["case_sensitive"] = rng.random() < 0.5
        if rng.random() < 0.2:
            ext["match_whole_words"] = rng.random() < 0.5
        if rng.random() < 0.2:
            ext["scan_depth"] = rng.randint(0, 4)
        return ext

    for _ in range(12):
        entries = [
            entry(f"e{i}", [key(), key()], " ".join(rng.sample(words, 2)), extensions=extensions())
            for i in range(25)
        ]
        chat = [
            ("\n" if rng.random() < 0.3 else " ").join(rng.choice(words) for _ in range(3))
            for _ in range(12)
        ]
        case, whole = rng.random() < 0.3, rng.random() < 0.7
        depth = rng.randint(1, 4)
        for turn in range(4, len(chat)):
            lines = list(reversed(chat[:turn]))
            got = fired(
                {"entries": entries},
                lines,
                depth=depth,
                case_sensitive=case,
                whole_words=whole,
            )
            assert got == _st_loop(entries, lines, depth, case, whole), (turn, lines)
