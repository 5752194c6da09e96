"""Where fired lore goes, matched to SillyTavern 1.12: the end of `checkWorldInfo`
(public/scripts/world-info.js), `getExtensionPrompt` and `doChatInject` (public/script.js),
`setFloatingPrompt` (public/scripts/authors-note.js)."""

from __future__ import annotations

from app.core.prompt import Message, PromptInput, PromptSettings, build_prompt, preset
from app.core.prompt.worldinfo import AuthorsNote, NotePosition, Role
from app.core.prompt.worldinfo.in_prompt import LoreInput

CARD = {
    "name": "Mira",
    "description": "DESC",
    "personality": "PERS",
    "scenario": "SCEN",
    "mes_example": "<START>\n{{char}}: EXAMPLE",
}
HISTORY = [
    Message("assistant", "m1"),
    Message("user", "m2 lamp"),
    Message("assistant", "m3"),
    Message("user", "m4"),
]


def lore(name, position, order=100, **ext):
    return {
        "keys": [],
        "constant": True,
        "content": name.upper(),
        "name": name,
        "enabled": True,
        "insertion_order": order,
        "extensions": {"position": position, **ext},
    }


def build(entries, *, history=HISTORY, card=CARD, note=None, continue_last=False, **settings):
    inp = PromptInput(
        {**card, "character_book": {"entries": entries}},
        "Ann",
        history=history,
        continue_last=continue_last,
        lore=LoreInput(authors_note=note),
    )
    return build_prompt(
        inp, preset("chatml"), lambda s: (len(s) + 3) // 4, 4096, 256, PromptSettings(**settings)
    )


def messages(text: str) -> list[str]:
    """The chatml messages as 'role: text'."""
    out = []
    for chunk in text.split("<|im_start|>")[1:]:
        role, _, body = chunk.partition("\n")
        out.append(f"{role}: {body.replace('<|im_end|>', '').strip()}".strip())
    return out


def test_same_position_lowest_order_first():
    """Entries are taken by order, highest first, and each is unshifted onto its list: the
    highest order ends up last, nearest the text that follows (`checkWorldInfo`)."""
    built = build([lore("b", 0, 20), lore("a", 0, 10), lore("c", 0, 30), lore("z", 1, 5)])
    story = messages(built.text)[0]
    assert story.index("A") < story.index("B") < story.index("C") < story.index("DESC")
    assert story.index("SCEN") < story.index("Z")
    assert built.lore == ["a", "b", "c", "z"]


def test_story_string_order():
    """SillyTavern's default story string: system, wiBefore, description, personality,
    scenario, wiAfter, persona; then the examples."""
    built = build([lore("before", 0), lore("after", 1)])
    names = [p.name for p in built.parts]
    assert names[:7] == [
        "system",
        "lore_before",
        "description",
        "personality",
        "scenario",
        "lore_after",
        "examples",
    ]


def test_example_positions():
    """`EMTop` entries are unshifted onto the examples one by one (so the highest order comes
    first), `EMBottom` pushed after them (lowest order first); each is its own example block
    (`parseMesExamples`), sent as example turns after an "[Example Chat]" line each
    (`setOpenAIMessageExamples`)."""
    built = build([lore("t1", 5, 10), lore("t2", 5, 20), lore("b1", 6, 10), lore("b2", 6, 20)])
    turns = messages(built.text)
    end = turns.index("system: [Start a new Chat]")
    blocks = " | ".join(turns[1:end]).split("system: [Example Chat] | ")[1:]
    assert [b.strip(" |") for b in blocks] == [
        "system: T2",
        "system: T1",
        "assistant: EXAMPLE",
        "system: B1",
        "system: B2",
    ]


def test_at_depth_with_roles():
    """`@depth` groups by (depth, role); `doChatInject` inserts depth N before the last N
    messages, the roles of one depth as assistant, user, system (system nearest the end)."""
    built = build(
        [
            lore("s", 4, depth=2),
            lore("u", 4, depth=2, role=1),
            lore("a", 4, depth=2, role=2),
            lore("zero", 4, depth=0),
            lore("deep", 4, depth=99),
        ]
    )
    turns = messages(built.text)
    assert turns[turns.index("system: [Start a new Chat]") + 1 :] == [
        "system: DEEP",
        "assistant: m1",
        "user: m2 lamp",
        "assistant: A",
        "user: U",
        "system: S",
        "assistant: m3",
        "user: m4",
        "system: ZERO",
        "assistant:",
    ]
    depth = [t for t in built.lore_trace if t.entry == "u"][0]
    assert depth.position == "at_depth 2 user"


