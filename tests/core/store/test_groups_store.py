"""Groups in the store: members in order, muted, removed; group chats; the migration."""

from __future__ import annotations

import sqlite3

import pytest

from app.core.store import Store, StoreError
from app.core.store.backup import list_snapshots
from app.core.store.db import MIGRATIONS
from app.core.store.groups import CardMode, GroupSettings, Strategy


def _chars(store, *names):
    return [store.characters.add({"name": n, "first_mes": f"Hi, I am {n}."}) for n in names]


def test_members_keep_their_order_through_add_move_and_mute(store):
    a, b, c = _chars(store, "Ann", "Bob", "Cid")
    gid = store.groups.create("Tavern", [a, b])
    store.groups.add_member(gid, c)
    store.groups.move_member(gid, c, -5)  # stops at the top
    store.groups.set_muted(gid, a, True)
    group = store.groups.get(gid)
    assert [m.name for m in group.members] == ["Cid", "Ann", "Bob"]
    assert [m.name for m in group.speakers] == ["Cid", "Bob"]
    with pytest.raises(ValueError, match="already in Tavern"):
        store.groups.add_member(gid, c)


def test_a_card_edit_applies_to_the_group_at_once(store):
    a, b = _chars(store, "Ann", "Bob")
    gid = store.groups.create("Pair", [a, b])
    store.characters.update(b, {"name": "Robert"})
    assert [m.name for m in store.groups.get(gid).members] == ["Ann", "Robert"]


def test_settings_round_trip_and_bad_values_are_named(store):
    (a,) = _chars(store, "Ann")
    settings = GroupSettings(
        strategy=Strategy.LIST,
        card_mode=CardMode.JOIN,
        join_prefix="[<FIELDNAME> of {{char}}]",
        auto_mode_turns=3,
    )
    gid = store.groups.create("Solo", [a], settings)
    assert store.groups.get(gid).settings == settings
    with pytest.raises(ValueError, match="strategy must be one of natural, list, manual"):
        GroupSettings.from_dict({"strategy": "pooled"})
    with pytest.raises(ValueError, match="auto_mode_turns must be a whole number"):
        GroupSettings.from_dict({"auto_mode_turns": -1})
    with pytest.raises(ValueError, match="unknown group settings: colour"):
        GroupSettings.from_dict({"colour": "red"})


def test_a_group_chat_records_each_speaker_and_survives_a_member_leaving(store):
    a, b = _chars(store, "Ann", "Bob")
    gid = store.groups.create("Pair", [a, b])
    chat = store.groups.new_chat(gid, [(a, "Hi from Ann"), (b, "Hi from Bob")])
    path = store.messages.active_path(chat)
    assert [(m.text, m.speaker_id) for m in path] == [("Hi from Ann", a), ("Hi from Bob", b)]
    user = store.messages.append(chat, path[-1].id, "user", "Hello both")
    reply = store.groups.append_reply(chat, user, a, "Ann again", status="complete")
    # Ann hosted the chat; she leaves, and the chat and her lines stay.
    store.groups.remove_member(gid, a)
    assert store.chats.info(chat).character_id == b
    assert store.messages.get(reply).speaker_id == a
    assert [m.text for m in store.messages.active_path(chat)][-1] == "Ann again"
    assert [r.id for r in store.groups.chats(gid)] == [chat]
    assert store.groups.group_of_chat(chat) == gid


def test_purging_the_host_character_keeps_the_group_chat(store):
    a, b = _chars(store, "Ann", "Bob")
    gid = store.groups.create("Pair", [a, b])
    chat = store.groups.new_chat(gid, [(a, "Hi from Ann")])
    store.characters.delete(a)  # the trash trigger moves the chat to Bob
    assert store.chats.info(chat).character_id == b
    store.chats.purge_trash()
    assert (
        store.messages.get(store.messages.active_path(chat)[0].id).speaker_id is None
    )  # Ann is gone
    assert store.messages.active_path(chat)[0].text == "Hi from Ann"
    assert [m.name for m in store.groups.get(gid).members] == ["Bob"]


def test_deleting_a_group_trashes_its_chats_and_undo_brings_them_back(store):
    (a,) = _chars(store, "Ann")
    gid = store.groups.create("Solo", [a])
    chat = store.groups.new_chat(gid, [(a, "Hi")])
    store.groups.delete(gid)
    assert store.groups.all() == [] and store.chats.info(chat).deleted_at is not None
    store.groups.restore(gid)
    assert store.chats.info(chat).deleted_at is None
    assert [g.name for g in store.groups.all()] == ["Solo"]


def test_bad_input_is_refused_without_writing(store):
    (a,) = _chars(store, "Ann")
    with pytest.raises(ValueError, match="needs a name"):
        store.groups.create("  ", [a])
    with pytest.raises(StoreError, match="No character with id 999"):
        store.groups.create("Ghosts", [a, 999])
    assert store.groups.all() == []
    gid = store.groups.create("Empty", [])
    with pytest.raises(ValueError, match="Empty has no members"):
        store.groups.new_chat(gid, [])


