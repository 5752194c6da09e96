"""Import then export gives the original back (modulo the spec upgrade): property-tested."""

from __future__ import annotations

import base64
import copy
import io
import json
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.cards import (
    card_from_bytes,
    card_to_charx_bytes,
    card_to_png_bytes,
    load_card,
    new_card,
    placeholder_png,
    save_card,
    to_v2_json,
    to_v3_json,
)
from app.core.cards.model import CARD_FIELDS, ROOT_MIRRORS, TEXT_FIELDS
from app.core.cards.png import chunk_keyword, image_size, read_chunks
from tests.card_fixtures import FIXTURES, fx

ENTRY_FIELDS = {
    "keys",
    "content",
    "extensions",
    "enabled",
    "insertion_order",
    "use_regex",
    "case_sensitive",
    "constant",
    "name",
    "priority",
    "id",
    "comment",
    "selective",
    "secondary_keys",
    "position",
}
BOOK_FIELDS = {
    "name",
    "description",
    "scan_depth",
    "token_budget",
    "recursive_scanning",
    "extensions",
    "entries",
}

# --- strategies ----------------------------------------------------------------------------

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24) | st.sampled_from(
    [
        "{{char}} and {{user}}",
        "<BOT> greets <USER>",
        "안녕하세요 🌸",
        "line\r\nline",
        "@@depth 0\n@@@instruct_depth 0\nlore",
        "{{original}}",
        "",
    ]
)
keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
extensions = st.dictionaries(keys, values, max_size=4)


def with_unknown(base: st.SearchStrategy, known: set) -> st.SearchStrategy:
    """`base` dicts plus a few keys no spec knows, holding any JSON."""
    unknown = st.dictionaries(keys.filter(lambda k: k not in known), values, max_size=2)
    return st.tuples(base, unknown).map(lambda pair: {**pair[1], **pair[0]})


def entries(v3: bool) -> st.SearchStrategy:
    required = {
        "keys": st.lists(texts, max_size=3),
        "content": texts,
        "extensions": extensions,
        "enabled": st.booleans(),
        "insertion_order": st.integers(-1000, 1000),
    }
    if v3:
        required["use_regex"] = st.booleans()
    optional = {
        "case_sensitive": st.booleans(),
        "constant": st.booleans(),
        "name": texts,
        "priority": st.integers(0, 100),
        "id": st.integers(0, 10**6) | texts,
        "comment": texts,
        "selective": st.booleans(),
        "secondary_keys": st.lists(texts, max_size=3),
        "position": st.sampled_from(["before_char", "after_char"]),
    }
    return with_unknown(st.fixed_dictionaries(required, optional=optional), ENTRY_FIELDS)


def books(v3: bool) -> st.SearchStrategy:
    base = st.fixed_dictionaries(
        {"entries": st.lists(entries(v3), max_size=3), "extensions": extensions},
        optional={
            "name": texts,
            "description": texts,
            "scan_depth": st.integers(0, 50),
            "token_budget": st.integers(0, 5000),
            "recursive_scanning": st.booleans(),
        },
    )
    return with_unknown(base, BOOK_FIELDS)


def card_data(v3: bool) -> st.SearchStrategy:
    required = {key: texts for key in TEXT_FIELDS}
    required.update(
        alternate_greetings=st.lists(texts, max_size=3),
        tags=st.lists(texts, max_size=3),
        extensions=extensions,
    )
    optional = {"character_book": books(v3)}
    if v3:
        required["group_only_greetings"] = st.lists(texts, max_size=2)
        asset = st.fixed_dictionaries(
            {
                "type": st.sampled_from(["icon", "background", "x_a"]),
                "uri": texts,
                "name": texts,
                "ext": texts,
            }
        )
        optional.update(
            nickname=texts,
            source=st.lists(texts, max_size=2),
            creator_notes_multilingual=st.dictionaries(
                st.sampled_from(["en", "ko", "ja"]), texts, max_size=2
            ),
            creation_date=st.integers(0, 10**10),
            modification_date=st.integers(0, 10**10),
            assets=st.lists(asset, max_size=3),
        )
    return with_unknown(st.fixed_dictionaries(required, optional=optional), set(CARD_FIELDS))


def cards(v3: bool) -> st.SearchStrategy:
    base = st.fixed_dictionaries(
        {
            "spec": st.just("chara_card_v3" if v3 else "chara_card_v2"),
            "spec_version": st.just("3.0" if v3 else "2.0"),
            "data": card_data(v3),
        }
    )
    return with_unknown(base, {"spec", "spec_version", "data", *ROOT_MIRRORS})


