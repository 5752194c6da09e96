"""Issue 21, point 9: lone surrogates, infinities, NaN, huge integers, deep nesting and huge
files in cards and SillyTavern chats: each is read, refused or repaired with a message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.cards import card_from_bytes
from app.core.chat_io import ChatIOError, export_chat, import_st_chat
from app.core.chat_io.dates import parse_send_date
from app.core.prompt.worldinfo.activate import activate_lore
from app.core.store import Store
from tests.hostile import Bounded

HEADER = json.dumps({"user_name": "You", "character_name": "Ada", "create_date": "2024-01-01"})


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "parlor.db")
    yield store
    store.close()


def _chat(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def _line(mes: str, **extra) -> str:
    return json.dumps({"name": "Ada", "is_user": False, "mes": mes, **extra})


def test_a_lone_surrogate_in_a_card_is_replaced_and_the_store_keeps_working(store):
    raw = b'{"spec": "chara_card_v2", "data": {"name": "A\\ud800da", "first_mes": "Hi \\udfff"}}'
    card = card_from_bytes(raw, "odd.json")
    assert card.name == "A\ufffdda" and card.first_mes == "Hi \ufffd"
    assert any("lone UTF-16 surrogates" in w for w in card.warnings)
    first = store.characters.add(card.data)
    store.characters.add({"name": "Next"})  # the connection is not left inside a transaction
    assert store.characters.card(first)["name"] == "A\ufffdda"


def test_a_huge_integer_send_date_is_no_date(store, tmp_path):
    assert parse_send_date(10**400) is None
    path = _chat(
        tmp_path,
        '{"name": "Ada", "is_user": false, "mes": "hello", "send_date": ' + "9" * 400 + "}",
    )
    result = import_st_chat(store, path, store.characters.add({"name": "Ada"}))
    assert result.messages == 1 and "no known format" in " ".join(result.warnings)


def test_a_line_nested_100000_deep_is_a_malformed_line(store, tmp_path):
    path = _chat(tmp_path, _line("kept"), "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ChatIOError) as caught:
        import_st_chat(store, path, store.characters.add({"name": "Ada"}))
    assert "nested too deeply" in str(caught.value.problems[0])
    result = import_st_chat(store, path, store.characters.add({"name": "Ada"}), strict=False)
    assert result.messages == 1


def _import_huge(folder: str) -> str:
    from app.core.chat_io import ChatIOError, import_st_chat
    from app.core.store import Store

    store = Store(Path(folder) / "parlor.db")
    huge = Path(folder) / "huge.jsonl"
    with open(huge, "wb") as f:
        f.truncate(6 * 1024**3)  # sparse: 6 GB on paper, nothing on disk
    try:
        import_st_chat(store, huge, store.characters.add({"name": "Ada"}))
    except ChatIOError as exc:
        return str(exc)
    finally:
        store.close()
    return "imported?"


def test_a_6_gb_chat_is_refused_without_reading_it(tmp_path):
    """Run with 300 MB of address space to spare: reading the file would fail."""
    child = Bounded(extra_mb=300)
    try:
        message = child(_import_huge, str(tmp_path), seconds=30)
    finally:
        child.close()
    assert "too large for a chat" in message


def test_infinity_and_nan_never_reach_an_export(store, tmp_path):
    """SillyTavern reads lines with JSON.parse (`/api/chats/get`: NaN is no JSON, the line is
    dropped) and writes them with JSON.stringify (`/api/chats/save`: 1e999 is Infinity, which
    it writes as null); the same here, so its JSON.parse accepts every exported line."""
    path = _chat(
        tmp_path,
        _line("big", extra={"score": 1e999}).replace("Infinity", "1e999"),
        '{"name": "Ada", "is_user": false, "mes": "nan", "extra": {"x": NaN}}',
    )
    result = import_st_chat(store, path, store.characters.add({"name": "Ada"}), strict=False)
    assert result.messages == 1 and "NaN is not a JSON value" in str(result.problems[0])
    out = tmp_path / "out.jsonl"
    export_chat(store, result.chat_id, out)
    text = out.read_text(encoding="utf-8")
    assert "Infinity" not in text and "NaN" not in text

    def strict(name):
        raise AssertionError(f"{name} in an export")

    rows = [json.loads(line, parse_constant=strict) for line in text.splitlines()]
    assert rows[1]["extra"]["score"] is None


@pytest.mark.parametrize("depth", ["inf", "nan", "-inf", "1e400", "99999999999999999999"])
def test_an_absurd_scan_depth_decorator_does_not_break_replies(depth):
    book = {
        "entries": [
            {
                "keys": ["dragon"],
                "content": f"@@scan_depth {depth}\nDragons.",
                "extensions": {
                    "depth": float("inf"),
                    "position": float("inf"),
                    "role": float("nan"),
                },
            }
        ]
    }
    result = activate_lore(
        book,
        ["a dragon appears"],
        scan_depth=2,
        budget_tokens=500,
        count_tokens=lambda s: len(s.split()),
    )
    assert "Dragons." in result.text


def test_a_huge_time_in_parlors_own_tree_block_is_no_time(store, tmp_path):
    block = {
        "version": 1,
        "nodes": [{"id": 7, "role": "assistant", "text": "other branch", "created_at": 10**400}],
    }
    header = json.dumps(
        {"user_name": "You", "character_name": "Ada", "chat_metadata": {"parlor": block}}
    )
    path = tmp_path / "tree.jsonl"
    path.write_text(header + "\n" + _line("hello") + "\n", encoding="utf-8")
    result = import_st_chat(store, path, store.characters.add({"name": "Ada"}))
    assert result.messages == 2
