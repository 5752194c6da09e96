"""Who speaks next, against SillyTavern's public/scripts/group-chats.js (1.12)."""

from __future__ import annotations

import random

from app.core.chat.groups.speakers import (
    Candidate,
    LastMessage,
    natural_order,
    plan_turn,
    talkativeness,
    turn_rng,
    words,
)
from app.core.store.groups import Strategy

ANN, BOB, CID = 1, 2, 3


def members(t=(0.0, 0.0, 0.0), muted=(False, False, False)):
    return [
        Candidate(ANN, "Ann", t[0], muted[0]),
        Candidate(BOB, "Bob Stone", t[1], muted[1]),
        Candidate(CID, "Cid", t[2], muted[2]),
    ]


def test_a_mentioned_member_speaks_first():
    """`activateNaturalOrder`: each word of the input activates the first member whose name
    (`extractAllWords`) contains it, before any talkativeness roll."""
    order = natural_order(members((0.0, 0.0, 1.0)), "Hey stone, what do you say?", random.Random(1))
    assert order[0] == BOB and order == [BOB, CID]


def test_the_last_speaker_does_not_answer_itself_unless_allowed():
    """`activateNaturalOrder`: `bannedUser` is the last message's name when it is not the
    user's and not user input, unless `allow_self_responses`."""
    last = LastMessage("Ann here, and Ann again.", from_user=False, speaker_name="Ann")
    banned = plan_turn(
        Strategy.NATURAL,
        members((1.0, 0.0, 0.0)),
        last,
        random.Random(2),
        allow_self_responses=False,
        auto=True,
    )
    assert ANN not in banned and len(banned) == 1
    allowed = plan_turn(
        Strategy.NATURAL,
        members((1.0, 0.0, 0.0)),
        last,
        random.Random(2),
        allow_self_responses=True,
        auto=True,
    )
    assert allowed == [ANN]


def test_user_input_lifts_the_ban_and_is_the_activating_text():
    """`generateGroupWrapper`: with user input, `activationText` is the input and
    `isUserInput` means nobody is banned."""
    last = LastMessage("Bob Stone speaks", from_user=False, speaker_name="Bob Stone")
    order = plan_turn(
        Strategy.NATURAL,
        members(),
        last,
        random.Random(3),
        allow_self_responses=False,
        user_input="Cid, and you Bob?",
    )
    assert order[:2] == [CID, BOB]


def test_nobody_talkative_means_one_random_member():
    """`activateNaturalOrder`: with no mention and no roll won, one member is picked at
    random (from the chatty ones when there are any, else from all)."""
    for seed in range(20):
        order = natural_order(members(), "nothing to see", random.Random(seed))
        assert len(order) == 1 and order[0] in (ANN, BOB, CID)
    chatty = {natural_order(members((0.0, 0.001, 0.0)), "", random.Random(s))[0] for s in range(20)}
    assert chatty == {BOB}  # Bob's roll may fail, but the random pick is from the chatty


def test_talkative_members_all_speak_in_shuffled_order():
    """`activateNaturalOrder`: every member whose talkativeness >= the roll is activated,
    in `shuffle` order; the draw is reproducible from the seed."""
    orders = {
        tuple(natural_order(members((1.0, 1.0, 1.0)), "", random.Random(s))) for s in range(30)
    }
    assert all(sorted(o) == [ANN, BOB, CID] for o in orders) and len(orders) > 1
    rng_a, rng_b = turn_rng("chat-seed", 41), turn_rng("chat-seed", 41)
    assert natural_order(members((0.5, 0.5, 0.5)), "", rng_a) == natural_order(
        members((0.5, 0.5, 0.5)), "", rng_b
    )


def test_list_order_is_every_unmuted_member_in_order():
    """`activateListOrder` over `enabledMembers` (the group's members minus
    `disabled_members`)."""
    order = plan_turn(
        Strategy.LIST,
        members(muted=(False, True, False)),
        None,
        random.Random(0),
        allow_self_responses=False,
    )
    assert order == [ANN, CID]


def test_muted_members_are_never_drawn_and_manual_draws_nobody():
    """`generateGroupWrapper`: `enabledMembers` excludes `disabled_members`."""
    muted = members((1.0, 1.0, 1.0), muted=(True, True, False))
    for s in range(10):
        assert plan_turn(
            Strategy.NATURAL,
            muted,
            None,
            random.Random(s),
            allow_self_responses=True,
            user_input="Ann? Bob?",
        ) == [CID]
    assert (
        plan_turn(
            Strategy.MANUAL,
            members(),
            None,
            random.Random(0),
            allow_self_responses=True,
            user_input="Ann?",
        )
        == []
    )


def test_talkativeness_is_read_as_sillytavern_does():
    """script.js: `isNaN(character.talkativeness) ? talkativeness_default (0.5) : Number(...)`;
    the card keeps it as text in `data.extensions.talkativeness`."""
    assert talkativeness({"extensions": {"talkativeness": "0.3"}}) == 0.3
    assert talkativeness({"extensions": {"talkativeness": 1}}) == 1.0
    assert talkativeness({"extensions": {"talkativeness": "chatty"}}) == 0.5
    assert talkativeness({}) == 0.5


def test_words_are_extract_all_words():
    """utils.js `extractAllWords`: `/\\b\\w+\\b/gim`, lower-cased."""
    assert words("Mary-Jane O'Neil, 2nd!") == ["mary", "jane", "o", "neil", "2nd"]
