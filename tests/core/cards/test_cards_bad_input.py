"""Bad input: each gives one CardError naming the file and what is wrong, nothing half-done."""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
import zlib

import pytest

from app.core.cards import (
    MAX_TEXT_CHUNK,
    CardError,
    card_from_bytes,
    card_to_png_bytes,
    load_card,
    load_lorebook,
    new_card,
    save_card,
)
from tests.card_fixtures import FIXTURES, fx


def error_for(data: bytes, filename: str) -> str:
    with pytest.raises(CardError) as info:
        card_from_bytes(data, filename)
    message = str(info.value)
    assert message.startswith(f"{filename}: ")
    assert info.value.filename == filename
    return message


def test_not_a_png():
    assert "not a PNG file" in error_for(b"hello, I am text", "card.png")


def test_a_jpeg_named_png_says_so():
    assert "JPEG image" in error_for(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "card.png")


def test_empty_file():
    assert "empty" in error_for(b"", "card.png")


@pytest.mark.parametrize("cut", [10, 40, -30, -5])
def test_truncated_png(cut):
    data = fx.v2_png()
    assert "truncated" in error_for(data[:cut], "cut.png")


def test_png_without_a_card_chunk():
    assert "no character card" in error_for(fx.plain_png(), "photo.png")


def test_png_with_other_text_chunks_but_no_card():
    data = fx.png_with([fx.text_chunk("Software", b"GIMP")])
    assert "no character card" in error_for(data, "photo.png")


def test_bad_base64():
    data = fx.png_with([], [fx.text_chunk("chara", b"@@@ not base64 @@@")])
    assert "'chara' chunk is not valid base64" in error_for(data, "bad.png")


def test_bad_utf8():
    data = fx.png_with([], [fx.text_chunk("chara", base64.b64encode(b'{"name": "\xff\xfe"}'))])
    assert "not valid UTF-8" in error_for(data, "bad.png")


def test_bad_utf8_in_a_json_file():
    assert "not valid UTF-8" in error_for(b'{"name": "caf\xe9"}', "bad.json")


def test_bad_json_in_a_chunk():
    data = fx.png_with([], [fx.text_chunk("chara", base64.b64encode(b'{"name": "x",}'))])
    message = error_for(data, "bad.png")
    assert "not valid JSON" in message and "line 1" in message


def test_bad_json_file():
    message = error_for(b'{"spec": "chara_card_v2", "data": {"name": "x"', "bad.json")
    assert "not valid JSON" in message


def test_json_that_is_not_an_object():
    assert "must be a JSON object" in error_for(b'["a", "list"]', "list.json")


def test_json_with_nan_is_refused():
    assert "NaN" in error_for(b'{"name": "x", "extensions": {"v": NaN}}', "nan.json")


def test_json_nested_too_deeply():
    deep = '{"name": "x", "extensions": ' + '{"a": ' * 300 + "1" + "}" * 301
    assert "nested" in error_for(deep.encode(), "deep.json")


def test_json_without_any_card_field():
    assert "no character card fields" in error_for(b'{"hello": "world"}', "x.json")


@pytest.mark.parametrize("name", ["st_world_info.json", "lorebook_v3.json"])
def test_a_lorebook_is_not_a_card(name):
    data = (FIXTURES / name).read_bytes()
    assert "this is a lorebook" in error_for(data, name)


def test_a_v3_lorebook_without_its_spec_is_not_a_card():
    obj = {"data": fx.load_json("lorebook_v3.json")["data"]}
    assert "this is a lorebook" in error_for(json.dumps(obj).encode(), "book.json")


@pytest.mark.parametrize(
    "data,field",
    [
        ({"spec": "chara_card_v2", "data": ["not", "an", "object"]}, "'data' must be an object"),
        ({"spec": "chara_card_v2", "data": {"name": {"first": "A"}}}, "'name' must be text"),
        (
            {"spec": "chara_card_v2", "data": {"name": "A", "alternate_greetings": [{"x": 1}]}},
            "'alternate_greetings'",
        ),
        (
            {"spec": "chara_card_v2", "data": {"name": "A", "extensions": "none"}},
            "'extensions' must be an object",
        ),
        (
            {"spec": "chara_card_v2", "data": {"name": "A", "character_book": ["x"]}},
            "'character_book' must be an object",
        ),
        (
            {"spec": "chara_card_v2", "data": {"name": "A", "character_book": {"entries": 5}}},
            "'character_book.entries' must be a list",
        ),
        (
            {"spec": "chara_card_v2", "data": {"name": "A", "character_book": {"entries": ["x"]}}},
            "'character_book.entries[0]' must be an object",
        ),
        (
            {
                "spec": "chara_card_v2",
                "data": {
                    "name": "A",
                    "character_book": {"entries": [{"keys": [], "enabled": "maybe"}]},
                },
            },
            "'character_book.entries[0].enabled' must be true or false",
        ),
        (
            {"spec": "chara_card_v3", "data": {"name": "A", "creation_date": True}},
            "'creation_date' must be a Unix time",
        ),
        (
            {"spec": "chara_card_v3", "data": {"name": "A", "assets": {"icon": "x"}}},
            "'assets' must be a list",
        ),
    ],
)
def test_wrong_field_types(data, field):
    assert field in error_for(json.dumps(data).encode(), "types.json")


