"""A three-member group's prompt, byte for byte as SillyTavern 1.12.6 builds it.

Each expected text below is worked out by hand from SillyTavern's code for the same members,
chat and preset (text completion, instruct mode on, the default "Neutral - Chat" system
prompt, no persona description, no world info, no author's note):

- group-chats.js `generateGroupWrapper` picks the speaker and calls `Generate('group_chat')`
  with `this_chid`/`name2` set to that member; the fresh chat's "group created" line is a
  system message, so `Generate` drops it from `coreChat` (`chat.filter(x => !x.is_system)`).
- script.js `getCharacterCardFields`: in swap mode `getGroupCharacterCards` returns null
  (`!group.generation_mode`), so the card fields are the speaker's; in join mode every
  member's description, personality, scenario and examples come through
  `replaceAndPrepareForJoin` (prefix, `\\n`, the field, `\\n`, suffix when `wrap` is on; an
  empty field is left out) and are joined with `\\n`.
- power-user.js `renderStoryString`: Handlebars (standalone `{{/if}}` lines vanish), then
  `substituteParams`; a macro the story string does not pass, such as `{{group}}`, goes
  through macros.js' `helperMissing` to `substituteParams`, whose `getGroupValue` is the
  members' names joined with ", " in a group (`{{charIfNotGroup}}` too). A newline is added
  when the result does not end with one.
- script.js `parseMesExamples` (each `<START>` block as `<START>\\n` + block + `\\n`) and
  instruct-mode.js `formatInstructModeExamples` (names on when `names_behavior` is "always",
  or "force" in a group), through openai.js `parseExampleIntoIndividual`.
- instruct-mode.js `formatInstructModeChat` for each line (`formatMessageHistoryItem`, the
  oldest with the FIRST sequence, the last user line with the LAST one): under "force" a
  name is written when `selected_group && name !== name1`, so every member and never the
  user; `Generate` strips the newest line's final `\\n` when `wrap` is on; then
  `formatInstructModePrompt` opens the speaker's reply, named in a group.
- script.js `getStoppingStrings`: `\\n{{user}}:`, every other member's `\\n{{name}}:`, then
  `getInstructStoppingSequences`.

Where SillyTavern is plainly wrong, Parlor keeps its own text and the test says so:
`parseExampleIntoIndividual` already writes `Name: ` before each example line in a group
(`appendNamesForGroup`), and `formatInstructModeExamples` writes it again, so every example
line reads `Uma: Uma: Cat?`. Parlor names each example line once; `ours()` below is exactly
that one change.
"""

from __future__ import annotations

import json

import pytest

from app.core.appdata.settings import Settings
from app.core.chat.groups.prompt import group_job, group_prompt_input
from app.core.chat.job import TokenCounter
from app.core.store.groups import CardMode, GroupSettings
from tests.prompt_models import model_info

INFO = model_info(8192)
CARDS = [
    {
        "name": "Ann",
        "description": "{{char}} forges blades for {{user}}.",
        "personality": "blunt",
        "scenario": "A forge.",
        "mes_example": "<START>\n{{user}}: Hi\n{{char}}: Hmph.",
    },
    {"name": "Bob", "description": "Bob is a bard.", "personality": "merry"},
    {
        "name": "Cid",
        "description": "Cid is a cat.",
        "personality": "lazy",
        "scenario": "A rug.",
        "mes_example": "<START>\n{{user}}: Cat?\n{{char}}: Meow.",
    },
]
# SillyTavern's default system prompt ("Neutral - Chat"), with {{char}} the speaker, Cid
SYSTEM = "Write Cid's next reply in a fictional chat between Cid and Uma."
JOIN = GroupSettings(
    card_mode=CardMode.JOIN, join_prefix="[<FIELDNAME>: {{char}}]", join_suffix="[end]"
)


def ours(st_text: str) -> str:
    """SillyTavern's text with each group example line named once instead of twice."""
    return st_text.replace("Uma: Uma: ", "Uma: ").replace("Cid: Cid: ", "Cid: ")


