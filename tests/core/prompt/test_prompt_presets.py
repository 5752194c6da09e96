import pytest

from app.core.prompt import PRESET_NAMES, Message, preset
from app.core.prompt.presets import CHAT_START, guess_preset, normalize

CONVERSATION = [
    Message("system", "You are Alice."),
    Message("user", "Hi!"),
    Message("assistant", "Hello, Bob."),
    Message("user", "How are you?"),
    Message("assistant", "Fine, thanks."),
    Message("user", "Tell me a story."),
]

EXPECTED = {
    "chatml": (
        "<|im_start|>system\nYou are Alice.<|im_end|>\n"
        "<|im_start|>user\nHi!<|im_end|>\n"
        "<|im_start|>assistant\nHello, Bob.<|im_end|>\n"
        "<|im_start|>user\nHow are you?<|im_end|>\n"
        "<|im_start|>assistant\nFine, thanks.<|im_end|>\n"
        "<|im_start|>user\nTell me a story.<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    "mistral": (
        "[INST] You are Alice.\n\nHi! [/INST]Hello, Bob.</s>"
        "[INST] How are you? [/INST]Fine, thanks.</s>"
        "[INST] Tell me a story. [/INST]"
    ),
    "llama3": (
        "<|start_header_id|>system<|end_header_id|>\n\nYou are Alice.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello, Bob.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nFine, thanks.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nTell me a story.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "alpaca": (
        "You are Alice.\n\n"
        "### Instruction:\nHi!\n\n### Response:\nHello, Bob.\n\n"
        "### Instruction:\nHow are you?\n\n### Response:\nFine, thanks.\n\n"
        "### Instruction:\nTell me a story.\n\n### Response:\n"
    ),
    "vicuna": (
        "You are Alice.\n\n"
        "USER: Hi!\nASSISTANT: Hello, Bob.</s>\n"
        "USER: How are you?\nASSISTANT: Fine, thanks.</s>\n"
        "USER: Tell me a story.\nASSISTANT:"
    ),
    "gemma": (
        "<start_of_turn>user\nYou are Alice.\n\nHi!<end_of_turn>\n"
        "<start_of_turn>model\nHello, Bob.<end_of_turn>\n"
        "<start_of_turn>user\nHow are you?<end_of_turn>\n"
        "<start_of_turn>model\nFine, thanks.<end_of_turn>\n"
        "<start_of_turn>user\nTell me a story.<end_of_turn>\n"
        "<start_of_turn>model\n"
    ),
    "plain": (
        "You are Alice.\n\n"
        "User: Hi!\nAlice: Hello, Bob.\n"
        "User: How are you?\nAlice: Fine, thanks.\n"
        "User: Tell me a story.\nAlice:"
    ),
}


def test_every_preset_has_an_expected_rendering():
    assert set(EXPECTED) == set(PRESET_NAMES)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_renders_three_turns_exactly(name):
    rendered = preset(name).render(CONVERSATION, assistant_name="Alice")
    assert rendered.text == EXPECTED[name]
    assert "".join(rendered.segments) == rendered.text
    assert len(rendered.segments) == len(CONVERSATION) + 1
    assert rendered.warnings == []


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_continue_leaves_the_last_reply_open(name):
    rendered = preset(name).render(CONVERSATION[:5], continue_last=True, assistant_name="Alice")
    assert rendered.text.endswith("Fine, thanks.")
    assert rendered.segments[-1] == ""


@pytest.mark.parametrize(
    "name, stop",
    [
        ("chatml", "<|im_end|>"),
        ("mistral", "</s>"),
        ("llama3", "<|eot_id|>"),
        ("alpaca", "### Instruction:"),
        ("vicuna", "</s>"),
        ("gemma", "<end_of_turn>"),
    ],
)
def test_presets_name_their_end_tokens(name, stop):
    assert stop in preset(name).stops


def test_plain_uses_message_names():
    msgs = [Message("user", "hey", name="Bob"), Message("assistant", "yo", name="Alice")]
    rendered = preset("plain").render(msgs, assistant_name="Alice")
    assert rendered.text == "Bob: hey\nAlice: yo\nAlice:"


def test_aliases_and_unknown_names():
    assert preset("Llama2") is preset("mistral")
    assert preset("ChatML") is preset("chatml")
    with pytest.raises(KeyError, match="unknown prompt format"):
        preset("nope")


@pytest.mark.parametrize(
    "source, name",
    [
        ("{{'<|im_start|>' + m}}", "chatml"),
        ("<|start_header_id|>", "llama3"),
        ("<start_of_turn>", "gemma"),
        ("[INST]", "mistral"),
        ("nothing known", "chatml"),
    ],
)
def test_guess_preset(source, name):
    assert guess_preset(source).name == name


def test_system_folds_into_the_next_user_turn_or_the_previous_one():
    msgs = [
        Message("system", "S"),
        Message("assistant", "greet"),
        Message("user", "u"),
        Message("system", "late"),
    ]
    shaped, members = normalize(msgs, system=False, alternate=False)
    assert [(m.role, m.text) for m in shaped] == [
        ("user", "S"),
        ("assistant", "greet"),
        ("user", "u\n\nlate"),
    ]
    assert members == [[0], [1], [2, 3]]


def test_alternation_merges_runs_and_starts_with_the_user():
    msgs = [
        Message("system", "S"),
        Message("assistant", "greet"),
        Message("user", "a"),
        Message("user", "b"),
    ]
    shaped, members = normalize(msgs, system=True, alternate=True)
    assert [(m.role, m.text) for m in shaped] == [
        ("system", "S"),
        ("user", CHAT_START),
        ("assistant", "greet"),
        ("user", "a\n\nb"),
    ]
    assert members == [[0], [], [1], [2, 3]]


def test_segments_of_merged_messages_go_to_the_last_one():
    msgs = [Message("assistant", "greet"), Message("user", "u"), Message("system", "lore")]
    rendered = preset("gemma").render(msgs)
    assert rendered.segments[1] == ""  # the user turn now carries the lore
    assert rendered.segments[2] == "<start_of_turn>user\nu\n\nlore<end_of_turn>\n"
    assert "".join(rendered.segments) == rendered.text