def test_depth_zero_while_continuing_goes_before_the_open_reply():
    """`doChatInject`: `isContinue && i === 0 ? 1 : i`."""
    history = HISTORY + [Message("assistant", "half a rep")]
    built = build([lore("zero", 4, depth=0)], history=history, continue_last=True)
    assert messages(built.text)[-2:] == ["system: ZERO", "assistant: half a rep"]


def test_authors_note_carries_its_lore_and_joins_the_characters_note():
    """ANTop/ANBottom wrap the note's text; at one depth and role the prompts join in key
    order: the author's note ("2_floating_prompt"), the character's note ("DEPTH_PROMPT"),
    then `@depth` lore ("customDepthWI-…")."""
    card = {
        **CARD,
        "extensions": {"depth_prompt": {"prompt": "CHARNOTE", "depth": 1, "role": "system"}},
    }
    note = AuthorsNote("NOTE", depth=1)
    built = build([lore("top", 2), lore("bottom", 3), lore("wi", 4, depth=1)], card=card, note=note)
    assert "system: TOP\nNOTE\nBOTTOM\nCHARNOTE\nWI" in messages(built.text)


def test_authors_note_in_the_system_block_or_before_it():
    """`note_position` 0 (IN_PROMPT) follows the story string, 2 (BEFORE_PROMPT) precedes it."""
    after = build([lore("top", 2)], note=AuthorsNote("NOTE", position=NotePosition.IN_PROMPT))
    story = messages(after.text)[0]
    assert story.endswith("TOP\nNOTE") and "authors_note" in [p.name for p in after.parts]
    before = build([], note=AuthorsNote("NOTE", position=NotePosition.BEFORE_PROMPT))
    assert messages(before.text)[0].startswith("system: NOTE\n\n")


def test_authors_note_interval():
    """`setFloatingPrompt`: interval 1 always; otherwise when the user-message count is a
    multiple of the interval. A skipped note also drops its lore (`shouldWIAddPrompt`)."""
    assert AuthorsNote(interval=1).applies(0)
    assert [AuthorsNote(interval=3).applies(n) for n in range(7)] == [
        False,
        False,
        False,
        True,
        False,
        False,
        True,
    ]
    assert not AuthorsNote(interval=0).applies(5)
    off = build([lore("top", 2)], note=AuthorsNote("NOTE", interval=3))  # 2 user messages
    assert "TOP" not in off.text and "NOTE" not in off.text


def test_authors_note_chat_metadata_round_trip():
    """SillyTavern's `metadata_keys`: note_prompt, note_interval, note_position, note_depth,
    note_role."""
    meta = {
        "note_prompt": "Rain.",
        "note_interval": 2,
        "note_position": 1,
        "note_depth": 3,
        "note_role": 2,
    }
    note = AuthorsNote.from_chat_metadata(meta)
    assert (note.text, note.interval, note.depth, note.role) == ("Rain.", 2, 3, Role.ASSISTANT)
    assert note.to_chat_metadata() == meta
    assert AuthorsNote.from_chat_metadata({}) == AuthorsNote()


def test_authors_note_in_the_system_block_with_an_instruct_preset():
    """Text completion in SillyTavern: `beforeScenarioAnchor + storyString +
    afterScenarioAnchor + mesExmString + …` (`Generate`, public/script.js)."""
    from app.core.prompt.instruct import instruct_template

    template = instruct_template("Alpaca", user_name="Ann")

    def text(position):
        inp = PromptInput(
            {"name": "M", "description": "DESC"},
            "Ann",
            history=[Message("user", "hi")],
            lore=LoreInput(authors_note=AuthorsNote("NOTE", position=position)),
        )
        return build_prompt(inp, template, len, 4096, 256).text

    assert "DESC\n\nNOTE\n### Instruction:\nhi" in text(NotePosition.IN_PROMPT)
    assert text(NotePosition.BEFORE_PROMPT).startswith("NOTE\nWrite M's next reply")
