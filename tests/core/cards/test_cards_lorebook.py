"""Standalone lorebooks: V3 `lorebook_v3`, V2/V3 character books and SillyTavern world info."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.cards import (
    CardError,
    load_card,
    load_lorebook,
    lorebook_from_bytes,
    lorebook_from_json,
    lorebook_to_json,
    lorebook_to_world_info,
    save_lorebook,
    split_decorators,
)
from app.core.cards.lorebook import WI_DEFAULTS, WI_TO_EXT
from tests.card_fixtures import FIXTURES, fx


def test_world_info_entries_keyed_by_number_become_a_list_in_numeric_order():
    book = lorebook_from_json(fx.load_json("st_world_info.json"), name="Valdris")
    assert book["name"] == "Valdris"
    assert [e["id"] for e in book["entries"]] == [0, 1, 3]


def test_world_info_fields_map_like_sillytavern():
    book = lorebook_from_json(fx.load_json("st_world_info.json"))
    dragon = book["entries"][2]
    assert dragon["keys"] == ["dragon"] and dragon["secondary_keys"] == ["red", "ancient"]
    assert dragon["enabled"] is False and dragon["constant"] is True
    assert dragon["insertion_order"] == 90 and dragon["position"] == "after_char"
    assert dragon["extensions"]["position"] == 4
    assert dragon["extensions"]["probability"] == 50
    assert dragon["extensions"]["group"] == "monsters"
    assert dragon["extensions"]["some_extension"] == {"kept": True}
    assert dragon["use_regex"] is False
    capital = book["entries"][0]
    assert capital["position"] == "before_char"
    assert capital["extensions"]["parlor_world_info"] == {
        "characterFilter": {"isExclude": False, "names": [], "tags": []}
    }


def test_world_info_round_trip_is_exact():
    wi = fx.load_json("st_world_info.json")
    assert lorebook_to_world_info(lorebook_from_json(wi)) == wi


def test_book_to_world_info_fills_sillytavern_defaults():
    book = lorebook_from_json(fx.load_json("lorebook_v3.json"))
    wi = lorebook_to_world_info(book)
    entry = wi["entries"]["1"]
    assert entry["uid"] == 1 and entry["key"] == ["harbour", "port"]
    assert entry["keysecondary"] == ["winter"] and entry["position"] == 1
    assert entry["disable"] is False and entry["order"] == 1
    for key, value in WI_DEFAULTS.items():
        if key not in ("caseSensitive",):
            assert entry[key] == value, key
    assert entry["caseSensitive"] is False
    assert entry["extensions"]["parlor_book_entry"] == {"name": "harbour", "priority": 3}


def test_book_to_world_info_and_back_keeps_the_book():
    book = lorebook_from_json(fx.load_json("lorebook_v3.json"))
    again = lorebook_from_json(lorebook_to_world_info(book))
    original = book["entries"][0]
    entry = again["entries"][0]
    for key, value in original.items():
        if key != "extensions":
            assert entry[key] == value, key
    assert entry["extensions"]["position"] == 1


def test_card_book_with_string_and_missing_ids_gets_unique_uids():
    book = {
        "entries": [
            {"keys": ["a"], "content": "A", "id": "5"},
            {"keys": ["b"], "content": "B"},
            {"keys": ["c"], "content": "C", "id": "slug"},
            {"keys": ["d"], "content": "D", "id": 5},
        ]
    }
    wi = lorebook_to_world_info(book)
    uids = [e["uid"] for e in wi["entries"].values()]
    assert len(set(uids)) == 4 and uids[0] == 5
    assert list(wi["entries"]) == [str(u) for u in uids]
    slug = [e for e in wi["entries"].values() if e["content"] == "C"][0]
    assert slug["extensions"]["parlor_book_entry"]["id"] == "slug"
    back = {e["content"]: e["id"] for e in lorebook_from_json(wi)["entries"]}
    assert back == {"A": 5, "B": 0, "C": "slug", "D": 5}


def test_v3_lorebook_file_and_export():
    obj = fx.load_json("lorebook_v3.json")
    book = lorebook_from_json(obj)
    assert book == obj["data"]
    assert lorebook_to_json(book) == obj


def test_a_cards_book_can_be_read_as_a_lorebook():
    book = lorebook_from_json(fx.load_json("v2_full.json"))
    assert book["name"] == "Eldoria" and len(book["entries"]) == 2
    assert lorebook_from_bytes(fx.v2_png(), "seraphina.png")["name"] == "Eldoria"


def test_lorebook_files(tmp_path):
    book = load_lorebook(FIXTURES / "st_world_info.json")
    assert book["name"] == "st_world_info"
    save_lorebook(book, tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text("utf-8")) == fx.load_json(
        "st_world_info.json"
    )
    save_lorebook(book, tmp_path / "v3.json", world_info=False)
    assert load_lorebook(tmp_path / "v3.json") == book


@pytest.mark.parametrize(
    "obj,message",
    [
        ([1, 2], "must be a JSON object"),
        ({"name": "x"}, "no 'entries'"),
        ({"entries": "nope"}, "must be a list"),
        ({"entries": {"0": "text"}}, "must be an object"),
        ({"spec": "lorebook_v3", "data": []}, "'data' must be an object"),
        ({"spec": "chara_card_v2", "data": {"name": "x"}}, "has no lorebook"),
    ],
)
def test_bad_lorebooks(obj, message):
    with pytest.raises(CardError, match=message):
        lorebook_from_json(obj, source="book.json")


# --- decorators ------------------------------------------------------------------------------


def test_split_decorators_with_fallbacks_and_values():
    content = "@@risu_only 4\n@@@activate_only_after 4\n@@dont_activate\n\nThe text\n@@not one"
    decorators, text = split_decorators(content)
    assert [(d.name, d.value, d.fallback) for d in decorators] == [
        ("risu_only", "4", False),
        ("activate_only_after", "4", True),
        ("dont_activate", None, False),
    ]
    assert text == "The text\n@@not one"


def test_content_without_decorators_is_unchanged():
    assert split_decorators("plain\n@@depth 0") == ([], "plain\n@@depth 0")
    assert split_decorators("") == ([], "")


def test_decorators_with_crlf():
    decorators, text = split_decorators("@@depth 2\r\n@@role user\r\nHello")
    assert [(d.name, d.value) for d in decorators] == [("depth", "2"), ("role", "user")]
    assert text == "Hello"


def test_decorators_are_kept_through_world_info():
    card = load_card(FIXTURES / "v3_full.json")
    wi = lorebook_to_world_info(card.character_book)
    assert wi["entries"]["0"]["content"].startswith("@@depth 0\n")


# --- property: world info keeps everything ------------------------------------------------

_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | _texts
_wi_known = {
    "uid",
    "key",
    "keysecondary",
    "comment",
    "content",
    "constant",
    "selective",
    "order",
    "disable",
    "position",
    "addMemo",
    "extensions",
    *WI_TO_EXT,
}


@st.composite
def world_info(draw):
    entries = {}
    for uid in draw(st.lists(st.integers(0, 500), unique=True, max_size=4)):
        entry = {
            "uid": uid,
            "key": draw(st.lists(_texts, max_size=3)),
            "keysecondary": draw(st.lists(_texts, max_size=2)),
            "comment": draw(_texts),
            "content": draw(_texts),
            "constant": draw(st.booleans()),
            "selective": draw(st.booleans()),
            "order": draw(st.integers(0, 1000)),
            "disable": draw(st.booleans()),
            "position": draw(st.integers(0, 7)),
            "addMemo": draw(st.booleans()),
        }
        for key in WI_TO_EXT:
            entry[key] = copy.deepcopy(WI_DEFAULTS.get(key, 0))
            entry[key] = draw(st.just(entry[key]) | _scalars)
        entry.update(
            draw(st.dictionaries(_texts.filter(lambda k: k not in _wi_known), _scalars, max_size=2))
        )
        if draw(st.booleans()):
            entry["extensions"] = draw(st.dictionaries(_texts, _scalars, max_size=2))
        entries[str(uid)] = entry
    top = draw(st.dictionaries(_texts.filter(lambda k: k != "entries"), _scalars, max_size=2))
    return {**top, "entries": entries}


@settings(max_examples=150, deadline=None)
@given(world_info())
def test_world_info_round_trip_property(wi):
    assert lorebook_to_world_info(lorebook_from_json(wi)) == wi
