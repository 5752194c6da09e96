"""A three-member group driven through 20 turns with the real engine on the tiny model."""

from __future__ import annotations

import pytest

from app.core.appdata.settings import Settings
from app.core.chat.groups.conversation import AutoMode, GroupChat, run_auto, start_group_chat
from app.core.engine import LoadParams
from app.core.engine.local import LocalEngine
from app.core.store import Store
from app.core.store.groups import GroupSettings, Strategy
from app.core.store.world_state import WorldInfoStore

TURNS = 20


@pytest.fixture(scope="module")
def engine(tiny_llama_path):
    eng = LocalEngine()
    eng.load(LoadParams(model_path=str(tiny_llama_path), n_ctx=2048))
    yield eng
    eng.unload()


def _settings() -> Settings:
    s = Settings()
    s.template, s.max_tokens, s.seed, s.user_name = "chatml", 6, 11, "Uma"
    return s


def _group_chat(store: Store, strategy: Strategy, seed: str = "fixed-seed") -> GroupChat:
    ids = [
        store.characters.add(
            {"name": n, "description": f"{n} is here.", "extensions": {"talkativeness": t}}
        )
        for n, t in (("Ann", "0.6"), ("Bob", "0.3"), ("Cid", "0.1"))
    ]
    gid = store.groups.create("Inn", ids, GroupSettings(strategy=strategy))
    chat_id = store.groups.new_chat(gid, [(ids[0], "Welcome, all.")])
    WorldInfoStore(store).update_chat_metadata(chat_id, {"integrity": seed})
    return GroupChat(store, chat_id, _settings())


def _drive(chat: GroupChat, engine, turns: int = TURNS) -> list[int]:
    """Each turn the user speaks, then the members the strategy picks answer in order."""
    spoken = []
    for turn in range(turns):
        text = "Ann?" if turn % 5 == 0 else f"turn {turn}"
        chat.send(text)
        for speaker in chat.plan(user_input=text):
            chat.reply(engine, speaker)
            spoken.append(speaker)
    return spoken


def _speakers_in_path(chat: GroupChat) -> list[int]:
    return [
        m.speaker_id
        for m in chat.store.messages.active_path(chat.chat_id)[1:]
        if m.role == "assistant"
    ]


def test_natural_order_is_reproducible_from_the_chats_seed(tmp_path, engine):
    runs = []
    for name in ("a", "b"):
        store = Store(tmp_path / f"{name}.db")
        chat = _group_chat(store, Strategy.NATURAL)
        runs.append(_drive(chat, engine))
        assert _speakers_in_path(chat) == runs[-1]  # every reply stored with its speaker
        assert all(m.text for m in store.messages.active_path(chat.chat_id))
        store.close()
    assert runs[0] == runs[1]
    assert len(set(runs[0])) >= 2  # talkativeness spreads the turns
    other = Store(tmp_path / "c.db")
    chat = _group_chat(other, Strategy.NATURAL, seed="another-seed")
    assert _drive(chat, engine) != runs[0]
    ann = chat.group.members[0].character_id
    other.close()
    assert runs[0][0] == ann  # "Ann?" in the first turn: the mention makes Ann answer first


def test_list_order_answers_with_every_member_in_turn(store, engine):
    chat = _group_chat(store, Strategy.LIST)
    ids = [m.character_id for m in chat.group.members]
    spoken = _drive(chat, engine, 10)
    assert spoken == ids * 10
    # a member removed mid-chat keeps its past messages and no longer speaks
    store.groups.remove_member(chat.group.id, ids[1])
    spoken_after = _drive(chat, engine, 10)
    assert spoken_after == [ids[0], ids[2]] * 10
    path_speakers = _speakers_in_path(chat)
    assert path_speakers.count(ids[1]) == 10 and len(path_speakers) == 30 + 20


def test_manual_mode_lets_the_picked_member_speak(store, engine):
    chat = _group_chat(store, Strategy.MANUAL)
    ids = [m.character_id for m in chat.group.members]
    for turn in range(TURNS):
        chat.send(f"turn {turn}")
        assert chat.plan(user_input=f"turn {turn}") == []  # nobody unless picked
        chat.reply(engine, ids[turn % 3])
    assert _speakers_in_path(chat) == [ids[t % 3] for t in range(TURNS)]


def test_regenerate_asks_the_same_speaker_and_keeps_the_swipe(store, engine):
    chat = _group_chat(store, Strategy.LIST)
    chat.send("hello")
    first = chat.reply(engine, chat.plan(user_input="hello")[1])
    speaker = chat.speaker_of(first)
    again = chat.reply(engine, speaker, regenerate_of=first)
    msg = store.messages.get(again)
    assert msg.speaker_id == speaker and msg.parent_id == store.messages.get(first).parent_id
    assert store.messages.sibling_ids(again) == [first, again]


def test_auto_mode_runs_n_replies_and_stops_at_once(store, engine):
    chat = _group_chat(store, Strategy.NATURAL)
    written = run_auto(chat, engine, AutoMode(turns=5))
    assert len(written) == 5
    speakers = [store.messages.get(m).speaker_id for m in written]
    # without self-responses, nobody answers their own line
    assert all(a != b for a, b in zip(speakers, speakers[1:], strict=False))
    stopped = AutoMode(turns=5)
    stopped.stop()
    assert run_auto(chat, engine, stopped) == []


