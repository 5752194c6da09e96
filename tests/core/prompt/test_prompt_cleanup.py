"""Replies cleaned as SillyTavern's `cleanUpMessage` (public/script.js) cleans them."""

import pytest

from app.core.prompt.cleanup import (
    CleanupSettings,
    clean_reply,
    normalize_text,
    trim_to_end_sentence,
)
from app.core.prompt.instruct import shipped_instruct


def clean(raw, **kw):
    settings = CleanupSettings(
        **{k: kw.pop(k) for k in list(kw) if k in CleanupSettings.__dataclass_fields__}
    )
    return clean_reply(raw, char="Alice", user="Bob", settings=settings, **kw)


def test_normalize_text_line_ends_and_trailing_spaces():
    """Generate strips \\r from the prompt; cleanUpMessage's `[^\\S\\r\\n]+$` per line."""
    assert normalize_text("a  \r\nb\t\rc \n") == "a\nb\nc\n"
    assert normalize_text("plain") == "plain"


def test_a_leading_name_is_removed_and_the_raw_text_kept():
    """cleanUpMessage: `Name:` at line starts removed (allow_name2_display off)."""
    out = clean("Alice: *waves* Hello!\nAlice: Again.")
    assert out.text == "*waves* Hello!\nAgain." and out.raw.startswith("Alice: ") and out.changed
    assert clean("Alice: hi", trim_names=False).text == "Alice: hi"


def test_the_reply_stops_where_the_model_writes_the_users_turn():
    """cleanUpMessage: cut at `\\n{name1}:`; a reply that starts as the user is empty."""
    assert clean("Sure.\nBob: and then I").text == "Sure."
    assert clean("Bob: I speak for Bob").text == ""


def test_a_stop_string_split_across_tokens_is_cut():
    """cleanUpMessage: the longest end of the text that starts a stop string is dropped."""
    assert clean("Fine.<|im_e", stops=["<|im_end|>"]).text == "Fine."
    assert clean("Fine.<|im_end|>more", stops=["<|im_end|>"]).text == "Fine."
    assert (
        clean("Fine.<|im_e", stops=["<|im_end|>"], drop_partial_stops=False).text == "Fine.<|im_e"
    )


def test_instruct_sequences_the_model_wrote_are_removed():
    """cleanUpMessage: cut at stop_sequence and input_sequence; output sequence lines go."""
    chatml = shipped_instruct()["ChatML"]
    assert clean("Hello<|im_end|>\n<|im_start|>user\nhi", instruct=chatml).text == "Hello"
    alpaca = shipped_instruct()["Alpaca"]
    assert (
        clean("### Response:\nHi there\n### Instruction:\nmore", instruct=alpaca).text == "Hi there"
    )


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("She smiled. Then she", "She smiled."),
        ("Wait! What *", "Wait! What"),
        ("no end at all  ", "no end at all"),
        ('He said "yes" and', 'He said "yes"'),
        ("ok 🙂 and", "ok"),  # an end mark after a space goes with the space, as in ST
        ("ok🙂 and", "ok🙂"),
    ],
)
def test_trim_incomplete_sentences(raw, expected):
    """trimToEndSentence (public/scripts/utils.js)."""
    assert trim_to_end_sentence(raw) == expected


def test_incomplete_sentences_and_single_line_are_off_by_default():
    """power_user defaults: trim_sentences false, single_line false, trim_spaces true."""
    assert clean("  One. Two and  ").text == "One. Two and"
    assert clean("One. Two and", trim_incomplete_sentences=True).text == "One."
    assert clean("\nFirst line\nsecond", single_line=True).text == "First line"


def test_whitespace_alone_does_not_count_as_a_change():
    """A reply that only loses its leading space is stored as generated (KV cache reuse)."""
    out = clean(" Hello there. ")
    assert out.text == "Hello there." and not out.changed
