"""Macros as the prompt builder runs them: the card's and the chat's context, variables that
change only when a prompt is sent, unknown macros listed for the inspector."""

from __future__ import annotations

import random
from datetime import datetime

from app.core.prompt import Message, PromptInput, build_prompt, preset
from app.core.prompt.instruct import instruct_template
from app.core.prompt.macros import MacroInput, Variables

CARD = {
    "name": "Bob",
    "description": "{{char}} keeps the lighthouse. {{setvar::storm::rising}}",
    "personality": "stern",
    "scenario": "Storm: {{getvar::storm}}.",
    "mes_example": "",
    "character_version": "3",
}


def count(text: str) -> int:
    return (len(text) + 3) // 4


def build(history, *, card=CARD, template=None, macros=None, n_ctx=2048, reply=200):
    inp = PromptInput(card=card, user_name="Ann", history=history, macros=macros or MacroInput())
    return build_prompt(
        inp,
        template or preset("chatml"),
        count,
        n_ctx,
        reply,
        rng=random.Random(1),
        clock=lambda: datetime(2024, 5, 1, 10, 0),
    )


def test_card_macros_see_variables_the_card_sets_and_the_chat_reads_them():
    """SillyTavern's `Generate` reads the card's fields before the chat, so a `{{setvar}}` in
    the description is there when the scenario and the newest message read it."""
    history = [Message("user", "What is the storm doing? {{getvar::storm}}")]
    built = build(history)
    assert "Bob keeps the lighthouse." in built.text and "{{setvar" not in built.text
    assert "Storm: rising." in built.text
    assert "What is the storm doing? rising" in built.text
    assert built.variables is not None and built.variables.chat == {"storm": "rising"}
    assert built.variables.changed == {"chat"}


def test_the_callers_variables_are_not_changed_by_a_build():
    """A preview must change nothing: the build works on a copy the chat saves when sent."""
    stored = Variables(chat={"count": 1})
    card = {**CARD, "description": "{{incvar::count}} visits."}
    built = build([Message("user", "Hi")], card=card, macros=MacroInput(variables=stored))
    assert "2 visits." in built.text
    assert stored.chat == {"count": 1} and built.variables is not None
    assert built.variables.chat == {"count": 2}


def test_an_old_message_does_not_write_again_but_the_newest_does():
    """A message's macros run once in SillyTavern (when it is sent): older turns only read."""
    history = [
        Message("user", "{{addvar::gold::5}}Pay me."),
        Message("assistant", "Here."),
        Message("user", "{{addvar::gold::1}}Gold: {{getvar::gold}}"),
    ]
    built = build(history, macros=MacroInput(variables=Variables(chat={"gold": 10})))
    assert built.variables is not None and built.variables.chat["gold"] == 11
    assert "Pay me." in built.text and "{{addvar" not in built.text


def test_the_greetings_writes_run_on_the_first_reply():
    """`Generate` substitutes `chat[0].mes` (the greeting) and stores it: its macros run once,
    on the first generation."""
    history = [Message("assistant", "{{setvar::met::yes}}Welcome."), Message("user", "Hi")]
    card = {**CARD, "description": "", "scenario": ""}
    assert build(history, card=card).variables.chat == {"met": "yes"}
    longer = history + [Message("assistant", "So."), Message("user", "And?")]
    assert build(longer, card=card).variables.chat == {}


def test_unknown_macros_are_listed_and_left_as_written():
    card = {**CARD, "personality": "stern {{mood_today}}"}
    built = build([Message("user", "Hi {{wat}}")], card=card)
    assert "stern {{mood_today}}" in built.text and "Hi {{wat}}" in built.text
    assert built.unknown_macros == ["{{mood_today}}", "{{wat}}"]


def test_banned_words_leave_the_prompt():
    built = build([Message("user", 'No {{banned "alas"}}sighing.')])
    assert "No sighing." in built.text and built.banned_words == ["alas"]


def test_session_macros_in_the_prompt():
    """`{{maxPrompt}}` is the context less the reply; `{{model}}`, `{{charVersion}}` and the
    chat state come from the caller or the history."""
    card = {**CARD, "scenario": "{{model}} {{maxPrompt}} v{{charVersion}} #{{lastMessageId}}"}
    history = [Message("assistant", "Hello."), Message("user", "Hi")]
    built = build(history, card=card, macros=MacroInput(model="tiny"), n_ctx=2048, reply=200)
    assert "Scenario: tiny 1848 v3 #1" in built.text


def test_instruct_macros_and_the_story_strings_own_macros():
    """`renderStoryString` runs `substituteParams` on the story string's output, where the
    instruct macros (`replaceInstructMacros`) are known."""
    template = instruct_template("ChatML")
    template = type(template)(
        template.preset,
        type(template.context)(
            name="Custom",
            story_string=(
                "{{#if description}}{{description}}\n{{/if}}[{{instructStop}}] {{weekday}}\n"
            ),
        ),
    )
    built = build([Message("user", "Hi")], template=template)
    assert "Bob keeps the lighthouse.  \n" not in built.text
    assert "[<|im_end|>] Wednesday" in built.text
    assert built.unknown_macros == []


def test_no_shipped_preset_or_context_template_leaves_a_macro_unknown():
    """Every macro SillyTavern's shipped instruct presets and context templates use is known."""
    from app.core.prompt.instruct import InstructTemplate, shipped_context, shipped_instruct

    card = {**CARD, "mes_example": "<START>\n{{user}}: Hi\n{{char}}: Yo"}
    presets, contexts = shipped_instruct(), shipped_context()
    pairs = [(p, contexts["Default"]) for p in presets.values()]
    pairs += [(presets["ChatML"], c) for c in contexts.values()]
    for preset_, context in pairs:
        built = build(
            [Message("user", "Hi")], card=card, template=InstructTemplate(preset_, context)
        )
        assert built.unknown_macros == [], (preset_.name, context.name)
        assert "{{" not in built.text, (preset_.name, context.name)
