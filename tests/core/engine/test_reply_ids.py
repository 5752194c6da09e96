"""The ids a model generated go back into the next prompt where its text holds the reply.

Checked on ids and their texts alone (a SentencePiece-like vocabulary written out by hand);
tests/engine/test_reply_reuse.py checks the same on real llama.cpp.
"""

from __future__ import annotations

from app.core.engine.reply_ids import ReplyIds, token_offsets

# id -> text; the SentencePiece way: a word with its space is one id, bare letters are others
VOCAB = {
    1: b"<s>",
    10: b" light",
    11: b" rain",
    12: b" on",
    13: b" the",
    14: b" road",
    15: b".",
    16: b" Mira",
    17: b":",
    20: b"\n",
    21: b"Mira",
    22: b"User",
    30: b"l",
    31: b"i",
    32: b"g",
    33: b"h",
    34: b"t",
    40: b" And",
    41: b" then",
}
LETTERS = {b"l": 30, b"i": 31, b"g": 32, b"h": 33, b"t": 34}


def pieces(ids):
    return [VOCAB[t] for t in ids]


def tokenize(text: bytes) -> list[int]:
    """A greedy longest-match tokenizer over VOCAB, as a stand-in for llama.cpp's."""
    by_text = {v: k for k, v in VOCAB.items() if k != 1}
    out, pos = [1], 0
    while pos < len(text):
        for end in range(len(text), pos, -1):
            if text[pos:end] in by_text:
                out.append(by_text[text[pos:end]])
                pos = end
                break
        else:
            raise AssertionError(f"no token for {text[pos:]!r}")
    return out


REPLY = [10, 11, 12, 13, 14, 15]  # " light rain on the road."
HEAD = b"Mira:"


def spliced(replies: ReplyIds, text: bytes, start: int = 0) -> list[int]:
    tokens = tokenize(text)
    offsets = token_offsets(text, pieces(tokens))
    assert offsets is not None
    return replies.splice(text, tokens, offsets, start)


def remembered(*replies: list[int]) -> ReplyIds:
    memory = ReplyIds(budget=1000)
    for ids in replies:
        memory.remember(ids, pieces(ids))
    return memory


def test_offsets_allow_the_added_bos_and_a_space_the_tokenizer_put_first():
    text = b"light rain"
    assert token_offsets(text, [b"<s>", b" light", b" rain"]) == [0, 0, 5, 10]
    assert token_offsets(b"<s>x", [b"<s>", b"x"]) == [0, 3, 4]
    assert token_offsets(b"ab c", [b"<s>", b"ab", b" c"]) == [0, 0, 2, 4]
    assert token_offsets(b"<s> a<s> b", [b"<s>", b" a", b"<s>", b" b"]) == [0, 3, 5, 8, 10]
    assert token_offsets(text, [b"<s>", b" light", b" snow"]) is None


def test_a_reply_whose_leading_space_was_stripped_gets_its_own_ids_back():
    """The model wrote " light rain on the road."; the chat stored "light rain on the road.",
    which the tokenizer spells l-i-g-h-t: the prompt gets the generated ids instead."""
    text = HEAD + b"light rain on the road.\nUser:"
    plain = tokenize(text)
    assert plain[1:8] == [21, 17, 30, 31, 32, 33, 34]  # the mismatch the cache would see
    assert spliced(remembered(REPLY), text) == [1, 21, 17, *REPLY, 20, 22, 17]


def test_a_name_the_clean_up_removed_is_skipped_and_a_trimmed_end_is_kept_short():
    """ "Mira: light rain on the road. And then" was stored as "light rain on the road."."""
    generated = [21, 17, *REPLY, 40, 41]
    text = HEAD + b"light rain on the road.\nUser:"
    assert spliced(remembered(generated), text) == [1, 21, 17, *REPLY, 20, 22, 17]


def test_every_earlier_reply_is_put_back_even_when_two_are_the_same():
    text = HEAD + b"light rain on the road.\n" + HEAD + b"light rain on the road.\nUser:"
    got = spliced(remembered(REPLY, REPLY), text)
    assert got == [1, 21, 17, *REPLY, 20, 21, 17, *REPLY, 20, 22, 17]


def test_nothing_changes_before_start_or_where_the_reply_is_not_in_the_prompt():
    text = HEAD + b"light rain on the road.\nUser:"
    assert spliced(remembered(REPLY), text, start=len(text) - 3) == tokenize(text)
    other = HEAD + b"light\nUser:"
    assert spliced(remembered(REPLY), other) == tokenize(other)


def test_a_stretch_shorter_than_three_ids_is_not_taken():
    """ " light rain" (two ids) also occurs by chance in other messages."""
    text = HEAD + b"light rain\nUser:"
    assert spliced(remembered(REPLY), text) == tokenize(text)
    assert spliced(remembered([10, 11]), text) == tokenize(text)
    assert spliced(remembered([10, 11, 12]), HEAD + b"light rain on") == [1, 21, 17, 10, 11, 12]


def test_a_longer_match_wins_the_place_over_an_older_reply_that_begins_the_same():
    """After old messages left, the older " light rain on the road." must not take the place
    of the newer " light rain on the road. And then" with its shorter stretch."""
    newer = [*REPLY, 40, 41]
    text = HEAD + b"light rain on the road. And then\nUser:"
    assert spliced(remembered(REPLY, newer), text) == [1, 21, 17, *newer, 20, 22, 17]


def test_many_replies_that_begin_alike_each_get_their_own_ids_back_after_old_ones_left():
    """A model's replies often open alike. Twenty of them, each " light rain on the road."
    and then its own ending; the prompt has lost the first three. Each reply still in it
    gets its own ids (more than MAX_HITS places hold the same opening)."""
    endings = [[40], [41], [40, 41], [41, 40]]
    made = [[*REPLY, *endings[n % 4], *[40] * (n // 4)] for n in range(20)]
    kept = made[3:]
    text = b"".join(HEAD + b"".join(pieces(r)).lstrip() + b"\n" for r in kept) + b"User:"
    want = [1]
    for r in kept:
        want += [21, 17, *r, 20]
    assert spliced(remembered(*made), text) == [*want, 22, 17]


def test_the_memory_keeps_about_a_context_of_ids_newest_last():
    memory = ReplyIds(budget=10)
    for n in range(5):
        memory.remember([n] * 4, [b"x"] * 4)
    assert [r.ids[0] for r in memory.replies] == [3, 4]