def test_wrong_types_in_a_png_card():
    obj = {"spec": "chara_card_v2", "data": {"name": ["A"]}}
    message = error_for(fx.card_png(obj), "types.png")
    assert "'chara' chunk" in message and "'name' must be text" in message


def test_a_50_mb_text_chunk_is_refused_before_it_is_decoded():
    body = b"chara\0" + b"A" * (50 * 1024 * 1024)
    data = fx.png_with([], [fx.chunk(b"tEXt", body)])
    message = error_for(data, "huge.png")
    assert "over the 50 MB limit" in message


def test_a_text_chunk_declaring_more_than_the_limit_is_refused_from_its_header():
    header = struct.pack(">I", MAX_TEXT_CHUNK + 1) + b"tEXt" + b"chara\0AAAA"
    ihdr, idat, _ = fx.image_chunks()
    assert "over the 50 MB limit" in error_for(fx.SIGNATURE + ihdr + idat + header, "lie.png")


def test_a_compressed_text_chunk_that_inflates_past_the_limit():
    bomb = zlib.compress(b"A" * (MAX_TEXT_CHUNK + 10), 9)
    data = fx.png_with([], [fx.chunk(b"zTXt", b"chara\0\0" + bomb)])
    assert "decompresses to more than 50 MB" in error_for(data, "ztxt.png")


def test_charx_zip_bomb():
    assert "zip bomb" in error_for(fx.charx_bomb(), "bomb.charx")


def test_charx_declaring_more_than_the_total_cap():
    message = error_for(fx.charx_lying_sizes(), "lie.charx")
    assert "would unpack to 300 MB" in message and "zip bomb" in message


def test_charx_entry_holding_more_than_it_declares():
    message = error_for(fx.charx_understated_size(), "small.charx")
    assert "'assets/other/other/x.bin'" in message


@pytest.mark.parametrize(
    "name",
    ["../evil.txt", "assets/../../evil.txt", "/etc/passwd", "C:/Windows/evil.dll", "..\\evil.txt"],
)
def test_charx_entry_with_an_unsafe_path(name):
    assert "unsafe path" in error_for(fx.charx_with_name(name), "evil.charx")


def test_charx_without_card_json():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("other.json", "{}")
    assert "no card.json" in error_for(buffer.getvalue(), "empty.charx")


def test_charx_that_is_not_a_zip():
    assert "not a zip" in error_for(b"just text", "card.charx")


def test_charx_corrupt_zip():
    data = bytearray(fx.v3_charx())
    data[40:80] = b"\0" * 40
    assert "CharX" in error_for(bytes(data), "broken.charx")


def test_charx_avatar_that_is_not_an_image():
    card = fx.load_json("v3_full.json")
    card["data"]["assets"][0]["uri"] = "embeded://assets/icon/images/main.png"
    data = fx.charx(card, {"assets/icon/images/main.png": b"<html>not an image</html>"})
    assert "is not an image" in error_for(data, "bad_icon.charx")


def test_charx_avatar_that_is_a_broken_png():
    card = fx.load_json("v3_full.json")
    card["data"]["assets"][0]["uri"] = "embeded://assets/icon/images/main.png"
    data = fx.charx(card, {"assets/icon/images/main.png": fx.plain_png()[:20]})
    assert "its main icon 'assets/icon/images/main.png' is a broken PNG" in error_for(
        data, "bad_icon.charx"
    )


def test_exporting_with_an_avatar_that_is_not_a_png(tmp_path):
    with pytest.raises(CardError, match="not a PNG image"):
        save_card(new_card("A"), tmp_path / "a.png", avatar_png=b"GIF89a....")
    with pytest.raises(CardError, match="not a PNG image"):
        card_to_png_bytes(new_card("A"), b"\xff\xd8\xff")
    assert not (tmp_path / "a.png").exists()


def test_exporting_with_a_truncated_png_avatar(tmp_path):
    with pytest.raises(CardError, match="truncated"):
        save_card(new_card("A"), tmp_path / "a.png", avatar_png=fx.plain_png()[:30])
    assert list(tmp_path.iterdir()) == []


def test_unknown_output_format(tmp_path):
    with pytest.raises(CardError, match="unknown card format"):
        save_card(new_card("A"), tmp_path / "a.txt")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CardError, match="no such file"):
        load_card(tmp_path / "nope.png")
    with pytest.raises(CardError, match="folder"):
        load_card(tmp_path)


def test_text_that_is_not_a_card():
    assert "expected a PNG, JSON or CharX" in error_for(b"just some notes", "notes.txt")


def test_bad_lorebook_file(tmp_path):
    path = tmp_path / "book.json"
    path.write_text('{"name": "no entries here"}')
    with pytest.raises(CardError, match="book.json: not a lorebook"):
        load_lorebook(path)