def upgraded(v2: dict) -> dict:
    """What V3 export of a V2 card must be: the spec label, plus V3's required fields."""
    out = copy.deepcopy(v2)
    out.update(spec="chara_card_v3", spec_version="3.0")
    out["data"].setdefault("group_only_greetings", [])
    for entry in (out["data"].get("character_book") or {}).get("entries", []):
        entry.setdefault("use_regex", False)
    return out


def read(obj: dict, name: str = "card.json"):
    return card_from_bytes(json.dumps(obj, ensure_ascii=False).encode("utf-8"), name)


PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- properties ------------------------------------------------------------------------------


@PROPERTY
@given(cards(v3=True))
def test_v3_json_round_trip_is_exact(obj):
    assert to_v3_json(read(obj)) == obj


@PROPERTY
@given(cards(v3=False))
def test_v2_json_round_trip_is_exact_and_upgrades_cleanly(obj):
    card = read(obj)
    assert to_v2_json(card) == obj
    assert to_v3_json(card) == upgraded(obj)


@PROPERTY
@given(cards(v3=True) | cards(v3=False))
def test_png_round_trip(obj):
    card = read(obj)
    data = card_to_png_bytes(card, fx.plain_png())
    again = card_from_bytes(data, "card.png")
    assert to_v3_json(again) == to_v3_json(card)
    chunks = {chunk_keyword(c): c for c in read_chunks(data, "card.png") if chunk_keyword(c)}
    chara = bytes(chunks["chara"].data).partition(b"\0")[2]
    assert json.loads(base64.b64decode(chara)) == to_v2_json(card)


@PROPERTY
@given(cards(v3=True) | cards(v3=False))
def test_charx_round_trip(obj):
    card = read(obj)
    card.avatar = fx.plain_png()
    again = card_from_bytes(card_to_charx_bytes(card), "card.charx")
    expected, got = to_v3_json(card), to_v3_json(again)
    assets = got["data"].pop("assets")
    assert any(
        a.get("type") == "icon" and a["uri"] == "embeded://assets/icon/images/main.png"
        for a in assets
    )
    expected["data"].pop("assets", None)
    assert got == expected
    assert again.avatar == card.avatar


@PROPERTY
@given(
    with_unknown(
        st.fixed_dictionaries(
            {"name": texts, "description": texts, "first_mes": texts},
            optional={
                "personality": texts,
                "scenario": texts,
                "mes_example": texts,
                "creatorcomment": texts,
                "talkativeness": st.sampled_from(["0.5", 0.5, 1]),
                "alternate_greetings": st.lists(texts, max_size=2),
            },
        ),
        {"spec", "spec_version", "data", *ROOT_MIRRORS},
    )
)
def test_v1_round_trip_keeps_every_key_at_the_root(obj):
    out = to_v3_json(read(obj))
    assert {key: out[key] for key in obj} == obj
    assert out["data"]["name"] == obj["name"]


# --- fixtures and exports --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["v2_full.json", "hybrid_st_export.json"])
def test_v2_fixtures_round_trip(name):
    card = load_card(FIXTURES / name)
    assert to_v2_json(card) == fx.load_json(name)


@pytest.mark.parametrize("name", ["v3_full.json", "v3_newer_version.json"])
def test_v3_fixtures_round_trip(name):
    assert to_v3_json(load_card(FIXTURES / name)) == fx.load_json(name)


def test_every_field_of_the_full_v2_fixture_survives_png_and_charx(tmp_path):
    card = load_card(FIXTURES / "v2_full.json")
    for suffix in (".png", ".charx", ".json"):
        save_card(card, tmp_path / f"out{suffix}")
        again = load_card(tmp_path / f"out{suffix}")
        got = to_v3_json(again)
        got["data"].pop("assets", None)
        assert got == upgraded(fx.load_json("v2_full.json")), suffix


def test_png_export_writes_chara_then_ccv3_before_iend_and_drops_old_ones():
    old = fx.load_json("v1_tavern.json")
    image = fx.png_with(
        [fx.text_chunk("ccv3", b"old"), fx.text_chunk("Software", b"Krita")],
        [fx.itxt_chunk("chara", "old"), fx.ztxt_chunk("CCV3", b"old")],
    )
    card = read(fx.load_json("v3_full.json"))
    out = read_chunks(card_to_png_bytes(card, image), "out.png")
    names = [(c.type, chunk_keyword(c)) for c in out]
    assert names == [
        (b"IHDR", None),
        (b"tEXt", "software"),
        (b"IDAT", None),
        (b"tEXt", "chara"),
        (b"tEXt", "ccv3"),
        (b"IEND", None),
    ]
    assert old  # the old payloads are gone, other text chunks stay


