import random
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.prompt import (
    Message,
    PromptInput,
    PromptSettings,
    build_prompt,
    preset,
    template_from_gguf,
)
from app.core.prompt.instruct import instruct_template
from tests.prompt_models import CHATML_JINJA, MISTRAL_JINJA

CARD = {
    "name": "Alice",
    "description": "{{char}} is a clever fox who lives in the old forest.",
    "personality": "sly, warm",
    "scenario": "{{user}} meets {{char}} at the river.",
    "first_mes": "Hello, {{user}}!",
    "mes_example": "<START>\n{{user}}: Who are you?\n{{char}}: A fox.\n<START>\n{{char}}: *grins*",
    "system_prompt": "",
    "post_history_instructions": "",
    "character_book": {
        "entries": [
            {
                "keys": ["dragon"],
                "content": "Dragons sleep under the hill.",
                "enabled": True,
                "insertion_order": 10,
                "name": "dragons",
                "extensions": {},
            },
        ]
    },
}


def count(text: str) -> int:
    return (len(text) + 3) // 4


def build(history, *, card=CARD, template=None, n_ctx=4096, reply=256, **settings):
    inp = PromptInput(
        card=card,
        user_name="Bob",
        persona="{{user}} is a traveller.",
        history=history,
        continue_last=settings.pop("continue_last", False),
    )
    return build_prompt(
        inp,
        template or preset("chatml"),
        count,
        n_ctx,
        reply,
        PromptSettings(**settings),
        rng=random.Random(1),
        clock=lambda: datetime(2024, 5, 1, 10, 0),
    )


def chat(turns: int) -> list[Message]:
    history = [Message("assistant", CARD["first_mes"])]
    for i in range(turns):
        history.append(Message("user", f"User line {i}: " + "words " * 12))
        history.append(Message("assistant", f"Alice line {i}: " + "answer " * 14))
    return history


def test_default_story_string():
    built = build([Message("assistant", "Hello, {{user}}!"), Message("user", "Hi.")])
    assert built.text == (
        "<|im_start|>system\n"
        "Write Alice's next reply in a fictional chat between Alice and Bob.\n\n"
        "Alice is a clever fox who lives in the old forest.\n\n"
        "Alice's personality: sly, warm\n\n"
        "Scenario: Bob meets Alice at the river.\n\n"
        "Bob is a traveller.<|im_end|>\n"
        # the example dialogue as turns (SillyTavern's `setOpenAIMessageExamples`)
        "<|im_start|>system\n[Example Chat]<|im_end|>\n"
        "<|im_start|>user\nWho are you?<|im_end|>\n"
        "<|im_start|>assistant\nA fox.<|im_end|>\n"
        "<|im_start|>system\n[Example Chat]<|im_end|>\n"
        "<|im_start|>assistant\n*grins*<|im_end|>\n"
        "<|im_start|>system\n[Start a new Chat]<|im_end|>\n"
        "<|im_start|>assistant\nHello, Bob!<|im_end|>\n"
        "<|im_start|>user\nHi.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert [p.name for p in built.parts] == [
        "system",
        "description",
        "personality",
        "scenario",
        "persona",
        "examples",
        "history",
        "template",
    ]
    assert built.tokens == sum(p.tokens for p in built.parts)
    assert built.dropped_messages == 0 and built.lore == [] and built.warnings == []


