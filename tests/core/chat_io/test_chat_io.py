"""SillyTavern chat files in and out, on real files and a real store."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.chat_io import (
    ChatIOError,
    export_chat,
    import_st_chat,
    markdown_text,
    parse_send_date,
    parse_st_bytes,
    plain_text,
    st_chat_rows,
)
from app.core.chat_io.dates import st_send_date
from app.core.store import Store

FIXTURES = Path(__file__).parents[2] / "fixtures" / "chats"


@pytest.fixture
def alice(store):
    return store.characters.add({"name": "Alice"})


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _tree(store: Store, chat: int) -> list:
    messages = store.messages.of_chat(chat)

    def below(parent):
        return [
            (m.role, m.text, m.status, m.gen_info, below(m.id))
            for m in messages
            if m.parent_id == parent
        ]

    return below(None)


def _local(*args) -> float:
    return datetime(*args).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-6-2 @21h 09m 51s 363ms", _local(2023, 6, 2, 21, 9, 51, 363000)),
        ("2024-9-28@01h00m00s", _local(2024, 9, 28, 1, 0, 0)),
        ("September 28, 2024 1:00am", _local(2024, 9, 28, 1, 0)),
        ("September 28, 2024 1:03 PM", _local(2024, 9, 28, 13, 3)),
        (
            "2024-09-28T01:02:03.456Z",
            datetime(2024, 9, 28, 1, 2, 3, 456000, tzinfo=timezone.utc).timestamp(),
        ),
        (1727485400000, 1727485400.0),
        ("1727485400000", 1727485400.0),
        (1727485400, 1727485400.0),
        ("next Tuesday", None),
        (None, None),
        (True, None),
    ],
)
def test_send_date_in_every_format(value, expected):
    assert (
        parse_send_date(value) == pytest.approx(expected)
        if expected
        else parse_send_date(value) is None
    )


def test_old_style_file_imports_swipes_roles_dates_and_unknown_fields(store, alice):
    result = import_st_chat(store, FIXTURES / "old_style.jsonl", alice)
    assert (result.messages, result.problems, result.warnings) == (6, [], [])
    path = store.messages.active_path(result.chat_id)
    assert [m.role for m in path] == ["assistant", "user", "assistant", "system"]
    assert [(m.sibling_index, m.sibling_count) for m in path] == [(0, 2), (0, 1), (1, 2), (0, 1)]
    assert path[2].text == "A book about lighthouses."
    assert (
        store.messages.get(store.messages.sibling_ids(path[2].id)[0]).text
        == "A story about dragons."
    )
    assert path[1].created_at == pytest.approx(_local(2023, 6, 2, 21, 10, 5, 12000))
    assert path[2].gen_info == {"model": "pygmalion-6b", "api": "kobold"}
    assert path[2].extra["force_avatar"] == "characters/Alice.png"
    assert store.chats.extra(result.chat_id)["chat_metadata"]["note_depth"] == 4
    assert store.chats.info(result.chat_id).title == "old_style"


def test_new_style_file_keeps_integrity_and_shows_the_chosen_swipe(store, alice):
    result = import_st_chat(store, FIXTURES / "new_style.jsonl", alice)
    path = store.messages.active_path(result.chat_id)
    assert path[-1].text == "Tea, then. I'll put the kettle on."
    assert (path[-1].sibling_index, path[-1].sibling_count) == (2, 3)
    assert path[-1].created_at == 1727485400.0
    assert path[0].created_at == pytest.approx(_local(2024, 9, 28, 1, 0))
    meta = store.chats.extra(result.chat_id)["chat_metadata"]
    assert meta["integrity"] == "5b3c1a9e-7d2f-4c4b-9a51-0e8d2f6c1b77"
    assert path[-1].extra["custom_field"] == {"keep": "me"}


@pytest.mark.parametrize("name", ["old_style.jsonl", "new_style.jsonl"])
def test_reexport_gives_back_what_was_read(store, alice, tmp_path, name):
    original = _lines(FIXTURES / name)
    chat = import_st_chat(store, FIXTURES / name, alice).chat_id
    export_chat(store, chat, tmp_path / "out.jsonl")
    exported = _lines(tmp_path / "out.jsonl")
    assert (
        exported[0]["chat_metadata"] | original[0]["chat_metadata"] == exported[0]["chat_metadata"]
    )  # every metadata field came back (integrity may be added)
    assert exported[0]["create_date"] == original[0]["create_date"]
    assert len(exported) == len(original)
    for before, after in zip(original[1:], exported[1:], strict=True):
        for key, value in before.items():
            if key in ("swipe_info", "extra"):
                continue  # rebuilt (same content plus Parlor's additions)
            assert after[key] == value, key
        assert after["swipes"][after["swipe_id"]] == after["mes"] == before["mes"]
        assert {k: v for k, v in after["extra"].items() if k != "parlor"} == before.get(
            "extra", {}
        ) | {k: v for k, v in after["extra"].items() if k == "model"}


def test_round_trip_through_parlor_keeps_the_whole_tree(store, alice, tmp_path):
    chat = store.chats.new(alice, ["Hi!", "Evening."])
    g = store.messages.active_path(chat)[0].id
    q1 = store.messages.append(chat, g, "user", "Tell me about the lighthouse.")
    a1 = store.messages.append(
        chat,
        q1,
        "assistant",
        "It is old.",
        gen_info={"model": "tiny", "seed": 3, "sampler": {"top_p": 0.9}},
    )
    q2 = store.messages.append(chat, a1, "user", "How old?")
    store.messages.append(chat, q2, "assistant", "Very.", status="stopped")
    store.messages.append(chat, q2, "assistant", "Two hundred years.", status="interrupted")
    store.messages.regenerate(a1, "It is red and white.", "complete")
    store.messages.swipe(store.messages.active_path(chat)[0].id, +1)  # show the second greeting
    store.messages.append(chat, store.messages.active_leaf(chat), "user", "Evening to you.")
    store.messages.swipe(store.messages.active_path(chat)[0].id, -1)
    export_chat(store, chat, tmp_path / "tree.jsonl")
    again = import_st_chat(store, tmp_path / "tree.jsonl", alice)
    assert again.warnings == []
    assert _tree(store, again.chat_id) == _tree(store, chat)
    assert [m.text for m in store.messages.active_path(again.chat_id)] == [
        m.text for m in store.messages.active_path(chat)
    ]
    a1_copy = store.messages.active_path(again.chat_id)[2]
    leaf = store.messages.swipe(a1_copy.id, -1)  # the remembered path below a1 came back too
    assert store.messages.get(leaf).text == "Two hundred years."


def test_branches_under_a_swipe_changed_elsewhere_are_dropped_with_a_warning(
    store, alice, tmp_path
):
    chat = store.chats.new(alice, ["Hi!"])
    q = store.messages.append(chat, store.messages.active_leaf(chat), "user", "Question?")
    a = store.messages.append(chat, q, "assistant", "First answer.")
    store.messages.append(chat, a, "user", "A follow-up that is only in the tree.")
    store.messages.regenerate(a, "Second answer.", "complete")
    rows = st_chat_rows(store, chat)
    rows[3]["swipes"][0] = "Edited in SillyTavern."
    (tmp_path / "edited.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = import_st_chat(store, tmp_path / "edited.jsonl", alice)
    assert any("could not be restored" in w for w in result.warnings)
    texts = [m.text for m in store.messages.of_chat(result.chat_id)]
    assert "Edited in SillyTavern." in texts
    assert "A follow-up that is only in the tree." not in texts


def test_malformed_lines_are_reported_and_imported_only_when_agreed(store, alice):
    source = FIXTURES / "malformed.jsonl"
    with pytest.raises(ChatIOError, match="line 3.*line 5") as caught:
        import_st_chat(store, source, alice)
    assert [p.line for p in caught.value.problems] == [3, 5]
    assert store.chats.all() == []  # nothing half-imported
    seen = []
    with pytest.raises(ChatIOError):
        import_st_chat(store, source, alice, accept=lambda p: seen.extend(p) or False)
    assert [p.line for p in seen] == [3, 5]
    result = import_st_chat(store, source, alice, accept=lambda p: True)
    assert [m.text for m in store.messages.active_path(result.chat_id)] == [
        "Hello!",
        "Are you there?",
        "Still here.",
    ]
    assert import_st_chat(store, source, alice, strict=False).messages == 3


def test_odd_lines_are_problems_or_repaired_with_warnings():
    data = (
        "\n".join(
            [
                "\ufeff"
                + json.dumps({"user_name": "U", "character_name": "C", "chat_metadata": {}}),
                json.dumps({"name": "C", "mes": "kept", "swipes": ["a", "b"], "swipe_id": 7}),
                json.dumps({"name": "C", "swipes": []}),
                json.dumps({"name": "C", "mes": 42}),
                json.dumps({"name": "C", "mes": "x", "swipes": "nope"}),
            ]
        ).encode("utf-8")
        + b"\n\xff\xfe not text\n"
    )
    parsed = parse_st_bytes(data, "odd.jsonl")
    assert parsed.metadata["user_name"] == "U"
    assert [p.line for p in parsed.problems] == [3, 4, 5, 6]
    assert parsed.messages[0].swipes == ["a", "b", "kept"] and parsed.messages[0].swipe_id == 2
    assert "swipe_id 7" in parsed.warnings[0]


def test_an_unreadable_file_is_a_clear_error(store, alice, tmp_path):
    with pytest.raises(ChatIOError, match="nothere.jsonl"):
        import_st_chat(store, tmp_path / "nothere.jsonl", alice)
    with pytest.raises(ChatIOError, match="unknown export format"):
        export_chat(store, store.chats.new(alice, ["Hi"]), tmp_path / "chat.docx")


def test_markdown_and_plain_text_show_the_active_path(store, alice, tmp_path):
    chat = import_st_chat(store, FIXTURES / "old_style.jsonl", alice).chat_id
    store.personas.add("Sam")
    md = markdown_text(store, chat)
    assert md.startswith("# old_style\n")
    assert "**Alice** · 2023-06-02 21:10 · swipe 2 of 2\n\nA book about lighthouses." in md
    assert "A story about dragons." not in md and "*The chat was paused.*" in md
    export_chat(store, chat, tmp_path / "chat.txt")
    text = (tmp_path / "chat.txt").read_text(encoding="utf-8")
    assert text.splitlines()[2] == "You: What are you reading?"  # the file's own name kept
    assert plain_text(store, chat) == text


@st.composite
def _tree_ops(draw):
    """Random chats: each step appends under a random node or swipes a random node."""
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(["append", "swipe"]),
                st.integers(0, 50),
                st.sampled_from(["user", "assistant"]),
                st.text(max_size=8),
            ),
            min_size=1,
            max_size=25,
        )
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=_tree_ops())
def test_any_tree_survives_a_round_trip(store, alice, tmp_path, ops):
    chat = store.chats.new(alice, ["Hi!"])
    for op, pick, role, text in ops:
        ids = [m.id for m in store.messages.of_chat(chat)]
        target = ids[pick % len(ids)]
        if op == "append":
            store.messages.append(chat, target, role, text)
        else:
            store.messages.swipe(target, +1 if pick % 2 else -1)
    export_chat(store, chat, tmp_path / "random.jsonl")
    again = import_st_chat(store, tmp_path / "random.jsonl", alice)
    assert again.warnings == []
    assert _tree(store, again.chat_id) == _tree(store, chat)
    assert [m.text for m in store.messages.active_path(again.chat_id)] == [
        m.text for m in store.messages.active_path(chat)
    ]


def _group_chat(tmp_path: Path) -> Path:
    rows = [
        {"user_name": "Bob", "character_name": "Alice", "create_date": "2024-9-28 @01h 00m 00s"},
        {
            "name": "Alice",
            "is_user": False,
            "is_system": False,
            "mes": "Welcome in.",
            "send_date": "September 28, 2024 1:00am",
        },
        {"name": "Bob", "is_user": True, "is_system": False, "mes": "Hello, both of you."},
        {
            "name": "Carol",
            "is_user": False,
            "is_system": False,
            "mes": "Carol waves.",
            "original_avatar": "Carol.png",
        },
        {
            "name": "System",
            "is_user": False,
            "is_system": False,
            "mes": "Rain begins to fall.",
            "extra": {"type": "narrator"},
        },
        {"name": "Alice", "is_user": False, "is_system": True, "mes": "(hidden note)"},
        {"name": "Bob", "is_user": True, "is_system": False, "mes": "Shall we go in?"},
    ]
    path = tmp_path / "group.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_narrator_and_group_lines_keep_their_speakers_in_the_prompt(store, alice, tmp_path):
    """SillyTavern formatMessageHistoryItem: a narrator line (extra.type "narrator") is sent
    without a name, another member's line under that member's name; is_system lines are
    hidden."""
    from app.core.appdata.settings import Settings
    from app.core.chat.job import prompt_input
    from app.core.prompt import build_prompt, preset
    from app.core.prompt.instruct import instruct_template

    chat = import_st_chat(store, _group_chat(tmp_path), alice).chat_id
    inp = prompt_input(
        {"name": "Alice"}, Settings(), store.messages.active_path(chat), persona=("Bob", "")
    )
    assert [(m.role, m.name, m.text) for m in inp.history] == [
        ("assistant", None, "Welcome in."),
        ("user", None, "Hello, both of you."),
        ("assistant", "Carol", "Carol waves."),
        ("system", None, "Rain begins to fall."),
        ("user", None, "Shall we go in?"),
    ]
    chatml = build_prompt(inp, preset("chatml"), len, 8192, 100).text
    assert "<|im_start|>assistant\nCarol: Carol waves.<|im_end|>" in chatml
    assert "<|im_start|>system\nRain begins to fall.<|im_end|>" in chatml
    assert "hidden note" not in chatml
    instruct = build_prompt(inp, instruct_template("Alpaca"), len, 8192, 100).text
    assert "### Response:\nCarol: Carol waves.\n\n" in instruct
    assert "### Input:\nRain begins to fall.\n\n" in instruct and "Alice: Rain" not in instruct


def test_export_writes_sillytaverns_own_send_date(store, alice, tmp_path):
    """getMessageTimeStamp (RossAscends-mods.js): `June 19, 2023 2:20pm`, local time; it is
    what parseTimestamp (utils.js) in SillyTavern 1.12 reads back, unlike ISO 8601."""
    chat = import_st_chat(store, _group_chat(tmp_path), alice).chat_id
    fresh = store.messages.append(
        chat, store.messages.active_path(chat)[-1].id, "assistant", "Yes."
    )
    rows = st_chat_rows(store, chat)
    assert rows[1]["send_date"] == "September 28, 2024 1:00am"  # as read, given back
    assert rows[-1]["send_date"] == st_send_date(store.messages.get(fresh).created_at)
    assert "T" not in rows[-1]["send_date"] and rows[-1]["send_date"][-2:] in ("am", "pm")
    stamp = _local(2023, 6, 19, 14, 20, 30)
    assert st_send_date(stamp) == "June 19, 2023 2:20pm"
    assert st_send_date(_local(2024, 1, 2, 0, 5)) == "January 2, 2024 12:05am"
    assert parse_send_date(st_send_date(stamp)) == pytest.approx(_local(2023, 6, 19, 14, 20))


def test_parlor_prompt_reader_keeps_narrator_and_group_speakers(tmp_path):
    """`parlor prompt --chat`: the same speakers as an import (formatMessageHistoryItem)."""
    from app.core.prompt.st_chat import read_st_chat

    messages = read_st_chat(_group_chat(tmp_path)).messages
    assert [(m.role, m.name) for m in messages] == [
        ("assistant", "Alice"),
        ("user", "Bob"),
        ("assistant", "Carol"),
        ("system", None),
        ("user", "Bob"),
    ]
