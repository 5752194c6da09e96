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
