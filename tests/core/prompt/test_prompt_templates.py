"""Chat templates as GGUF files carry them (tokenizer.chat_template), rendered for real."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.prompt import Message, preset, template_from_gguf
from app.core.prompt.templates import JinjaChatTemplate

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] "
    "| trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content "
    "%}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
    "'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only "
    "user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role "
    "not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == "
    "'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must "
    "alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == "
    "'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + "
    "'<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{'<start_of_turn>model\n'}}{% endif %}"
)
# Mistral v0.3 style: the system message is moved into the LAST user turn.
MISTRAL_V3 = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, roles must alternate') }}
    {%- endif %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"] + eos_token}}
    {%- else %}
        {{- raise_exception("Only user and assistant roles, and one first system message") }}
    {%- endif %}
{%- endfor %}
"""
# Phi-3 mini: silently drops system messages.
PHI3 = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}"
    "{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + "
    "'\n'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + "
    "'\n'}}{% endif %}{% endfor %}"
)

CONVERSATION = [
    Message("system", "You are Alice."),
    Message("user", "Hi!"),
    Message("assistant", "Hello, Bob."),
    Message("user", "How are you?"),
    Message("assistant", "Fine, thanks."),
    Message("user", "Tell me a story."),
]
GREETING_FIRST = [
    Message("system", "You are Alice."),
    Message("assistant", "Hello, Bob."),
    Message("user", "Hi!"),
    Message("system", "Lore: apples are red."),
]


@pytest.mark.parametrize(
    "source, bos, eos, same_as",
    [
        (CHATML, "", "<|im_end|>", "chatml"),
        (LLAMA3, "<|begin_of_text|>", "<|eot_id|>", "llama3"),
        (MISTRAL, "<s>", "</s>", "mistral"),
        (GEMMA, "<bos>", "<eos>", "gemma"),
    ],
    ids=["chatml", "llama3", "mistral-v0.2", "gemma"],
)
def test_real_templates_render_like_their_presets(source, bos, eos, same_as):
    template = template_from_gguf(source, bos, eos)
    for messages in (CONVERSATION, GREETING_FIRST):
        ours = template.render(messages)
        theirs = preset(same_as).render(messages)
        assert ours.warnings == []
        assert ours.text == theirs.text
        assert "".join(ours.segments) == ours.text
        assert len(ours.segments) == len(messages) + 1
        assert not ours.text.startswith(bos or "\0")  # the tokenizer adds BOS


def test_mistral_template_output_exactly():
    out = template_from_gguf(MISTRAL, "<s>", "</s>").render(CONVERSATION)
    assert out.text == (
        "[INST] You are Alice.\n\nHi! [/INST]Hello, Bob.</s>[INST] How are you? "
        "[/INST]Fine, thanks.</s>[INST] Tell me a story. [/INST]"
    )


def test_template_that_moves_the_system_prompt_gets_it_folded_in_order():
    out = template_from_gguf(MISTRAL_V3, "<s>", "</s>").render(CONVERSATION)
    assert out.warnings == []
    assert out.text == (
        "[INST] You are Alice.\n\nHi![/INST] Hello, Bob.</s>[INST] How are you?"
        "[/INST] Fine, thanks.</s>[INST] Tell me a story.[/INST]"
    )


def test_template_that_drops_system_messages_gets_them_folded():
    out = template_from_gguf(PHI3, "<s>", "<|endoftext|>").render(CONVERSATION)
    assert out.warnings == []
    assert out.text.startswith("<|user|>\nYou are Alice.\n\nHi!<|end|>\n<|assistant|>\n")
    assert out.text.endswith("<|user|>\nTell me a story.<|end|>\n<|assistant|>\n")


def test_continue_cuts_after_the_open_reply():
    template = template_from_gguf(CHATML, "", "<|im_end|>")
    out = template.render(CONVERSATION[:5], continue_last=True)
    assert out.text.endswith("<|im_start|>assistant\nFine, thanks.")
    assert out.segments[-1] == ""


def test_stops_come_from_eos_and_the_markers_in_the_template():
    assert set(template_from_gguf(CHATML, "", "<|im_end|>").stops) >= {"<|im_end|>"}
    assert "<|eot_id|>" in template_from_gguf(LLAMA3, "<|begin_of_text|>", "<|eot_id|>").stops
    assert "<end_of_turn>" in template_from_gguf(GEMMA, "<bos>", "<eos>").stops


def test_no_template_means_a_preset_from_the_end_token():
    assert template_from_gguf(None, "", "<|eot_id|>").name == "llama3"
    assert template_from_gguf("", "", "<|im_end|>").name == "chatml"
    assert template_from_gguf("  ", "<s>", "</s>").name == "chatml"


def test_broken_template_falls_back_with_a_visible_warning():
    template = template_from_gguf("{% for m in messages %}<|im_start|>{{ m.content }", "", "")
    out = template.render(CONVERSATION)
    assert out.text == preset("chatml").render(CONVERSATION).text
    assert len(out.warnings) == 1 and "could not be used" in out.warnings[0]
    assert "chatml" in out.warnings[0]


def test_template_that_always_raises_falls_back_to_its_family():
    source = "{{ raise_exception('I refuse') }}[INST]"
    out = template_from_gguf(source, "<s>", "</s>").render(CONVERSATION)
    assert out.text == preset("mistral").render(CONVERSATION).text
    assert "I refuse" in out.warnings[0]


def test_a_working_shape_is_remembered():
    template = JinjaChatTemplate(MISTRAL, "<s>", "</s>")
    template.render(CONVERSATION)
    assert template._shape == 2  # no system role, strict alternation
    assert template.render(CONVERSATION[1:]).warnings == []


MESSAGES = st.lists(
    st.builds(
        Message,
        st.sampled_from(["system", "user", "assistant"]),
        st.text(alphabet="xyz \n", max_size=6),
    ),
    min_size=1,
    max_size=7,
)


@settings(max_examples=150, deadline=None)
@given(MESSAGES, st.sampled_from([CHATML, LLAMA3, MISTRAL, GEMMA, MISTRAL_V3, PHI3]), st.booleans())
def test_any_conversation_renders_whole_in_any_template(messages, source, generation):
    out = template_from_gguf(source, "<s>", "</s>").render(
        messages, add_generation_prompt=generation
    )
    assert out.warnings == []
    assert "".join(out.segments) == out.text
    assert len(out.segments) == len(messages) + 1
    for m in messages:
        assert m.text.strip() in out.text