def count_many(texts):
    return [len(t) // 4 + 1 for t in texts]


def _prompt(
    store, settings: GroupSettings, template: str, story_string: str | None = None, cards=CARDS
):
    """The chat: Ann's and Bob's greetings, the user's line, Ann's reply; Cid speaks next."""
    ids = [store.characters.add(c) for c in cards]
    gid = store.groups.create("Inn", ids, settings)
    chat = store.groups.new_chat(gid, [(ids[0], "Welcome."), (ids[1], "Evening.")])
    user = store.messages.append(chat, store.messages.active_leaf(chat), "user", "Hello all. Cid?")
    store.groups.append_reply(chat, user, ids[0], "He naps.", "complete")
    s = Settings()
    s.template, s.user_name = template, "Uma"
    if story_string is not None:
        s.context_presets = [
            json.dumps(
                {
                    "name": "Fixed",
                    "story_string": story_string,
                    "example_separator": "",
                    "chat_start": "",
                }
            )
        ]
        s.context_template = "Fixed"
    prompt = group_prompt_input(store, s, chat, ids[2], store.messages.active_path(chat))
    return group_job(prompt, INFO, s, TokenCounter())(count_many)


# --- ChatML (names "always", wrap on, no first/last sequences) -----------------------------
CHATML_SWAP = (
    # renderStoryString: the shipped ChatML story string with the speaker's own fields;
    # {{trim}} eats the newline before <|im_end|>, then a newline is added at the end
    "<|im_start|>system\n" + SYSTEM + "\n"
    "Cid is a cat.\n"
    "Cid's personality: lazy\n"
    "Scenario: A rug.<|im_end|>\n"
    # the speaker's examples after the story string (mesExmString), doubled names and all
    "<|im_start|>user\nUma: Uma: Cat?<|im_end|>\n"
    "<|im_start|>assistant\nCid: Cid: Meow.<|im_end|>\n"
    # formatInstructModeChat: every line named ("always"), each member under its own name
    "<|im_start|>assistant\nAnn: Welcome.<|im_end|>\n"
    "<|im_start|>assistant\nBob: Evening.<|im_end|>\n"
    "<|im_start|>user\nUma: Hello all. Cid?<|im_end|>\n"
    # the newest line loses its final "\n" ...
    "<|im_start|>assistant\nAnn: He naps.<|im_end|>"
    # ... and formatInstructModePrompt adds "\n" + output sequence + "\n" + "Cid:"
    "\n<|im_start|>assistant\nCid:"
)
CHATML_STOPS = {
    "\nUma:",  # getStoppingStrings: the user
    "\nAnn:",  # every other member
    "\nBob:",
    # getInstructStoppingSequences, each on a new line (wrap)
    "\n<|im_end|>",
    "\n<|im_start|>user",
    "\n<|im_start|>assistant",
    "\n<|im_start|>system",
}


def test_chatml_swap_mode_is_sillytaverns_prompt(store):
    built = _prompt(store, GroupSettings(card_mode=CardMode.SWAP), "ChatML")
    assert built.text == ours(CHATML_SWAP)
    # and the stop strings, plus Parlor's bare stop sequence (for models without the token)
    assert set(built.stop) == CHATML_STOPS | {"<|im_end|>"}


CHATML_JOIN = (
    "<|im_start|>system\n" + SYSTEM + "\n"
    # getGroupCharacterCards: each member's field as prefix\nfield\nsuffix, joined by \n;
    # {{char}} in the prefix and in the field is that member
    "[Description: Ann]\nAnn forges blades for Uma.\n[end]\n"
    "[Description: Bob]\nBob is a bard.\n[end]\n"
    "[Description: Cid]\nCid is a cat.\n[end]\n"
    # the story string's {{char}} is still the speaker
    "Cid's personality: [Personality: Ann]\nblunt\n[end]\n"
    "[Personality: Bob]\nmerry\n[end]\n"
    "[Personality: Cid]\nlazy\n[end]\n"
    # Bob has no scenario: left out, not an empty wrapper
    "Scenario: [Scenario: Ann]\nA forge.\n[end]\n"
    "[Scenario: Cid]\nA rug.\n[end]<|im_end|>\n"
    # parseMesExamples on the joined examples: the text before Ann's <START> is a block of its
    # own with no dialogue (dropped); Ann's block runs on to Cid's prefix, and Ann's line is
    # not a new turn, since only the speaker's (Cid's) and the user's names split turns
    "<|im_start|>user\nUma: Uma: Hi\nAnn: Hmph.\n[end]\n[Example Messages: Cid]<|im_end|>\n"
    "<|im_start|>user\nUma: Uma: Cat?<|im_end|>\n"
    "<|im_start|>assistant\nCid: Cid: Meow.\n[end]<|im_end|>\n"
    "<|im_start|>assistant\nAnn: Welcome.<|im_end|>\n"
    "<|im_start|>assistant\nBob: Evening.<|im_end|>\n"
    "<|im_start|>user\nUma: Hello all. Cid?<|im_end|>\n"
    "<|im_start|>assistant\nAnn: He naps.<|im_end|>"
    "\n<|im_start|>assistant\nCid:"
)


def test_chatml_join_mode_is_sillytaverns_prompt(store):
    assert _prompt(store, JOIN, "ChatML").text == ours(CHATML_JOIN)


# --- Alpaca (names "force", wrap on, suffixes "\n\n") --------------------------------------
ALPACA_JOIN = (
    # the shipped Alpaca story string: its last "{{/if}}" line is standalone, leaving one
    # "\n" after the persona block (empty here) -> the scenario line then a blank line
    SYSTEM + "\n"
    "[Description: Ann]\nAnn forges blades for Uma.\n[end]\n"
    "[Description: Bob]\nBob is a bard.\n[end]\n"
    "[Description: Cid]\nCid is a cat.\n[end]\n"
    "Cid's personality: [Personality: Ann]\nblunt\n[end]\n"
    "[Personality: Bob]\nmerry\n[end]\n"
    "[Personality: Cid]\nlazy\n[end]\n"
    "Scenario: [Scenario: Ann]\nA forge.\n[end]\n"
    "[Scenario: Cid]\nA rug.\n[end]\n"
    "\n"
    # examples: "force" in a group names both sides (formatInstructModeExamples)
    "### Instruction:\nUma: Uma: Hi\nAnn: Hmph.\n[end]\n[Example Messages: Cid]\n\n"
    "### Instruction:\nUma: Uma: Cat?\n\n"
    "### Response:\nCid: Cid: Meow.\n[end]\n\n"
    # the chat: "force" names every member (selected_group && name !== name1), not Uma
    "### Response:\nAnn: Welcome.\n\n"
    "### Response:\nBob: Evening.\n\n"
    "### Instruction:\nHello all. Cid?\n\n"
    "### Response:\nAnn: He naps.\n"
    # formatInstructModePrompt: "\n### Response:\nCid:" (named: a group under "force")
    "\n### Response:\nCid:"
)


def test_alpaca_join_mode_is_sillytaverns_prompt(store):
    built = _prompt(store, JOIN, "Alpaca")
    assert built.text == ours(ALPACA_JOIN)
    assert set(built.stop) == {
        "\nUma:",
        "\nAnn:",
        "\nBob:",
        "\n### Instruction:",  # input, output and system sequences (no stop sequence)
        "\n### Response:",
        "\n### Input:",
    }


# A fixed story string of our own: {{group}} and {{charIfNotGroup}} are not story-string
# parameters, so Handlebars hands them to `helperMissing` -> `substituteParams` -> the
# members' names. Its lines all hold text, so none is standalone.
FIXED = (
    "{{#if system}}{{system}}\n{{/if}}"
    "In the scene: {{group}}; {{charIfNotGroup}} are here.\n"
    "{{#if description}}{{char}}: {{description}}\n{{/if}}"
    "{{#if scenario}}Scenario: {{scenario}}{{/if}}"
)
ALPACA_SWAP_FIXED = (
    SYSTEM + "\n"
    "In the scene: Ann, Bob, Cid; Ann, Bob, Cid are here.\n"
    "Cid: Cid is a cat.\n"
    # no "\n" after the scenario in the template: renderStoryString adds it (wrap on)
    "Scenario: A rug.\n"
    "### Instruction:\nUma: Uma: Cat?\n\n"
    "### Response:\nCid: Cid: Meow.\n\n"
    "### Response:\nAnn: Welcome.\n\n"
    "### Response:\nBob: Evening.\n\n"
    "### Instruction:\nHello all. Cid?\n\n"
    "### Response:\nAnn: He naps.\n"
    "\n### Response:\nCid:"
)


def test_alpaca_swap_mode_with_a_fixed_story_string_names_the_group(store):
    built = _prompt(store, GroupSettings(card_mode=CardMode.SWAP), "Alpaca", FIXED)
    assert built.text == ours(ALPACA_SWAP_FIXED)


@pytest.mark.parametrize("template", ["ChatML", "Alpaca"])
def test_the_doubled_example_names_are_the_only_difference(store, template):
    """The one place Parlor departs: without it the texts would be equal."""
    st = CHATML_SWAP if template == "ChatML" else ALPACA_SWAP_FIXED
    built = _prompt(
        store,
        GroupSettings(card_mode=CardMode.SWAP),
        template,
        FIXED if template == "Alpaca" else None,
    )
    assert built.text != st and built.text == ours(st)
    assert st.count("Uma: Uma: ") == 1 and st.count("Cid: Cid: ") == 1


def test_join_mode_sends_every_members_character_note(store):
    """group-chats.js `getGroupDepthPrompts`: in join mode each member's
    `extensions.depth_prompt` (its own {{char}} filled in) is injected as
    `DEPTH_PROMPT_<n>`; `getExtensionPrompt` joins one depth and role's prompts in key order
    with "\\n", and `doChatInject` puts them `depth` lines from the end as a narrator line,
    which `formatInstructModeChat` writes with the system sequence and no name. In swap mode
    `getGroupDepthPrompts` is empty and only the speaker's own note is sent."""
    notes = {
        "Ann": "[{{char}} eyes {{user}}.]",
        "Cid": "[{{char}} purrs.]",
    }
    cards = [
        {
            **c,
            "extensions": {
                "depth_prompt": {"prompt": notes[c["name"]], "depth": 1, "role": "system"}
            },
        }
        if c["name"] in notes
        else c
        for c in CARDS
    ]
    joined = _prompt(store, JOIN, "ChatML", cards=cards).text
    swapped = _prompt(store, GroupSettings(card_mode=CardMode.SWAP), "ChatML", cards=cards).text
    newest = "<|im_start|>assistant\nAnn: He naps.<|im_end|>"
    assert joined == ours(
        CHATML_JOIN.replace(
            newest, "<|im_start|>system\n[Ann eyes Uma.]\n[Cid purrs.]<|im_end|>\n" + newest
        )
    )
    assert swapped == ours(
        CHATML_SWAP.replace(newest, "<|im_start|>system\n[Cid purrs.]<|im_end|>\n" + newest)
    )


def _card_file(tmp_path, data):
    path = tmp_path / f"{data['name']}.json"
    path.write_text(json.dumps({"spec": "chara_card_v2", "spec_version": "2.0", "data": data}))
    return str(path)


@pytest.mark.parametrize("mode", ["swap", "join"])
def test_parlor_prompt_with_several_cards_prints_the_same_prompt(tmp_path, capsys, mode):
    """`parlor prompt --card A --card B --card C` builds what the window sends: the same
    SillyTavern text for the same members and chat (the command line has no join prefix)."""
    from app.cli import main

    chat = tmp_path / "inn.jsonl"
    lines = [
        {"name": "Ann", "is_user": False, "mes": "Welcome.", "original_avatar": "Ann.png"},
        {"name": "Bob", "is_user": False, "mes": "Evening.", "original_avatar": "Bob.png"},
        {"name": "Uma", "is_user": True, "mes": "Hello all. Cid?"},
        {"name": "Ann", "is_user": False, "mes": "He naps.", "original_avatar": "Ann.png"},
    ]
    chat.write_text("".join(json.dumps(line) + "\n" for line in lines))
    cards = [arg for c in CARDS for arg in ("--card", _card_file(tmp_path, c))]
    code = main(
        ["prompt", *cards, "--chat", str(chat), "--speaker", "Cid", "--group-mode", mode]
        + ["--template", "ChatML", "--user", "Uma", "--json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    expected = CHATML_SWAP if mode == "swap" else _join_without_affixes()
    assert json.loads(out)["prompt"] == ours(expected)


def _join_without_affixes() -> str:
    """CHATML_JOIN with no prefix or suffix: each field joined by "\\n" alone, and the
    joined examples one block each (`parseMesExamples` splits at each `<START>`)."""
    return (
        "<|im_start|>system\n" + SYSTEM + "\n"
        "Ann forges blades for Uma.\nBob is a bard.\nCid is a cat.\n"
        "Cid's personality: blunt\nmerry\nlazy\n"
        "Scenario: A forge.\nA rug.<|im_end|>\n"
        # Ann's block: her line is not the speaker's, so it stays in the user's turn
        "<|im_start|>user\nUma: Uma: Hi\nAnn: Hmph.<|im_end|>\n"
        "<|im_start|>user\nUma: Uma: Cat?<|im_end|>\n"
        "<|im_start|>assistant\nCid: Cid: Meow.<|im_end|>\n"
        "<|im_start|>assistant\nAnn: Welcome.<|im_end|>\n"
        "<|im_start|>assistant\nBob: Evening.<|im_end|>\n"
        "<|im_start|>user\nUma: Hello all. Cid?<|im_end|>\n"
        "<|im_start|>assistant\nAnn: He naps.<|im_end|>"
        "\n<|im_start|>assistant\nCid:"
    )
