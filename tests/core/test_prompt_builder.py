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

CHATML_JINJA = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
MISTRAL_JINJA = ("{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') "
                 "!= (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must "
                 "alternate') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
                 "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
                 "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and "
                 "assistant roles are supported!') }}{% endif %}{% endfor %}")

CARD = {
    "name": "Alice",
    "description": "{{char}} is a clever fox who lives in the old forest.",
    "personality": "sly, warm",
    "scenario": "{{user}} meets {{char}} at the river.",
    "first_mes": "Hello, {{user}}!",
    "mes_example": "<START>\n{{user}}: Who are you?\n{{char}}: A fox.\n<START>\n{{char}}: *grins*",
    "system_prompt": "",
    "post_history_instructions": "",
    "character_book": {"entries": [
        {"keys": ["dragon"], "content": "Dragons sleep under the hill.", "enabled": True,
         "insertion_order": 10, "name": "dragons", "extensions": {}},
    ]},
}


def count(text: str) -> int:
    return (len(text) + 3) // 4


def build(history, *, card=CARD, template=None, n_ctx=4096, reply=256, **settings):
    inp = PromptInput(card=card, user_name="Bob", persona="{{user}} is a traveller.",
                      history=history, continue_last=settings.pop("continue_last", False))
    return build_prompt(inp, template or preset("chatml"), count, n_ctx, reply,
                        PromptSettings(**settings), rng=random.Random(1),
                        clock=lambda: datetime(2024, 5, 1, 10, 0))


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
        "Bob is a traveller.\n\n"
        "<START>\nBob: Who are you?\nAlice: A fox.\n<START>\nAlice: *grins*<|im_end|>\n"
        "<|im_start|>assistant\nHello, Bob!<|im_end|>\n"
        "<|im_start|>user\nHi.<|im_end|>\n"
        "<|im_start|>assistant\n")
    assert [p.name for p in built.parts] == ["system", "description", "personality", "scenario",
                                             "persona", "examples", "history", "template"]
    assert built.tokens == sum(p.tokens for p in built.parts)
    assert built.dropped_messages == 0 and built.lore == [] and built.warnings == []


def test_card_system_prompt_with_original_and_post_history():
    card = {**CARD, "system_prompt": "{{original}} Stay in character.",
            "post_history_instructions": "Reply in one paragraph, {{user}}."}
    built = build([Message("user", "Hi.")], card=card)
    assert built.text.startswith("<|im_start|>system\nWrite Alice's next reply in a fictional "
                                 "chat between Alice and Bob. Stay in character.\n\n")
    assert built.text.endswith("<|im_start|>user\nHi.<|im_end|>\n<|im_start|>system\n"
                               "Reply in one paragraph, Bob.<|im_end|>\n<|im_start|>assistant\n")


def test_nickname_is_char():
    built = build([Message("user", "Hi {{char}}.")], card={**CARD, "nickname": "Ali"})
    assert "Hi Ali." in built.text and "Ali is a clever fox" in built.text


def test_custom_order_and_left_out_parts():
    built = build([Message("user", "a dragon!")],
                  order=["lore", "description", "history", "system"])
    assert built.text.startswith("<|im_start|>system\nDragons sleep under the hill.\n\nAlice is")
    assert "personality" not in built.text and "<START>" not in built.text
    assert built.text.endswith("<|im_start|>system\nWrite Alice's next reply in a fictional chat "
                               "between Alice and Bob.<|im_end|>\n<|im_start|>assistant\n")
    assert [p.name for p in built.parts][:3] == ["lore", "description", "history"]


def test_unknown_parts_are_reported():
    built = build([Message("user", "x")], order=["system", "bogus", "history"])
    assert any("bogus" in w for w in built.warnings)


def test_lore_goes_after_the_history():
    built = build(chat(2) + [Message("user", "Tell me about the dragon.")])
    assert built.lore == ["dragons"]
    lore_at = built.text.index("Dragons sleep under the hill.")
    assert lore_at > built.text.index("Tell me about the dragon.")
    assert built.text.endswith("Dragons sleep under the hill.<|im_end|>\n<|im_start|>assistant\n")


def test_continue_leaves_the_reply_open_after_the_tail():
    card = {**CARD, "post_history_instructions": "Be brief."}
    history = [Message("user", "dragon?"), Message("assistant", "Well, the dragon")]
    built = build(history, card=card, continue_last=True)
    assert built.text.endswith("<|im_start|>system\nDragons sleep under the hill.\n\nBe brief."
                               "<|im_end|>\n<|im_start|>assistant\nWell, the dragon")


def test_continue_without_a_reply_warns():
    built = build([Message("user", "hi")], continue_last=True)
    assert built.text.endswith("<|im_start|>assistant\n")
    assert "no reply to continue" in built.warnings[0]


def test_stop_strings():
    built = build([Message("user", "x")], extra_stops=["\n{{char}} thinks", ""],
                  template=preset("llama3"))
    assert built.stop == ["\nBob:", "<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>",
                          "\nAlice thinks"]