def test_card_system_prompt_with_original_and_post_history():
    card = {
        **CARD,
        "system_prompt": "{{original}} Stay in character.",
        "post_history_instructions": "Reply in one paragraph, {{user}}.",
    }
    built = build([Message("user", "Hi.")], card=card)
    assert built.text.startswith(
        "<|im_start|>system\nWrite Alice's next reply in a fictional "
        "chat between Alice and Bob. Stay in character.\n\n"
    )
    assert built.text.endswith(
        "<|im_start|>user\nHi.<|im_end|>\n<|im_start|>system\n"
        "Reply in one paragraph, Bob.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_nickname_is_char():
    built = build([Message("user", "Hi {{char}}.")], card={**CARD, "nickname": "Ali"})
    assert "Hi Ali." in built.text and "Ali is a clever fox" in built.text


def test_custom_order_and_left_out_parts():
    book = {"entries": [{**CARD["character_book"]["entries"][0], "position": "before_char"}]}
    built = build(
        [Message("user", "a dragon!")],
        card={**CARD, "character_book": book},
        order=["lore_before", "description", "history", "system"],
    )
    assert built.text.startswith("<|im_start|>system\nDragons sleep under the hill.\n\nAlice is")
    assert "personality" not in built.text and "<START>" not in built.text
    assert built.text.endswith(
        "<|im_start|>system\nWrite Alice's next reply in a fictional chat "
        "between Alice and Bob.<|im_end|>\n<|im_start|>assistant\n"
    )
    assert [p.name for p in built.parts][:3] == ["lore_before", "description", "history"]


def test_unknown_parts_are_reported():
    built = build([Message("user", "x")], order=["system", "bogus", "history"])
    assert any("bogus" in w for w in built.warnings)


def test_lore_without_a_position_goes_after_the_character_definition():
    """SillyTavern's `convertCharacterBook`: an entry that is not `before_char` is position 1,
    after the scenario in the story string (tests/core/prompt/test_prompt_lore_placement.py has
    every position)."""
    built = build(chat(2) + [Message("user", "Tell me about the dragon.")])
    assert built.lore == ["dragons"]
    lore_at = built.text.index("Dragons sleep under the hill.")
    assert built.text.index("Scenario: Bob meets") < lore_at < built.text.index("Bob is a trav")
    assert [p.name for p in built.parts][:6] == [
        "system",
        "description",
        "personality",
        "scenario",
        "lore_after",
        "persona",
    ]


def test_continue_leaves_the_reply_open_after_the_tail():
    card = {**CARD, "post_history_instructions": "Be brief."}
    history = [Message("user", "dragon?"), Message("assistant", "Well, the dragon")]
    built = build(history, card=card, continue_last=True)
    assert built.text.endswith(
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>assistant\nWell, the dragon"
    )


def test_continue_without_a_reply_warns():
    built = build([Message("user", "hi")], continue_last=True)
    assert built.text.endswith("<|im_start|>assistant\n")
    assert "no reply to continue" in built.warnings[0]


def test_stop_strings():
    built = build(
        [Message("user", "x")], extra_stops=["\n{{char}} thinks", ""], template=preset("llama3")
    )
    assert built.stop == [
        "\nBob:",
        "<|eot_id|>",
        "<|end_of_text|>",
        "<|start_header_id|>",
        "\nAlice thinks",
    ]


def test_history_macros_are_stable_between_builds():
    history = [Message("user", "I roll {{roll:d100}} and pick {{random:a,b,c,d,e}}")]
    first = build(history).text
    assert "{{" not in first
    assert all(build(history).text == first for _ in range(3))


def test_history_that_fits_is_kept_whole():
    built = build(chat(10))
    assert built.dropped_messages == 0
    assert built.tokens <= 4096 - 256


def _fits_one_more(built, history, template=None, n_ctx=1200, reply=200, **kw):
    """Would keeping one more older message still fit? (It must not, if the fit is maximal.)"""
    if built.dropped_messages == 0:
        return False
    inp = PromptInput(
        card=CARD,
        user_name="Bob",
        persona="{{user}} is a traveller.",
        history=history[built.dropped_messages - 1 :],
    )
    more = build_prompt(
        inp,
        template or preset("chatml"),
        count,
        10**6,
        0,
        PromptSettings(**kw),
        rng=random.Random(1),
        clock=lambda: datetime(2024, 5, 1, 10, 0),
    )
    return more.tokens <= n_ctx - reply


def test_history_goes_newest_first_one_message_at_a_time():
    """SillyTavern `Generate` (public/script.js): the chat is walked newest first and the walk
    stops at the first message that does not fit; examples are added after it, if room."""
    history = chat(30) + [Message("user", "The very last question?")]
    card = {**CARD, "mes_example": CARD["mes_example"] + " " + "grin " * 80}
    built = build(history, card=card, n_ctx=1200, reply=200)
    assert built.tokens <= 1000 and built.fits
    assert built.dropped_messages > 0
    kept, gone = history[built.dropped_messages], history[built.dropped_messages - 1]
    assert kept.text.strip() in built.text and gone.text.strip() not in built.text
    assert "clever fox" in built.text
    assert "*grins*" not in built.text  # the examples gave way to the history
    assert any("example dialogue blocks were left out" in w for w in built.warnings)
    assert built.text.endswith("The very last question?<|im_end|>\n<|im_start|>assistant\n")
    assert not _fits_one_more(built, history)


def test_pinned_examples_stay_and_the_history_gives_way():
    """SillyTavern `Generate`: with `pin_examples` the examples are in the prompt before the
    history is counted."""
    history = chat(30) + [Message("user", "Last?")]
    loose = build(history, n_ctx=1200, reply=200)
    pinned = build(history, n_ctx=1200, reply=200, pin_examples=True)
    assert "*grins*" in pinned.text and pinned.tokens <= 1000
    assert pinned.dropped_messages > loose.dropped_messages
    assert not any("example" in w for w in pinned.warnings)


def test_examples_are_added_block_by_block_when_there_is_room():
    """SillyTavern `Generate`: after the history, example blocks are added one at a time while
    they fit (`count_exm_add`)."""
    card = {
        **CARD,
        "mes_example": "<START>\n{{char}}: one "
        + "a " * 40
        + "\n<START>\n{{char}}: two "
        + "b " * 400,
    }
    built = build([Message("user", "Hi.")], card=card, n_ctx=400, reply=100)
    assert "one a" in built.text and "two b" not in built.text
    assert any("1 of 2 example dialogue blocks" in w for w in built.warnings)
    examples = next(p for p in built.parts if p.name == "examples")
    assert "[Example Chat]" in examples.text and "one a" in examples.text
    assert "two" not in examples.text


def test_too_small_a_context_shortens_the_card_and_says_what_to_raise():
    big = {**CARD, "description": "{{char}} is a clever fox. " + "She knows the forest. " * 200}
    history = chat(5) + [Message("user", "Last words.")]
    built = build(history, card=big, n_ctx=600, reply=100)
    assert built.fits and built.tokens <= 500
    assert built.dropped_messages == len(history) - 1
    assert "Last words." in built.text and "clever fox" in built.text
    warning = next(w for w in built.warnings if "description was shortened" in w)
    assert "raise Context size to 4096 in Settings → Model" in warning  # 1,200 + reply + chat


def test_a_newest_message_bigger_than_the_context_is_cut_from_its_start():
    history = [Message("user", "start " + "filler " * 2000 + "the real question?")]
    built = build(history, n_ctx=512, reply=100)
    assert built.fits and built.tokens <= 412
    assert built.text.endswith("the real question?<|im_end|>\n<|im_start|>assistant\n")
    assert any("newest message was shortened" in w for w in built.warnings)


def test_a_reply_length_above_the_context_is_capped():
    built = build([Message("user", "Hi.")], n_ctx=1024, reply=4000)
    assert built.reply_tokens == 768 and built.tokens <= 1024 - 768
    assert any("replies are cut at 768 tokens" in w for w in built.warnings)


def test_continue_keeps_the_open_reply_and_its_question():
    history = chat(20) + [Message("user", "Question?"), Message("assistant", "Half an answer")]
    built = build(history, n_ctx=900, reply=100, continue_last=True)
    assert built.dropped_messages > 0
    assert built.text.endswith("Question?<|im_end|>\n<|im_start|>assistant\nHalf an answer")


TEMPLATES = {
    "chatml": lambda: preset("chatml"),
    "mistral": lambda: preset("mistral"),
    "gemma": lambda: preset("gemma"),
    "llama3": lambda: preset("llama3"),
    "plain": lambda: preset("plain"),
    "jinja-chatml": lambda: template_from_gguf(CHATML_JINJA, "", "<|im_end|>"),
    "jinja-mistral": lambda: template_from_gguf(MISTRAL_JINJA, "<s>", "</s>"),
    "st-chatml": lambda: instruct_template("ChatML"),
    "st-mistral": lambda: instruct_template("Mistral V2 & V3"),
    "st-alpaca": lambda: instruct_template("Alpaca"),
    "st-metharme": lambda: instruct_template("Metharme"),
}


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_turn_past_the_limit_keeps_all_the_history_that_fits(name):
    """SillyTavern `Generate`: each turn keeps as many recent messages as fit, one at a time;
    never only the card and the new message while room is left (the old bug at n_ctx 2048)."""
    template = TEMPLATES[name]()
    history = [Message("assistant", CARD["first_mes"])]
    lore_seen, dropped = set(), []
    for turn in range(40):
        topic = "the dragon" if turn % 3 == 0 else "the weather"  # lore comes and goes
        history.append(Message("user", f"Turn {turn}: what about {topic}? " + "more " * 10))
        built = build(history, template=template, n_ctx=1500, reply=200)
        assert built.tokens <= 1300 and built.fits
        assert not [w for w in built.warnings if "example" not in w]
        if built.dropped_messages:
            assert not _fits_one_more(built, history, template, n_ctx=1500)
            assert len(history) - built.dropped_messages > 10
        dropped.append(built.dropped_messages)
        lore_seen.add(bool(built.lore))
        history.append(Message("assistant", f"Reply {turn}. " + "words " * 12))
    assert dropped[-1] > 0 and lore_seen == {True, False}


def test_the_walk_costs_what_fits_not_the_whole_chat():
    """Building for a 5,000-message chat renders and counts about what fits, not the chat."""
    seen = []

    def spy(text):
        seen.append(text)
        return count(text)

    history = chat(2500) + [Message("user", "dragon?")]
    inp = PromptInput(card=CARD, user_name="Bob", history=history)
    built = build_prompt(inp, preset("chatml"), spy, 2048, 200)
    kept = len(history) - built.dropped_messages
    assert 10 < kept < 100
    assert len(seen) < 4 * kept + 40


def test_tokens_are_counted_per_piece_never_the_whole_prompt():
    seen = []

    def spy(text):
        seen.append(text)
        return count(text)

    history = chat(30) + [Message("user", "dragon?")]
    inp = PromptInput(card=CARD, user_name="Bob", history=history)
    built = build_prompt(inp, preset("chatml"), spy, 1200, 200)
    assert built.dropped_messages > 0
    assert built.text not in seen
    assert max(map(len, seen)) < len(built.text) / 3
    assert len(seen) == len(set(seen))  # each distinct piece once per build


def test_a_failing_template_warns_in_the_built_prompt():
    template = template_from_gguf("{{ ''.__class__ }}[INST]", "<s>", "</s>")
    built = build([Message("user", "x")], template=template)
    assert any("could not be used" in w for w in built.warnings)
    assert built.text.startswith("[INST] Write Alice's next reply")
    # a model's template (here its fallback) gets the examples as turns of their own
    assert built.text.endswith("[/INST]*grins*</s>[INST] [Start a new Chat]\n\nx [/INST]")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["user", "assistant", "system"]), st.integers(0, 60)),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 3000),
    st.integers(0, 1500),
    st.integers(300, 3000),
    st.booleans(),
    st.sampled_from(sorted(TEMPLATES)),
)
def test_budget_invariants(shape, description, examples, n_ctx, pin, name):
    """For random cards, chats and context sizes: the prompt never exceeds the context, always
    ends with the newest message, and never drops a newer message while keeping an older one
    (SillyTavern `Generate` and `checkPromptSize`)."""
    history = [Message(role, f"m{i}z " + "w " * size) for i, (role, size) in enumerate(shape)]
    card = {
        **CARD,
        "description": "d " * description,
        "mes_example": "<START>\n{{char}}: " + "e " * examples,
    }
    built = build(
        history, card=card, template=TEMPLATES[name](), n_ctx=n_ctx, reply=50, pin_examples=pin
    )
    assert built.fits and built.tokens <= n_ctx - 50
    kept = [f"m{i}z" in built.text for i in range(len(history))]
    assert kept[-1] or not history[-1].text.strip()
    assert kept == sorted(kept)  # a kept message is never older than a dropped one
    newest = history[-1].text.strip()
    assert newest[-20:] in built.text


def test_card_and_chat_text_are_normalised_before_prompting():
    """SillyTavern sends text without \\r and without spaces at line ends (Generate's
    `.replace(/\\r/gm, '')`); what is stored is not changed."""
    card = {**CARD, "description": "{{char}} is a fox.  \r\nShe is clever.\t"}
    history = [Message("user", "Hi there.   \r\nHow are you?  ")]
    built = build(history, card=card)
    assert "Alice is a fox.\nShe is clever.\n\n" in built.text
    assert "Hi there.\nHow are you?<|im_end|>" in built.text
    assert "\r" not in built.text and history[0].text.endswith("?  ")