def test_a_members_sticky_lore_is_kept_on_the_branch(store, engine):
    """world-info.js timed effects: a sticky entry fired in a group turn is remembered on the
    message the prompt ended with, as for one character."""
    chat = _group_chat(store, Strategy.LIST)
    bob = chat.group.members[1].character_id
    card = store.characters.card(bob)
    card["character_book"] = {
        "entries": [
            {
                "keys": ["dragon"],
                "content": "Dragons nap.",
                "enabled": True,
                "extensions": {"sticky": 3},
            }
        ]
    }
    store.characters.update(bob, card)
    user = chat.send("A dragon!")
    chat.reply(engine, chat.group.members[0].character_id)
    state = WorldInfoStore(store).timed_state([user])
    assert state and "sticky" in str(state)


def test_a_new_group_chat_opens_with_each_members_group_greeting(store):
    """group-chats.js `getGroupChat`: a fresh group chat gets every member's first message
    (`getFirstCharacterMessage`, macros filled in for that member); V3
    `group_only_greetings` take the place of the usual ones in a group."""
    ann = store.characters.add(
        {
            "name": "Ann",
            "first_mes": "Hi {{user}}, I'm {{char}}.",
            "group_only_greetings": ["Hello, everyone!"],
        }
    )
    bob = store.characters.add({"name": "Bob", "first_mes": "{{char}} nods at {{user}}."})
    quiet = store.characters.add({"name": "Cid"})
    gid = store.groups.create("Inn", [ann, bob, quiet])
    chat = start_group_chat(store, gid, "Uma")
    assert [(m.text, m.speaker_id) for m in store.messages.active_path(chat)] == [
        ("Hello, everyone!", ann),
        ("Bob nods at Uma.", bob),
    ]


def test_each_members_other_greetings_are_swipes_followed_by_the_rest_of_the_scene(store):
    """`getGroupChat` greets with every member in turn; `getFirstCharacterMessage` draws
    one of a member's first message and alternate greetings. Parlor shows the first and
    keeps the others as that greeting's swipes (as a one-character chat does), each swipe
    followed by the later members' greetings, so swiping Ann's greeting keeps Bob's."""
    ann = store.characters.add(
        {
            "name": "Ann",
            "first_mes": "Hi {{user}}.",
            "alternate_greetings": ["Yo {{user}}.", "Hey."],
        }
    )
    bob = store.characters.add(
        {
            "name": "Bob",
            "first_mes": "Not in groups.",
            "group_only_greetings": ["Evening, all.", "{{char}} bows."],
        }
    )
    gid = store.groups.create("Inn", [ann, bob])
    chat = start_group_chat(store, gid, "Uma")
    m = store.messages
    path = m.active_path(chat)
    assert [(x.text, x.speaker_id) for x in path] == [("Hi Uma.", ann), ("Evening, all.", bob)]
    assert [m.get(i).text for i in m.sibling_ids(path[0].id)] == ["Hi Uma.", "Yo Uma.", "Hey."]
    assert [m.get(i).text for i in m.sibling_ids(path[1].id)] == ["Evening, all.", "Bob bows."]
    m.swipe(path[0].id, +2)  # Ann's third greeting: Bob still greets after it, with swipes
    path = m.active_path(chat)
    assert [(x.text, x.speaker_id) for x in path] == [("Hey.", ann), ("Evening, all.", bob)]
    assert [m.get(i).text for i in m.sibling_ids(path[1].id)] == ["Evening, all.", "Bob bows."]
    assert all(x.speaker_id == bob for x in m.of_chat(chat) if x.text in ("Bob bows.",))


def test_many_greetings_stay_within_the_limit_and_none_is_lost():
    """Copies multiply (10 greetings each for 4 members would be 11,110 messages): the
    earliest members' other greetings stop carrying the scene until it fits."""
    from app.core.store.groups import GREETING_NODES, greeting_nodes

    openers = [(cid, [f"{cid}-{j}" for j in range(10)]) for cid in range(4)]
    nodes = greeting_nodes(openers, 0.0)
    assert len(nodes) <= GREETING_NODES
    assert {n.text for n in nodes} == {t for _, texts in openers for t in texts}
    by_key = {n.key: n for n in nodes}
    # the last member's greetings follow every greeting of the third member
    under = {by_key[n.parent_key].text for n in nodes if n.text == "3-0"}
    assert under == {f"2-{j}" for j in range(10)}
    assert [n.text for n in nodes[:4]] == ["0-0", "1-0", "2-0", "3-0"]  # the shown path


def test_a_line_posted_as_a_member_is_stored_as_theirs(store):
    """SillyTavern's `/sendas` (`sendMessageAs`): the user's text becomes a line of that
    character, macros filled in, nothing generated; an empty line or a stranger is refused."""
    chat = _group_chat(store, Strategy.MANUAL)
    ids = [m.character_id for m in chat.group.members]
    leaf = store.messages.active_leaf(chat.chat_id)
    mid = chat.post_as(ids[1], "  {{char}} waves at {{user}}. ")
    msg = store.messages.get(mid)
    assert (msg.role, msg.text, msg.speaker_id, msg.parent_id, msg.status) == (
        "assistant",
        "Bob waves at Uma.",
        ids[1],
        leaf,
        "complete",
    )
    assert store.messages.active_leaf(chat.chat_id) == mid
    with pytest.raises(ValueError, match="Write the line first"):
        chat.post_as(ids[1], "   ")
    stranger = store.characters.add({"name": "Zed"})
    with pytest.raises(ValueError, match="not a member"):
        chat.post_as(stranger, "Hello.")
    assert store.messages.active_leaf(chat.chat_id) == mid  # nothing else was written
