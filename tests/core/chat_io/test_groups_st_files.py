"""SillyTavern group files (`groups/*.json`, `group chats/*.jsonl`) in and out."""

from __future__ import annotations

import json

import pytest

from app.core.chat_io.errors import ChatIOError
from app.core.chat_io.st_group import export_st_group, import_st_group
from app.core.store import Store
from app.core.store.groups import CardMode, GroupSettings, Strategy


def _write_st_folder(root):
    """A data folder as SillyTavern 1.12 writes it: `createGroup`'s fields, and a chat of
    message lines only (`saveGroupChat`), each reply with `name` and `original_avatar`."""
    (root / "groups").mkdir(parents=True)
    (root / "group chats").mkdir()
    group = {
        "id": "1727000000000",
        "name": "Inn",
        "members": ["Ann.png", "bob_2.png"],
        "avatar_url": "img/five.png",
        "allow_self_responses": True,
        "hideMutedSprites": True,
        "activation_strategy": 1,
        "generation_mode": 1,
        "disabled_members": ["bob_2.png"],
        "chat_metadata": {"note_prompt": "Rain."},
        "fav": False,
        "chat_id": "2024-9-20 @10h 00m",
        "chats": ["2024-9-20 @10h 00m"],
        "auto_mode_delay": 5,
        "generation_mode_join_prefix": "<FIELDNAME>:",
        "generation_mode_join_suffix": "",
        "date_last_chat": 1727000000000,
    }
    (root / "groups" / "1727000000000.json").write_text(json.dumps(group))
    lines = [
        {
            "name": "Ann",
            "is_user": False,
            "is_system": False,
            "send_date": "2024-9-20 @10h",
            "mes": "Welcome.",
            "original_avatar": "Ann.png",
            "extra": {},
        },
        {"name": "Uma", "is_user": True, "is_system": False, "mes": "Hi both.", "extra": {}},
        {
            "name": "Bob",
            "is_user": False,
            "is_system": False,
            "mes": "Hey!",
            "original_avatar": "bob_2.png",
            "swipe_id": 1,
            "swipes": ["Hello.", "Hey!"],
            "swipe_info": [{"send_date": "x", "extra": {}}, {"send_date": "y", "extra": {}}],
            "extra": {"model": "m"},
        },
        {
            "name": "Ann",
            "is_user": False,
            "is_system": False,
            "mes": "Old-style line.",
            "extra": {},
        },  # written before `original_avatar` existed: matched by name
    ]
    (root / "group chats" / "2024-9-20 @10h 00m.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    return root / "groups" / "1727000000000.json"


def test_a_sillytavern_group_chat_keeps_each_lines_speaker(store, tmp_path):
    ann = store.characters.add({"name": "Ann"})
    result = import_st_group(store, _write_st_folder(tmp_path / "st"))
    group = store.groups.get(result.group_id)
    bob = group.members[1].character_id
    assert [m.name for m in group.members] == ["Ann", "Bob"] and group.members[1].muted
    assert group.members[0].character_id == ann  # found in the library by name
    assert result.added_characters == ["Bob"]  # not there: added, and said so
    assert "added with only their names: Bob" in result.warnings[0]
    assert group.settings == GroupSettings(
        strategy=Strategy.LIST,
        card_mode=CardMode.JOIN,
        join_prefix="<FIELDNAME>:",
        allow_self_responses=True,
    )
    path = store.messages.active_path(result.chat_ids[0])
    assert [(m.text, m.speaker_id) for m in path] == [
        ("Welcome.", ann),
        ("Hi both.", None),
        ("Hey!", bob),
        ("Old-style line.", ann),
    ]
    assert [store.messages.get(i).text for i in store.messages.sibling_ids(path[2].id)] == [
        "Hello.",
        "Hey!",
    ]
    assert all(
        store.messages.get(i).speaker_id == bob for i in store.messages.sibling_ids(path[2].id)
    )


def _snapshot(store: Store, group_id: int):
    group = store.groups.get(group_id)
    chats = []
    for chat in store.groups.chats(group_id):
        path = store.messages.active_path(chat.id)
        names = store.groups.speaker_names({m.speaker_id for m in path if m.speaker_id})
        chats.append(
            (
                chat.title,
                [
                    (
                        m.role,
                        m.text,
                        names.get(m.speaker_id),
                        m.sibling_index,
                        [store.messages.get(i).text for i in store.messages.sibling_ids(m.id)],
                    )
                    for m in path
                ],
            )
        )
    return (group.name, [(m.name, m.muted) for m in group.members], group.settings, chats)


def test_export_then_import_is_lossless_with_swipes(tmp_path):
    """Written as SillyTavern's `saveGroupChat` and `_save` would, read back the same."""
    src = Store(tmp_path / "a.db")
    ids = [src.characters.add({"name": n}) for n in ("Ann", "Bob", "Cid")]
    gid = src.groups.create(
        "Inn",
        ids,
        GroupSettings(strategy=Strategy.MANUAL, card_mode=CardMode.JOIN_MUTED, join_suffix="(end)"),
    )
    src.groups.set_muted(gid, ids[2], True)
    chat = src.groups.new_chat(gid, [(ids[0], "Welcome."), (ids[1], "Evening.")], "First")
    user = src.messages.append(chat, src.messages.active_leaf(chat), "user", "Stories?")
    first = src.groups.append_reply(chat, user, ids[2], "Once...", "complete")
    src.groups.append_reply(chat, user, ids[2], "Long ago...", "complete")
    src.messages.swipe(src.messages.active_leaf(chat), -1)  # the first swipe shown
    src.groups.append_reply(chat, first, ids[0], "Go on.", "complete")
    src.groups.new_chat(gid, [(ids[1], "Another night.")], "Second")
    files = export_st_group(src, gid, tmp_path / "out")
    assert sorted(f.name for f in files) == [f"{gid}.json", "First.jsonl", "Second.jsonl"]
    raw = json.loads(files[0].read_text())
    assert raw["members"] == ["Ann.png", "Bob.png", "Cid.png"]
    assert raw["disabled_members"] == ["Cid.png"] and raw["activation_strategy"] == 2
    line = json.loads((tmp_path / "out/group chats/First.jsonl").read_text().splitlines()[3])
    assert (line["name"], line["original_avatar"], line["swipes"], line["swipe_id"]) == (
        "Cid",
        "Cid.png",
        ["Once...", "Long ago..."],
        0,
    )

    dst = Store(tmp_path / "b.db")
    for n in ("Ann", "Bob", "Cid"):
        dst.characters.add({"name": n})
    back = import_st_group(dst, files[0])
    assert back.added_characters == []
    assert _snapshot(dst, back.group_id) == _snapshot(src, gid)
    src.close()
    dst.close()


def test_a_bad_group_file_is_refused_with_its_reason(store, tmp_path):
    bad = tmp_path / "g.json"
    bad.write_text('{"name": "x", "members": "Ann.png"}')
    with pytest.raises(ChatIOError, match="no `members` list"):
        import_st_group(store, bad, [])
    bad.write_text("{not json")
    with pytest.raises(ChatIOError, match="not a SillyTavern group file"):
        import_st_group(store, bad, [])
    assert store.groups.all() == []


def test_a_group_chat_exported_alone_names_each_speaker(store, tmp_path):
    """One chat to `.jsonl`, Markdown or text: each reply under its member's name."""
    from app.core.chat_io import export_chat, plain_text, st_chat_rows

    ids = [store.characters.add({"name": n}) for n in ("Ann", "Bob")]
    gid = store.groups.create("Inn", ids)
    chat = store.groups.new_chat(gid, [(ids[0], "Welcome."), (ids[1], "Evening.")])
    assert [r["name"] for r in st_chat_rows(store, chat)[1:]] == ["Ann", "Bob"]
    assert "Ann: Welcome." in plain_text(store, chat)
    assert "Bob: Evening." in plain_text(store, chat)
    export_chat(store, chat, tmp_path / "inn.md")
    assert "**Bob**" in (tmp_path / "inn.md").read_text()


def _tree(store: Store, chat_id: int):
    """Every message of every branch: its place (the texts above it), role, text, speaker's
    name and whether it is on the shown path."""
    messages = {m.id: m for m in store.messages.of_chat(chat_id)}
    names = store.groups.speaker_names({m.speaker_id for m in messages.values() if m.speaker_id})
    shown = {m.id for m in store.messages.active_path(chat_id)}

    def above(m):
        return (
            ()
            if m.parent_id is None
            else (*above(messages[m.parent_id]), messages[m.parent_id].text)
        )

    return sorted(
        (above(m), m.role, m.text, names.get(m.speaker_id), m.id in shown)
        for m in messages.values()
    )


def test_speakers_on_every_branch_survive_export_and_import(tmp_path):
    """SillyTavern gives each group line its speaker (`name`, `original_avatar` and the
    `force_avatar` thumbnail, as `getFirstCharacterMessage` and a group reply in
    `saveReply` write them); a swipe written by another member and every reply on a
    branch off the exported path keep theirs too, and so does a member who has left."""
    src = Store(tmp_path / "a.db")
    ids = [src.characters.add({"name": n}) for n in ("Ann", "Bob", "Cid", "Dee")]
    gid = src.groups.create("Inn", ids)
    chat = src.groups.new_chat(gid, [(ids[0], "Welcome.")], "Night")
    user = src.messages.append(chat, src.messages.active_leaf(chat), "user", "Hi")
    bob = src.groups.append_reply(chat, user, ids[1], "Bob here.", "complete")
    src.groups.append_reply(chat, bob, ids[2], "Cid after Bob.", "complete")
    dee = src.groups.append_reply(chat, user, ids[3], "Dee instead.", "complete")  # let speak
    src.groups.append_reply(chat, dee, ids[0], "Ann after Dee.", "complete")
    src.groups.append_reply(chat, dee, ids[2], "Cid after Dee.", "complete")
    src.messages.show_branch(chat, bob)  # Dee's branch is off the exported path
    src.groups.remove_member(gid, ids[3])  # and Dee has left the group
    files = export_st_group(src, gid, tmp_path / "out")
    lines = [
        json.loads(x) for x in (tmp_path / "out/group chats/Night.jsonl").read_text().splitlines()
    ]
    assert [(r["name"], r.get("original_avatar")) for r in lines] == [
        ("Ann", "Ann.png"),
        ("User", None),
        ("Bob", "Bob.png"),
        ("Cid", "Cid.png"),
    ]
    assert lines[2]["force_avatar"] == "/thumbnail?type=avatar&file=Bob.png"
    assert lines[2]["swipe_info"][1]["name"] == "Dee"  # the swipe Dee wrote names Dee
    assert "name" not in lines[2]["swipe_info"][0]  # the line's own speaker: said once

    dst = Store(tmp_path / "b.db")
    for n in ("Ann", "Bob", "Cid"):
        dst.characters.add({"name": n})
    back = import_st_group(dst, files[0])
    assert "added with only their names: Dee" in " ".join(back.warnings)
    assert _tree(dst, back.chat_ids[0]) == _tree(src, chat)
    again = tmp_path / "again"
    export_st_group(dst, back.group_id, again)  # and once more, as it came back
    assert (again / "group chats/Night.jsonl").read_text().count('"Dee"') == 1
    src.close()
    dst.close()
