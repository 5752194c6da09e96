"""Real files are messier than the specs: each bullet of issue 3 is a test here."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from app.core.cards import (
    SPEC_V1,
    SPEC_V2,
    SPEC_V3,
    card_from_bytes,
    card_to_png_bytes,
    load_card,
    split_decorators,
    to_v2_json,
    to_v3_json,
)
from tests.card_fixtures import FIXTURES, fx

# --- where the card chunk sits, and which one wins ------------------------------------------


@pytest.mark.parametrize("before_idat", [True, False])
def test_card_chunk_before_or_after_the_image_data(before_idat):
    data = fx.card_png(fx.load_json("v2_full.json"), before_idat=before_idat)
    assert card_from_bytes(data, "seraphina.png").name == "Seraphina"


def test_ccv3_wins_over_chara():
    card = card_from_bytes(fx.v3_png(), "hana.png")
    assert card.spec == SPEC_V3
    assert card.group_only_greetings == ["*Hana waves at everyone.* A whole book club!"]


def test_ccv3_wins_even_when_it_comes_second_in_the_file():
    v3 = fx.load_json("v3_full.json")
    v2 = fx.load_json("v2_full.json")
    data = fx.png_with([fx.text_chunk("chara", fx.b64(v2))], [fx.text_chunk("ccv3", fx.b64(v3))])
    assert card_from_bytes(data, "x.png").name == "Hana Kim"


def test_two_chara_chunks_with_different_content_take_the_first():
    first = fx.load_json("v2_full.json")
    second = copy.deepcopy(first)
    second["data"]["name"] = "Impostor"
    data = fx.png_with(
        [fx.text_chunk("chara", fx.b64(first))], [fx.text_chunk("chara", fx.b64(second))]
    )
    card = card_from_bytes(data, "dup.png")
    assert card.name == "Seraphina"
    assert any("2 'chara' chunks" in w for w in card.warnings)


@pytest.mark.parametrize(
    "broken",
    [
        b"!!!not base64!!!",
        base64.b64encode(b"{not json"),
        base64.b64encode(b"\xff\xfe\xfa"),
        fx.b64({"spec": "chara_card_v3", "data": []}),
    ],
)
def test_a_ccv3_that_fails_to_decode_falls_back_to_chara(broken):
    v2 = fx.load_json("v2_full.json")
    data = fx.png_with([], [fx.text_chunk("chara", fx.b64(v2)), fx.text_chunk("ccv3", broken)])
    card = card_from_bytes(data, "fallback.png")
    assert card.name == "Seraphina"
    assert card.spec == SPEC_V2
    assert any("'ccv3'" in w and "used the 'chara' chunk instead" in w for w in card.warnings)


def test_keywords_match_case_insensitively():
    data = fx.png_with([], [fx.text_chunk("Chara", fx.b64(fx.load_json("v2_full.json")))])
    assert card_from_bytes(data, "x.png").name == "Seraphina"


@pytest.mark.parametrize(
    "make",
    [
        lambda obj: fx.itxt_chunk("chara", fx.b64(obj).decode()),
        lambda obj: fx.itxt_chunk("chara", fx.b64(obj).decode(), compressed=True),
        lambda obj: fx.ztxt_chunk("chara", fx.b64(obj)),
    ],
)
def test_card_in_itxt_and_ztxt_chunks(make):
    data = fx.png_with([], [make(fx.load_json("v2_full.json"))])
    assert card_from_bytes(data, "x.png").name == "Seraphina"


def test_text_chunk_is_preferred_to_itxt_for_the_same_keyword():
    v2 = fx.load_json("v2_full.json")
    other = copy.deepcopy(v2)
    other["data"]["name"] = "From iTXt"
    data = fx.png_with(
        [fx.itxt_chunk("chara", fx.b64(other).decode())], [fx.text_chunk("chara", fx.b64(v2))]
    )
    assert card_from_bytes(data, "x.png").name == "Seraphina"


def test_base64_with_line_breaks_and_missing_padding():
    payload = fx.b64(fx.load_json("v1_tavern.json")).rstrip(b"=")
    wrapped = b"\n".join(payload[i : i + 76] for i in range(0, len(payload), 76))
    card = card_from_bytes(fx.png_with([], [fx.text_chunk("chara", wrapped)]), "x.png")
    assert card.name == "Mirabel"


def test_avatar_is_the_png_without_its_card_chunks():
    card = card_from_bytes(fx.v3_png(), "hana.png")
    assert card.avatar.startswith(b"\x89PNG")
    assert b"ccv3" not in card.avatar and b"chara" not in card.avatar


# --- hybrid and flat files ----------------------------------------------------------------


def test_hybrid_prefers_data_over_the_root_copies():
    card = load_card(FIXTURES / "hybrid_st_export.json")
    assert card.spec == SPEC_V2
    assert card.name == "Brom"
    assert card.first_mes == "*CLANG* What do you want, {{user}}?"
    assert card.extra["name"] == "Old Root Name"  # kept as written
    assert card.extra["create_date"] == "2024-1-5 @10h 00m 00s 000ms"


def test_hybrid_root_copies_follow_an_edit_but_stay_as_written_otherwise():
    card = load_card(FIXTURES / "hybrid_st_export.json")
    assert to_v2_json(card) == fx.load_json("hybrid_st_export.json")
    card.name = "Brom the Bold"
    out = to_v2_json(card)
    assert out["name"] == "Brom the Bold" and out["data"]["name"] == "Brom the Bold"
    assert out["first_mes"] == "Root greeting (stale)."


def test_hybrid_field_missing_from_data_is_taken_from_the_root():
    obj = fx.load_json("hybrid_st_export.json")
    del obj["data"]["personality"]
    obj["personality"] = "from the root"
    card = card_from_bytes(json.dumps(obj).encode(), "x.json")
    assert card.personality == "from the root"
    assert any("personality" in w and "top level" in w for w in card.warnings)


def test_v1_tavern_file():
    card = load_card(FIXTURES / "v1_tavern.json")
    assert card.spec == SPEC_V1
    assert card.name == "Mirabel"
    assert card.creator_notes == "Old TavernAI export. Creator's notes go here."
    assert card.extensions["talkativeness"] == "0.5"
    assert card.talkativeness == 0.5
    assert card.group_only_greetings == []


def test_v1_file_that_carries_flat_v2_keys():
    card = load_card(FIXTURES / "v1_flat_v2_keys.json")
    assert card.spec == SPEC_V1
    assert card.alternate_greetings == ["Back again? Sit.", "The kettle's on, if you're staying."]
    assert card.system_prompt.startswith("{{original}}")
    assert card.tags == ["fantasy", "slice of life"]
    assert card.character_book["entries"][0]["keys"] == ["airship"]
    assert card.extensions == {"world": "Skyport"}


def test_v1_export_keeps_every_original_key_at_the_root():
    original = fx.load_json("v1_tavern.json")
    out = to_v3_json(load_card(FIXTURES / "v1_tavern.json"))
    assert {k: out[k] for k in original} == original
    assert out["spec"] == SPEC_V3 and out["data"]["name"] == "Mirabel"


def test_pygmalion_style_flat_file():
    obj = {
        "char_name": "Pyg",
        "char_persona": "Old format.",
        "char_greeting": "Hello.",
        "world_scenario": "",
        "example_dialogue": "",
    }
    card = card_from_bytes(json.dumps(obj).encode(), "pyg.json")
    assert (card.name, card.description, card.first_mes) == ("Pyg", "Old format.", "Hello.")


def test_spec_version_missing_is_read_with_a_warning():
    card = load_card(FIXTURES / "v3_no_spec_version.json")
    assert card.spec == SPEC_V3 and card.name == "Versionless"
    assert any("spec_version is missing" in w for w in card.warnings)


def test_spec_version_newer_than_3_is_read_with_a_warning_and_kept():
    card = load_card(FIXTURES / "v3_newer_version.json")
    assert any("newer" in w for w in card.warnings)
    out = to_v3_json(card)
    assert out == fx.load_json("v3_newer_version.json")
    assert out["data"]["x_v31_field"] == {"something": "new"}


# --- types that drift ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drifted():
    return load_card(FIXTURES / "drifted_types.json")


def test_talkativeness_as_a_string(drifted):
    assert drifted.extensions["talkativeness"] == "0.8"  # extensions are kept as written
    assert drifted.talkativeness == 0.8


def test_creation_date_in_milliseconds(drifted):
    assert drifted.data["creation_date"] == 1700000000.123


def test_creation_date_as_a_date_string(drifted):
    assert drifted.data["modification_date"] == 1709294400


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("2023-6-2 @21h 09m 51s 363ms", 1685740191),
        ("September 28, 2024 1:00am", 1727485200),
        ("2024-03-01", 1709251200),
        ("1700000000", 1700000000),
        ("1700000000000", 1700000000),
    ],
)
def test_date_strings_seen_in_cards(text, seconds):
    obj = {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {"name": "D", "creation_date": text},
    }
    assert card_from_bytes(json.dumps(obj).encode(), "d.json").data["creation_date"] == seconds


def test_unreadable_date_string_is_kept_with_a_warning():
    obj = {"spec": "chara_card_v3", "data": {"name": "D", "creation_date": "last tuesday"}}
    card = card_from_bytes(json.dumps(obj).encode(), "d.json")
    assert card.data["creation_date"] == "last tuesday"
    assert any("creation_date" in w for w in card.warnings)


def test_lorebook_id_as_a_string(drifted):
    assert drifted.character_book["entries"][0]["id"] == "7"


def test_keys_with_an_empty_string(drifted):
    assert drifted.character_book["entries"][0]["keys"] == [""]


def test_secondary_keys_as_comma_separated_text(drifted):
    assert drifted.character_book["entries"][0]["secondary_keys"] == ["alpha", "beta", "gamma"]


def test_entries_as_an_object_keyed_by_number(drifted):
    entries = drifted.character_book["entries"]
    assert isinstance(entries, list)
    assert [e["id"] for e in entries] == ["7", 8]


def test_other_drifted_types(drifted):
    assert drifted.creator_notes == ""
    assert drifted.character_version == "2"
    assert drifted.alternate_greetings == ["Only one greeting, written as text."]
    assert drifted.tags == ["robot", "sci-fi", "test"]
    entry0, entry1 = drifted.character_book["entries"]
    assert entry0["enabled"] is True and entry0["insertion_order"] == 5
    assert entry1["keys"] == ["one", "two"] and entry1["constant"] is True


def test_entries_keyed_past_nine_keep_numeric_order():
    entries = {str(i): {"keys": [f"k{i}"], "content": str(i)} for i in (10, 2, 1, 0)}
    obj = {"spec": "chara_card_v2", "data": {"name": "N", "character_book": {"entries": entries}}}
    book = card_from_bytes(json.dumps(obj).encode(), "n.json").character_book
    assert [e["content"] for e in book["entries"]] == ["0", "1", "2", "10"]


def test_world_info_entries_inside_a_card_are_converted():
    wi = fx.load_json("st_world_info.json")
    obj = {"spec": "chara_card_v2", "data": {"name": "W", "character_book": wi}}
    book = card_from_bytes(json.dumps(obj).encode(), "w.json").character_book
    assert [e["keys"] for e in book["entries"]] == [
        ["Valdris", "the capital"],
        ["/harbou?r/i"],
        ["dragon"],
    ]
    assert book["entries"][2]["enabled"] is False


# --- text ------------------------------------------------------------------------------------


def test_crlf_bom_unicode_escapes_korean_and_emoji():
    card = card_from_bytes(fx.messy_text_json(), "jia.json")
    assert card.name == "지아 Jia"
    assert card.description == "Line one\r\nLine two 😀 and 안녕하세요 🌸"
    assert card.personality == "café lover"
    assert card.first_mes == "안녕, {{user}}!"
    assert card.alternate_greetings == ["👋 Hi!"] and card.tags == ["한국어"]
    again = card_from_bytes(card_to_png_bytes(card, fx.plain_png()), "jia.png")
    assert to_v3_json(again) == to_v3_json(card)


def test_lone_surrogate_escape_is_replaced_and_survives_a_round_trip():
    # Issue 21: SQLite cannot store a lone surrogate, so it becomes U+FFFD, with a warning.
    obj = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "\ud800 odd"}}
    raw = json.dumps(obj).encode()  # ASCII with a \\ud800 escape
    card = card_from_bytes(raw, "odd.json")
    assert card.name == "\ufffd odd" and any("surrogate" in w for w in card.warnings)
    again = card_from_bytes(card_to_png_bytes(card, fx.plain_png()), "odd.png")
    assert again.name == "\ufffd odd"


def test_base64_payload_of_several_hundred_kilobytes():
    big = fx.big_card(600)
    data = fx.card_png(big)
    assert len(data) > 600_000
    card = card_from_bytes(data, "big.png")
    assert card.description == big["data"]["description"]


def test_plain_json_in_a_chara_chunk_is_tolerated():
    raw = json.dumps(fx.load_json("v1_tavern.json")).encode()
    card = card_from_bytes(fx.png_with([], [fx.text_chunk("chara", raw)]), "x.png")
    assert card.name == "Mirabel"
    assert any("plain JSON" in w for w in card.warnings)


# --- macros, decorators, V3 fields ---------------------------------------------------------


def test_macros_are_read_as_written():
    card = load_card(FIXTURES / "v3_full.json")
    assert "{{char}}" in card.description and "<BOT>" in card.description
    assert "<USER>" in card.description and "{{user}}" in card.first_mes
    assert card.system_prompt == "{{original}}\nKeep replies under 200 words."
    assert card.post_history_instructions == "{{original}}"
    assert to_v3_json(card) == fx.load_json("v3_full.json")


def test_nickname_is_what_char_becomes():
    card = load_card(FIXTURES / "v3_full.json")
    assert card.nickname == "Hana" and card.prompt_name == "Hana"
    card.nickname = None
    assert card.prompt_name == "Hana Kim" and "nickname" not in card.data


def test_group_only_greetings_are_kept():
    card = load_card(FIXTURES / "v3_full.json")
    assert card.group_only_greetings == ["*Hana waves at everyone.* A whole book club!"]
    assert to_v2_json(card)["data"]["group_only_greetings"] == card.group_only_greetings


def test_decorators_are_kept_in_the_card_and_stripped_for_the_prompt():
    card = load_card(FIXTURES / "v3_full.json")
    content = card.character_book["entries"][0]["content"]
    assert content.startswith("@@depth 0\n@@role system\n")
    decorators, text = split_decorators(content)
    assert [(d.name, d.value) for d in decorators] == [("depth", "0"), ("role", "system")]
    assert text == "The sequel comes out next week; Hana has a signed copy."
    out = card_from_bytes(card_to_png_bytes(card, fx.plain_png()), "hana.png")
    assert out.character_book["entries"][0]["content"] == content