def test_png_round_trip_keeps_other_chunks_of_the_image():
    extra = fx.text_chunk("chara-ext-asset_:0", base64.b64encode(b"risu asset"))
    data = fx.png_with([], [extra, fx.text_chunk("chara", fx.b64(fx.load_json("v2_full.json")))])
    card = card_from_bytes(data, "risu.png")
    again = card_to_png_bytes(card, card.avatar)
    assert extra in again


def test_card_without_an_avatar_gets_a_plain_256px_png(tmp_path):
    warnings = save_card(new_card("Nobody"), tmp_path / "nobody.png")
    card = load_card(tmp_path / "nobody.png")
    assert image_size(card.avatar) == (256, 256)
    assert card.name == "Nobody" and warnings == []
    assert image_size(placeholder_png(card)) == (256, 256)


def test_avatar_png_argument_replaces_the_image(tmp_path):
    card = load_card(FIXTURES / "v2_full.json")
    custom = fx.png_with()
    save_card(card, tmp_path / "a.png", avatar_png=custom)
    assert load_card(tmp_path / "a.png").avatar == custom


def test_charx_round_trip_keeps_assets_and_the_icon(tmp_path):
    card = card_from_bytes(fx.v3_charx(), "hana.charx")
    assert card.avatar == fx.plain_png()
    assert card.avatar_path == "assets/icon/images/main.png"
    assert set(card.embedded) == {
        "assets/background/images/shop.webp",
        "assets/other/images/sticker.png",
        "x_meta/1.json",
    }
    save_card(card, tmp_path / "copy.charx")
    again = load_card(tmp_path / "copy.charx")
    assert to_v3_json(again) == to_v3_json(card)
    assert again.embedded == card.embedded and again.avatar == card.avatar
    with zipfile.ZipFile(io.BytesIO((tmp_path / "copy.charx").read_bytes())) as archive:
        assert archive.namelist()[0] == "card.json"


def test_charx_to_png_makes_the_main_icon_the_png_and_warns_about_assets(tmp_path):
    card = card_from_bytes(fx.v3_charx(), "hana.charx")
    warnings = save_card(card, tmp_path / "hana.png")
    assert any("embedded CharX file" in w for w in warnings)
    again = load_card(tmp_path / "hana.png")
    assert again.data["assets"][0] == {
        "type": "icon",
        "uri": "ccdefault:",
        "name": "main",
        "ext": "png",
    }
    assert again.avatar == card.avatar


def test_webp_icon_cannot_be_a_png_card_image(tmp_path):
    card = new_card("W")
    card.avatar = b"RIFF\x10\0\0\0WEBPVP8 "
    warnings = save_card(card, tmp_path / "w.png")
    assert any("WEBP image" in w for w in warnings)
    assert image_size(load_card(tmp_path / "w.png").avatar) == (256, 256)


def test_json_export_v3_by_default_and_v2_on_request(tmp_path):
    card = load_card(FIXTURES / "v2_full.json")
    save_card(card, tmp_path / "v3.json")
    save_card(card, tmp_path / "v2.json", v2=True)
    assert json.loads((tmp_path / "v3.json").read_text("utf-8"))["spec"] == "chara_card_v3"
    assert json.loads((tmp_path / "v2.json").read_text("utf-8")) == fx.load_json("v2_full.json")


def test_edits_are_exported():
    card = load_card(FIXTURES / "v3_full.json")
    card.name = "Hana Park"
    card.alternate_greetings = [*card.alternate_greetings, "New greeting"]
    card.tags = ["edited"]
    card.character_book["entries"][0]["content"] = "changed"
    out = to_v3_json(read(to_v3_json(card)))
    assert out["data"]["name"] == "Hana Park"
    assert out["data"]["alternate_greetings"][-1] == "New greeting"
    assert out["data"]["tags"] == ["edited"]
    assert out["data"]["character_book"]["entries"][0]["content"] == "changed"


def test_copy_is_independent():
    card = load_card(FIXTURES / "v3_full.json")
    twin = card.copy()
    twin.character_book["entries"].clear()
    assert len(card.character_book["entries"]) == 2