def test_history_macros_are_stable_between_builds():
    history = [Message("user", "I roll {{roll:d100}} and pick {{random:a,b,c,d,e}}")]
    first = build(history).text
    assert "{{" not in first
    assert all(build(history).text == first for _ in range(3))


def test_history_that_fits_is_kept_whole():
    built = build(chat(10))
    assert built.dropped_messages == 0
    assert built.tokens <= 4096 - 256


@pytest.mark.parametrize("chunk", [1, 4, 8])
def test_budget_drops_oldest_in_chunks_and_keeps_card_and_last_user(chunk):
    history = chat(30) + [Message("user", "The very last question?")]
    built = build(history, n_ctx=1200, reply=200, drop_chunk=chunk)
    assert built.tokens <= 1000
    assert built.dropped_messages > 0 and built.dropped_messages % chunk == 0
    kept, gone = history[built.dropped_messages], history[built.dropped_messages - 1]
    assert kept.text.strip() in built.text and gone.text.strip() not in built.text
    assert "clever fox" in built.text and "*grins*" in built.text
    assert built.text.endswith("The very last question?<|im_end|>\n<|im_start|>assistant\n")
    # the fewest chunks: keeping one more chunk would not fit
    last_chunk = history[built.dropped_messages - chunk:built.dropped_messages]
    segments = preset("chatml").render(last_chunk, add_generation_prompt=False).segments
    assert built.tokens + sum(map(count, segments)) > 1000


def test_too_small_a_context_keeps_the_card_and_last_user_message_and_warns():
    history = chat(5) + [Message("user", "Last words.")]
    built = build(history, n_ctx=150, reply=100)
    assert built.tokens > 50
    assert built.dropped_messages == len(history) - 1
    assert "clever fox" in built.text and "Last words." in built.text
    assert any("even with every older message left out" in w for w in built.warnings)


def test_continue_keeps_the_open_reply_and_its_question():
    history = chat(20) + [Message("user", "Question?"), Message("assistant", "Half an answer")]
    built = build(history, n_ctx=900, reply=100, continue_last=True)
    assert built.dropped_messages > 0
    assert built.text.endswith("Question?<|im_end|>\n<|im_start|>assistant\nHalf an answer")


TEMPLATES = {
    "chatml": lambda: preset("chatml"), "mistral": lambda: preset("mistral"),
    "gemma": lambda: preset("gemma"), "llama3": lambda: preset("llama3"),
    "plain": lambda: preset("plain"),
    "jinja-chatml": lambda: template_from_gguf(CHATML_JINJA, "", "<|im_end|>"),
    "jinja-mistral": lambda: template_from_gguf(MISTRAL_JINJA, "<s>", "</s>"),
}


@pytest.mark.parametrize("name", TEMPLATES)
def test_successive_turns_share_a_prefix(name):
    template = TEMPLATES[name]()
    history = [Message("assistant", CARD["first_mes"])]
    previous = None
    cut_points = []
    lore_seen = set()
    for turn in range(40):
        topic = "the dragon" if turn % 3 == 0 else "the weather"  # lore comes and goes
        question = f"Turn {turn}: what about {topic}? " + "more " * 10
        history.append(Message("user", question))
        built = build(history, template=template, n_ctx=1500, reply=200)
        assert built.tokens <= 1300 and built.warnings == []
        assert built.dropped_messages % 8 == 0
        cut_points.append(built.dropped_messages)
        lore_seen.add(bool(built.lore))
        if previous is not None and previous[0] == built.dropped_messages:
            # everything up to the end of the last user message is reused as is
            stable = previous[1][:previous[1].index(previous[2]) + len(previous[2])]
            assert built.text.startswith(stable)
        previous = (built.dropped_messages, built.text, question.strip())
        history.append(Message("assistant", f"Reply {turn}. " + "words " * 12))
    assert cut_points == sorted(cut_points) and cut_points[-1] > 0
    moves = sum(1 for a, b in zip(cut_points, cut_points[1:], strict=False) if a != b)
    assert moves <= len(cut_points) // 4  # the cut moves every few turns, not every turn
    assert lore_seen == {True, False}


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
    assert built.text.endswith("*grins*\n\nx [/INST]")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["user", "assistant", "system"]),
                          st.integers(0, 60)), max_size=40),
       st.integers(100, 3000), st.integers(1, 10), st.sampled_from(sorted(TEMPLATES)))
def test_budget_invariants(shape, n_ctx, chunk, name):
    history = [Message(role, f"{role} {i} " + "w " * size) for i, (role, size) in enumerate(shape)]
    built = build(history, template=TEMPLATES[name](), n_ctx=n_ctx, reply=50, drop_chunk=chunk)
    users = [i for i, m in enumerate(history) if m.role == "user"]
    protected = users[-1] if users else max(0, len(history) - 1)
    assert built.dropped_messages % chunk == 0 or built.dropped_messages == protected
    assert built.dropped_messages <= protected
    for m in history[built.dropped_messages:]:
        assert m.text.strip() in built.text
    if built.tokens > n_ctx - 50:
        assert built.dropped_messages == protected
        assert any("fit" in w for w in built.warnings)
    assert "clever fox" in built.text
