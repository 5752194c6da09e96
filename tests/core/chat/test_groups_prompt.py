"""The prompt for a group's speaking member, against SillyTavern's group-chats.js and
script.js (1.12) for the same members."""

from __future__ import annotations

import pytest

from app.core.appdata.settings import Settings
from app.core.chat.groups.cards import MemberCard, group_greetings, joined_fields, speaker_card
from app.core.chat.groups.prompt import group_job, group_prompt_input
from app.core.chat.job import TokenCounter
from app.core.store.groups import CardMode, GroupSettings
from app.core.store.world_state import WorldInfoStore
from tests.prompt_models import model_info

INFO = model_info()


def count_many(texts):  # a tokenizer stand-in: about four characters a token
    return [len(t) // 4 + 1 for t in texts]


def _card(name, desc, **more):
    return {
        "name": name,
        "description": desc,
        "personality": f"{name} is {more.pop('p', '')}",
        "scenario": f"{{{{char}}}} waits at {name}'s table.",
        "first_mes": f"Hi, I'm {name}.",
        **more,
    }


@pytest.fixture
def trio(store):
    ann = store.characters.add(_card("Ann", "{{char}} is a tall smith.", p="blunt"))
    bob = store.characters.add(
        _card(
            "Bob",
            "Bob is a bard.",
            p="merry",
            character_book={
                "entries": [
                    {
                        "keys": ["dragon"],
                        "content": "Dragons sleep under the hill.",
                        "enabled": True,
                        "insertion_order": 1,
                    }
                ]
            },
        )
    )
    cid = store.characters.add(_card("Cid", "Cid is a cat.", p="lazy"))
    return ann, bob, cid


def _chat(store, ids, settings=None):
    gid = store.groups.create("Inn", list(ids), settings)
    chat = store.groups.new_chat(gid, [(ids[0], "Hi, I'm Ann."), (ids[1], "Hi, I'm Bob.")])
    return gid, chat


def _built(store, chat, speaker, template="chatml"):
    settings = Settings()
    settings.template, settings.user_name = template, "Uma"
    leaf = store.messages.active_leaf(chat)
    store.messages.append(chat, leaf, "user", "Tell me of the dragon, Cid.")
    prompt = group_prompt_input(store, settings, chat, speaker, store.messages.active_path(chat))
    return prompt, group_job(prompt, INFO, settings, TokenCounter())(count_many)


def test_swap_mode_sends_only_the_speakers_card(store, trio):
    """script.js `getCharacterCardFields`: `getGroupCharacterCards` returns null for
    `group_generation_mode.SWAP`, so description, personality and scenario are the
    speaker's (`characters[this_chid]`) alone."""
    ann, bob, cid = trio
    _, chat = _chat(store, trio)
    _, built = _built(store, chat, cid)
    assert "Cid is a cat." in built.text and "Cid waits at Cid's table." in built.text
    assert "tall smith" not in built.text and "Bob is a bard." not in built.text


def test_other_members_are_named_and_are_stop_strings(store, trio):
    """script.js `getStoppingStrings`: in a group, every other member's `\\nName:` stops the
    reply; their lines are sent under their names."""
    ann, bob, cid = trio
    _, chat = _chat(store, trio)
    _, built = _built(store, chat, cid)
    assert "Ann: Hi, I'm Ann." in built.text and "Bob: Hi, I'm Bob." in built.text
    assert {"\nAnn:", "\nBob:", "\nUma:"} <= set(built.stop) and "\nCid:" not in built.stop


def test_names_are_forced_for_everyone_but_the_user_in_instruct(store, trio):
    """instruct-mode.js `formatInstructModeChat`: with `names_behavior` FORCE, names are
    included when `selected_group && name !== name1`; `formatInstructModePrompt` names the
    speaker in the open reply."""
    ann, bob, cid = trio
    _, chat = _chat(store, trio)
    _, built = _built(store, chat, cid, template="Alpaca")
    assert "### Response:\nAnn: Hi, I'm Ann." in built.text
    assert "### Instruction:\nTell me of the dragon, Cid." in built.text  # the user unnamed
    assert built.text.rstrip().endswith("### Response:\nCid:")


def test_join_mode_wraps_every_members_fields(store, trio):
    """group-chats.js `getGroupCharacterCards` with `replaceAndPrepareForJoin`: each
    member's field trimmed, `<FIELDNAME>` and that member's `{{char}}` filled in the prefix
    and suffix, joined by a newline (instruct `wrap` on), fields joined by newlines."""
    ann, bob, cid = trio
    settings = GroupSettings(
        card_mode=CardMode.JOIN, join_prefix="[<FIELDNAME> of {{char}}]", join_suffix="[/{{char}}]"
    )
    members = [
        MemberCard(ann, "Ann", store.characters.card(ann)),
        MemberCard(bob, "Bob", store.characters.card(bob), muted=True),
        MemberCard(cid, "Cid", store.characters.card(cid)),
    ]
    fields = joined_fields(members, cid, settings, "Uma")
    assert fields["description"] == (
        "[Description of Ann]\nAnn is a tall smith.\n[/Ann]\n"
        "[Description of Cid]\nCid is a cat.\n[/Cid]"
    )
    assert fields["scenario"].splitlines()[1] == "Ann waits at Ann's table."
    # a muted member joins when it speaks, or always in "join, muted too" mode
    assert "Bob is a bard." in joined_fields(members, bob, settings, "Uma")["description"]
    muted_too = GroupSettings(card_mode=CardMode.JOIN_MUTED)
    assert (
        joined_fields(members, ann, muted_too, "Uma")["description"]
        == "Ann is a tall smith.\nBob is a bard.\nCid is a cat."
    )
    assert (
        joined_fields(members, ann, muted_too, "Uma", wrap=False)["personality"]
        == "Ann is blunt\nBob is merry\nCid is lazy"
    )


def test_join_mode_prompt_holds_all_members(store, trio):
    """`getCharacterCardFields` replaces description/personality/scenario/examples by the
    joined ones when `generation_mode` is APPEND."""
    ann, bob, cid = trio
    _, chat = _chat(store, trio, GroupSettings(card_mode=CardMode.JOIN))
    _, built = _built(store, chat, ann)
    for text in ("Ann is a tall smith.", "Bob is a bard.", "Cid is a cat."):
        assert text in built.text


def test_the_group_scenario_overrides_every_members(store, trio):
    """`getGroupCharacterCards`: `scenarioOverride?.trim() || scenarios.join('\\n')`."""
    ann, bob, cid = trio
    members = [
        MemberCard(ann, "Ann", store.characters.card(ann)),
        MemberCard(cid, "Cid", store.characters.card(cid)),
    ]
    for mode in CardMode:
        card = speaker_card(members, cid, GroupSettings(card_mode=mode, scenario="A storm."), "Uma")
        assert card["scenario"] == "A storm."


def test_every_members_lorebook_is_active(store, trio):
    """The issue's rule (every member's book active); SillyTavern's `getCharacterLore`
    skips a book already active as global or chat lore, so each book counts once."""
    ann, bob, cid = trio
    _, chat = _chat(store, trio)
    prompt, built = _built(store, chat, cid)  # Cid speaks; the dragon entry is Bob's
    assert "Dragons sleep under the hill." in built.text
    assert [b.name for b in prompt.inp.lore.books].count("Bob") == 1


def test_a_library_book_linked_to_a_member_is_active(store, trio):
    ann, bob, cid = trio
    wi = WorldInfoStore(store)
    wi.save_book(
        "Ann's forge",
        {"entries": [{"keys": ["dragon"], "enabled": True, "content": "The forge burns blue."}]},
    )
    wi.link_character("Ann's forge", ann, True)
    _, chat = _chat(store, trio)
    _, built = _built(store, chat, cid)
    assert "The forge burns blue." in built.text


def test_a_non_member_cannot_speak(store, trio):
    ann, bob, cid = trio
    gid, chat = _chat(store, trio[:2])
    with pytest.raises(ValueError, match="not a member of Inn"):
        group_prompt_input(store, Settings(), chat, cid, store.messages.active_path(chat))


def test_group_only_greetings_are_used_in_groups():
    """V3 spec: `group_only_greetings` are greetings for group chats only."""
    card = {
        "first_mes": "Hello.",
        "alternate_greetings": ["Hey."],
        "group_only_greetings": ["Hello, everyone."],
    }
    assert group_greetings(card) == ["Hello, everyone."]
    assert group_greetings({"first_mes": "Hello.", "alternate_greetings": ["Hey."]}) == [
        "Hello.",
        "Hey.",
    ]