def _schema_4_store(path, messages: int) -> None:
    """A database exactly as the previous Parlor wrote it: migrations 1-4, one character."""
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:4], 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    conn.execute(
        "INSERT INTO characters (id, name, card_json, created_at, updated_at)"
        " VALUES (1, 'Wren', '{\"name\": \"Wren\"}', 0, 0)"
    )
    conn.execute(
        "INSERT INTO chats (id, character_id, title, created_at, last_used_at)"
        " VALUES (1, 1, 'Long chat', 0, 0)"
    )
    conn.execute("BEGIN")
    for i in range(1, messages + 1):
        conn.execute(
            "INSERT INTO messages (id, chat_id, parent_id, role, text, created_at)"
            " VALUES (?, 1, ?, ?, ?, ?)",
            (i, i - 1 or None, "user" if i % 2 else "assistant", f"line {i}", i),
        )
    conn.execute("UPDATE chats SET active_leaf_id = ? WHERE id = 1", (messages,))
    conn.execute("COMMIT")
    conn.close()


def test_the_migration_keeps_a_10000_message_store_intact(tmp_path):
    path = tmp_path / "parlor.db"
    _schema_4_store(path, 10_000)
    store = Store(path)
    try:
        path_msgs = store.messages.active_path(1)
        assert len(path_msgs) == 10_000
        assert [m.text for m in path_msgs[:2]] == ["line 1", "line 2"]
        assert path_msgs[-1].text == "line 10000" and path_msgs[-1].speaker_id is None
        assert store.chats.info(1).title == "Long chat"
        assert store.chats.search("line 9999")[0].message_id == 9999
        assert store.groups.group_of_chat(1) is None
        assert [s.path.name for s in list_snapshots(path)][0].startswith("parlor-before-migration")
        version = store._query("PRAGMA user_version")[0][0]
        assert version == len(MIGRATIONS)
    finally:
        store.close()


def test_a_branch_or_copy_of_a_group_chat_stays_in_the_group_with_its_speakers(store):
    a, b = _chars(store, "Ann", "Bob")
    gid = store.groups.create("Pair", [a, b])
    chat = store.groups.new_chat(gid, [(a, "Hi from Ann"), (b, "Hi from Bob")])
    bob_line = store.messages.active_path(chat)[-1].id
    for copy in (store.chats.branch_from(bob_line), store.chats.duplicate(chat)):
        assert store.groups.group_of_chat(copy) == gid
        assert [m.speaker_id for m in store.messages.active_path(copy)] == [a, b]
    assert len(store.groups.chats(gid)) == 3
    single = store.chats.new(a, ["Hello"])
    assert store.groups.group_of_chat(store.chats.duplicate(single)) is None


def test_export_everything_keeps_groups_their_picture_and_speakers(tmp_path, monkeypatch):
    from app.core.appdata.paths import default_paths
    from app.core.chat.context import AppContext
    from app.core.store.export_all import export_everything, import_everything

    ctx = AppContext.create()
    a, b = _chars(ctx.store, "Ann", "Bob")
    gid = ctx.store.groups.create(
        "Pair", [a, b], GroupSettings(strategy=Strategy.LIST), avatar=b"\x89PNG picture"
    )
    ctx.store.groups.set_muted(gid, b, True)
    chat = ctx.store.groups.new_chat(gid, [(a, "Hi from Ann"), (b, "Hi from Bob")])
    target = export_everything(ctx.paths, tmp_path / "export.zip")
    ctx.close()
    monkeypatch.setenv("PARLOR_HOME", str(tmp_path / "other"))
    counts = import_everything(target, default_paths())
    assert (counts["groups"], counts["group_members"]) == (1, 2)
    other = AppContext.create()
    group = other.store.groups.get(gid)
    assert [(m.name, m.muted) for m in group.members] == [("Ann", False), ("Bob", True)]
    assert group.settings.strategy is Strategy.LIST
    assert other.store.groups.avatar(gid) == b"\x89PNG picture"
    assert [m.speaker_id for m in other.store.messages.active_path(chat)] == [a, b]
    assert other.store.groups.group_of_chat(chat) == gid
    other.close()


def test_the_chat_library_lists_a_group_chat_under_the_groups_name(store):
    a, b = _chars(store, "Ann", "Bob")
    gid = store.groups.create("Tavern", [a, b])
    chat = store.groups.new_chat(gid, [(a, "Hi")])
    own = store.chats.new(a, ["Hello"])
    names = {r.id: r.character_name for r in store.chats.all()}
    assert names[chat] == "Tavern" and names[own] == "Ann"
    assert store.chats.info(chat).character_name == "Tavern"
