"""Fuzzing: whatever the bytes, the card layer raises CardError and nothing else.

A card that does import must also export, and read back to the same card.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.cards import (
    CardError,
    card_from_bytes,
    card_to_charx_bytes,
    card_to_json_bytes,
    card_to_png_bytes,
    lorebook_from_bytes,
    lorebook_from_json,
    lorebook_to_world_info,
    to_v2_json,
    to_v3_json,
)
from app.core.cards.model import CARD_FIELDS, ROOT_MIRRORS
from tests.card_fixtures import FIXTURES, fx

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAMES = st.sampled_from(["card.png", "card.json", "card.charx", "card", "card.txt"])
SEEDS = [
    fx.v2_png(),
    fx.v3_png(),
    fx.v3_charx(),
    fx.messy_text_json(),
    (FIXTURES / "drifted_types.json").read_bytes(),
    (FIXTURES / "v1_tavern.json").read_bytes(),
    fx.card_png(fx.load_json("v1_tavern.json"), before_idat=True),
]


def import_or_card_error(data: bytes, filename: str):
    try:
        card = card_from_bytes(data, filename)
    except CardError as exc:
        assert str(exc).startswith(f"{filename}: ")
        assert "internal error" not in str(exc)  # the safety net caught a parser bug
        return None
    check_exports(card)
    return card


def check_exports(card) -> None:
    """An imported card exports in every format and reads back as the same card."""
    v3 = to_v3_json(card)
    to_v2_json(card)
    json.dumps(v3)
    again = card_from_bytes(card_to_json_bytes(card), "again.json")
    assert to_v3_json(again) == v3
    again = to_v3_json(card_from_bytes(card_to_png_bytes(card, fx.plain_png()), "again.png"))
    if card.avatar_path:  # a CharX icon becomes `ccdefault:`, the PNG itself
        again["data"].pop("assets", None)
        v3["data"].pop("assets", None)
    assert again == v3
    card_to_charx_bytes(card)


@FUZZ
@given(st.binary(max_size=400), NAMES)
def test_random_bytes(data, filename):
    import_or_card_error(data, filename)


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_real_files(seed, data):
    raw = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 6))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if action == "flip" and raw:
            raw[pos] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[pos:]
        elif action == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif raw:
            del raw[pos : pos + data.draw(st.integers(1, 16))]
    import_or_card_error(bytes(raw), data.draw(NAMES))


_texts = st.text(max_size=10)  # surrogates included: \\u escapes can carry them
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=10,
)
_fields = st.sampled_from(sorted(set(CARD_FIELDS) | set(ROOT_MIRRORS)))
_entry_fields = st.sampled_from(
    [
        "keys",
        "content",
        "extensions",
        "enabled",
        "insertion_order",
        "use_regex",
        "constant",
        "selective",
        "case_sensitive",
        "id",
        "secondary_keys",
        "priority",
        "name",
        "comment",
        "position",
        "key",
        "uid",
        "disable",
        "keysecondary",
        "order",
    ]
)
_entry = st.dictionaries(_entry_fields, _json, max_size=6) | _json
_book = st.fixed_dictionaries(
    {},
    optional={
        "entries": st.lists(_entry, max_size=3)
        | st.dictionaries(_texts, _entry, max_size=3)
        | _json,
        "extensions": _json,
        "name": _json,
        "scan_depth": _json,
        "recursive_scanning": _json,
    },
)
_data = st.dictionaries(_fields, _json, max_size=8).flatmap(
    lambda d: st.fixed_dictionaries({}, optional={"character_book": _book | _json}).map(
        lambda extra: {**d, **extra}
    )
)


@settings(FUZZ, max_examples=600)
@given(
    st.sampled_from(["chara_card_v2", "chara_card_v3", None, "lorebook_v3", "v9", 3]),
    st.one_of(st.none(), st.sampled_from(["2.0", "3.0", "3.5", "x"]), _json),
    _data,
    st.booleans(),
    st.dictionaries(_fields, _json, max_size=3),
)
def test_any_types_in_any_field(spec, version, data, nested, root):
    obj = dict(root)
    if spec is not None:
        obj["spec"] = spec
    if version is not None:
        obj["spec_version"] = version
    if nested:
        obj["data"] = data
    else:
        obj.update(data)
    raw = json.dumps(obj).encode()
    card = import_or_card_error(raw, "typed.json")
    import_or_card_error(fx.card_png(obj), "typed.png")
    if card is not None:
        import_or_card_error(
            fx.charx(obj, {"assets/icon/images/main.png": fx.plain_png()}), "typed.charx"
        )


_chunk_types = st.sampled_from([b"tEXt", b"iTXt", b"zTXt", b"IDAT", b"IHDR", b"IEND", b"abcd"])
_keywords = st.sampled_from([b"chara", b"ccv3", b"CHARA", b"Comment", b""])


@st.composite
def _chunk(draw):
    ctype = draw(_chunk_types)
    body = draw(st.binary(max_size=40))
    if ctype in (b"tEXt", b"zTXt", b"iTXt") and draw(st.booleans()):
        payload = draw(st.sampled_from([fx.b64(fx.load_json("v1_tavern.json")), b"{}", body]))
        if ctype == b"zTXt":
            payload = b"\0" + (zlib.compress(payload) if draw(st.booleans()) else payload)
        elif ctype == b"iTXt":
            flag = draw(st.booleans())
            payload = bytes([flag, 0]) + b"\0\0" + (zlib.compress(payload) if flag else payload)
        body = draw(_keywords) + b"\0" + payload
    chunk = fx.chunk(ctype, body)
    if draw(st.booleans()):
        chunk = chunk[:-4] + b"\0\0\0\0"  # a bad CRC
    return chunk


@FUZZ
@given(st.lists(_chunk(), max_size=6), st.booleans())
def test_random_chunk_sequences(chunks, with_header):
    ihdr, idat, iend = fx.image_chunks()
    head = fx.SIGNATURE + (ihdr if with_header else b"")
    import_or_card_error(head + b"".join(chunks) + idat + iend, "chunks.png")


_zip_names = st.sampled_from(
    [
        "card.json",
        "assets/icon/images/main.png",
        "../card.json",
        "/abs.png",
        "assets/icon/x.webp",
        "a/../../b",
        "x_meta/1.json",
        "C:/evil",
        "dir/",
    ]
)
_zip_bodies = st.sampled_from(
    [
        json.dumps(fx.load_json("v3_full.json")).encode(),
        b"{}",
        b"not json",
        fx.plain_png(),
        b"RIFF\0\0\0\0WEBPVP8 ",
        b"",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_zip_names, _zip_bodies | st.binary(max_size=30)), max_size=5))
def test_random_zips(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are part of the test
        for name, body in entries:
            archive.writestr(zipfile.ZipInfo(name), body)
    import_or_card_error(buffer.getvalue(), "random.charx")


@FUZZ
@given(
    _json
    | st.fixed_dictionaries(
        {"entries": st.dictionaries(_texts, _entry, max_size=3) | st.lists(_entry, max_size=3)}
    )
    | st.fixed_dictionaries({"spec": st.just("lorebook_v3"), "data": _book | _json})
)
def test_any_lorebook_json(obj):
    try:
        book = lorebook_from_json(obj, source="book.json")
    except CardError as exc:
        assert "internal error" not in str(exc)
        return
    wi = lorebook_to_world_info(book)
    json.dumps(wi)
    lorebook_from_json(wi)
    try:
        lorebook_from_bytes(json.dumps(obj).encode(), "book.json")
    except CardError:
        raise AssertionError("a book read from JSON must read from its bytes") from None
