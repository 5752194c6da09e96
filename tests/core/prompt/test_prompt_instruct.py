"""Instruct presets and context templates, rendered as SillyTavern 1.12.6 renders them.

`reference_prompt` below is an independent, literal walk through SillyTavern's text-completion
path (`public/script.js` `Generate` → `combine`; `public/scripts/instruct-mode.js`
`formatInstructModeChat`, `formatInstructModePrompt`, `formatInstructModeExamples`,
`formatInstructModeSystemPrompt`; `public/scripts/power-user.js` `renderStoryString`;
`public/scripts/openai.js` `parseExampleIntoIndividual`), written from those functions with
the preset values as plain dicts. A few presets also have their expected text written out by
hand, so the two implementations cannot share a mistake unnoticed.
"""

import json
import re

import pytest

from app.core.prompt import Message, PromptInput, build_prompt
from app.core.prompt.instruct import (
    InstructPreset,
    Names,
    instruct_template,
    read_preset_file,
    shipped_context,
    shipped_instruct,
    write_preset_file,
)
from app.core.prompt.story_string import ContextTemplate, StoryStringError

CARD = {
    "name": "Alice",
    "description": "{{char}} is a fox.",
    "personality": "sly",
    "scenario": "A river.",
    "first_mes": "Hello, {{user}}!",
    "mes_example": "<START>\n{{user}}: Who are you?\n{{char}}: A fox.",
}
SYSTEM = "Write Alice's next reply in a fictional chat between Alice and Bob."
CHAT = [Message("assistant", "Hello, Bob!"), Message("user", "Hi.")]
ALL = sorted(shipped_instruct())


def built(name: str, history=CHAT) -> str:
    inp = PromptInput(card=CARD, user_name="Bob", persona="Bob is a traveller.", history=history)
    return build_prompt(inp, instruct_template(name), lambda s: len(s) // 4, 8192, 100).text


# -- the reference: SillyTavern's functions, one by one -------------------------------------------
def _sub(s, p, name):
    if not p["macro"]:
        return s
    s = re.sub(r"\{\{user\}\}", "Bob", s, flags=re.I)
    s = re.sub(r"\{\{char\}\}", "Alice", s, flags=re.I)
    return re.sub(r"\{\{name\}\}", name, s, flags=re.I)


def st_chat(p, name, mes, is_user, force=None):
    """formatInstructModeChat (no narrator, no group)."""
    include = p["names_behavior"] == "always"
    if is_user:
        prefix = (
            p["first_input_sequence"]
            if force == "first"
            else p["last_input_sequence"]
            if force == "last"
            else ""
        ) or p["input_sequence"]
        suffix = p["input_suffix"]
    else:
        prefix = (
            p["first_output_sequence"]
            if force == "first"
            else p["last_output_sequence"]
            if force == "last"
            else ""
        ) or p["output_sequence"]
        suffix = p["output_suffix"]
    prefix, suffix = _sub(prefix, p, name), _sub(suffix, p, name)
    if not suffix and p["wrap"]:
        suffix = "\n"
    sep = "\n" if p["wrap"] else ""
    parts = [prefix, f"{name}: {mes}{suffix}" if include else mes + suffix]
    return sep.join(x for x in parts if x)


def st_last_line(p, name):
    """formatInstructModePrompt (a normal reply, no group)."""
    include = p["names_behavior"] == "always"
    seq = p["last_output_sequence"] or p["output_sequence"]
    filler = ""
    if (
        include
        and p["last_output_sequence"]
        and p["output_sequence"]
        and seq == p["last_output_sequence"]
        and re.search(r"\s$", p["output_sequence"])
        and not re.search(r"\s$", p["last_output_sequence"])
    ):
        filler = p["output_sequence"][-1]
    seq = _sub(seq, p, name)
    sep = "\n" if p["wrap"] else ""
    text = sep + seq + sep + filler + f"{name}:" if include else sep + seq
    return (text.rstrip() if p["wrap"] else text) + ("" if include else sep)


def st_examples(p, c):
    """parseMesExamples, then formatInstructModeExamples and parseExampleIntoIndividual."""
    sep_ = _sub(c["example_separator"], p, "")
    heading = f"{sep_}\n" if sep_ else ""
    raw = "<START>\nBob: Who are you?\nAlice: A fox."
    blocks = [(heading or "<START>\n") + b.strip() + "\n" for b in raw.split("<START>")[1:]]
    out = []
    for block in blocks:
        lines = block.replace("<START>", "{Example Dialogue:}", 1).split("\n")[1:]
        turns, cur, who = [], [], None
        for line in lines:
            if line.startswith("Bob:"):
                if who == "char":
                    turns.append(("char", "\n".join(cur).replace("Alice:", "", 1).strip()))
                    cur = []
                who = "user"
            elif line.startswith("Alice:"):
                if who == "user":
                    turns.append(("user", "\n".join(cur).replace("Bob:", "", 1).strip()))
                    cur = []
                who = "char"
            cur.append(line)
        speaker = "Bob:" if who == "user" else "Alice:"
        turns.append((who, "\n".join(cur).replace(speaker, "", 1).strip()))
        if heading:
            out.append(heading)
        sep = "\n" if p["wrap"] else ""
        for who, content in turns:
            u = who == "user"
            prefix = _sub(
                p["input_sequence"] if u else p["output_sequence"], p, "Bob" if u else "Alice"
            )
            suffix = _sub(
                p["input_suffix"] if u else p["output_suffix"], p, "Bob" if u else "Alice"
            )
            if p["macro"] and not suffix and p["wrap"]:
                suffix = "\n"
            named = p["names_behavior"] == "always" or (p["names_behavior"] == "force" and u)
            body = f"{'Bob' if u else 'Alice'}: {content}" if named else content
            out.append(sep.join(x for x in (prefix, body + suffix) if x))
    return "".join(out)


def st_story(p, c):
    """renderStoryString with formatInstructModeSystemPrompt applied to the system prompt."""
    sep = "\n" if p["wrap"] else ""
    system = SYSTEM
    if p["system_sequence_prefix"]:
        system = p["system_sequence_prefix"].replace("{{name}}", "System") + sep + system
    if p["system_sequence_suffix"]:
        system = system + sep + p["system_sequence_suffix"]
    values = {
        "system": system,
        "description": "Alice is a fox.",
        "personality": "sly",
        "scenario": "A river.",
        "persona": "Bob is a traveller.",
        "char": "Alice",
        "user": "Bob",
        "wiBefore": "",
        "wiAfter": "",
        "loreBefore": "",
        "loreAfter": "",
        "mesExamples": st_examples(p, c),
        "mesExamplesRaw": "",
    }
    out = _handlebars(c["story_string"], values)
    out = re.sub(r"(?:\r?\n)*\{\{trim\}\}(?:\r?\n)*", "", out, flags=re.I).lstrip("\n")
    if out and not out.endswith("\n") and p["wrap"]:
        out += "\n"
    return out


def _handlebars(src, values):
    """Just the Handlebars the shipped story strings use: standalone {{#if}}/{{else}}/{{/if}}
    lines vanish, a block keeps its first branch when the value is non-empty, values are
    inserted raw."""
    src = re.sub(r"(^|\n)[ \t]*(\{\{(?:[#/]if[^}]*|else)\}\})[ \t]*(?:\n|$)", r"\1\2", src)
    while True:
        m = re.search(r"\{\{#if (\w+)\}\}((?:(?!\{\{#if).)*?)\{\{/if\}\}", src, flags=re.S)
        if not m:
            break
        yes, _, no = m.group(2).partition("{{else}}")
        src = src[: m.start()] + (yes if values.get(m.group(1)) else no) + src[m.end() :]
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values.get(m.group(1), m.group(0)), src)


def reference_prompt(name: str) -> str:
    """Generate's `combine`: story + examples + chat start + messages + the last line."""
    p = shipped_instruct()[name].to_st()
    c = shipped_context().get(name, shipped_context()["Default"]).to_st()
    story = st_story(p, c)
    examples = "" if "{{mesExamples}}" in c["story_string"] else st_examples(p, c)
    greeting = st_chat(p, "Alice", "Hello, Bob!", False, "first")
    user = st_chat(p, "Bob", "Hi.", True, "last")
    if p["user_alignment_message"]:  # the oldest message kept is not the user's
        greeting = st_chat(p, "Bob", p["user_alignment_message"], True, "first") + greeting
    if p["wrap"]:
        user = re.sub(r"\n?$", "", user, count=1)
    chat_start = _sub(c["chat_start"] + "\n", p, "") if c["chat_start"] else ""
    return story + examples + chat_start + greeting + user + st_last_line(p, "Alice")


# -- the tests -----------------------------------------------------------------------------------
def test_the_shipped_set_is_sillytaverns():
    """default/content/presets/instruct/*.json of SillyTavern 1.12.6, every one, and the
    issue's Mistral V7 and Alpaca-Roleplay from other versions."""
    assert len(ALL) == 31
    for name in (
        "Alpaca",
        "ChatML",
        "ChatML-Names",
        "Llama 2 Chat",
        "Llama 3 Instruct",
        "Llama-3-Instruct-Names",
        "Mistral V1",
        "Mistral V2 & V3",
        "Mistral V3-Tekken",
        "Metharme",
        "Pygmalion",
        "Vicuna 1.0",
        "Vicuna 1.1",
        "Gemma 2",
        "Command R",
        "Phi",
        "OpenOrca-OpenChat",
        "WizardLM",
        "Synthia",
        "Koala",
        "Lightning 1.1",
        "DreamGen Role-Play V1 ChatML",
        "Mistral V7",
        "Alpaca-Roleplay",
    ):
        assert name in ALL
    assert shipped_instruct()["ChatML"].names_behavior is Names.ALWAYS
    assert shipped_instruct()["Alpaca-Single-Turn"].first_output_sequence == "<START OF CHAT>"
    assert shipped_instruct()["Alpaca-Roleplay"].names_behavior is Names.ALWAYS


@pytest.mark.parametrize("name", ALL)
def test_each_preset_renders_a_two_turn_chat_as_sillytavern(name):
    """formatInstructModeChat / formatInstructModePrompt / formatInstructModeExamples
    (instruct-mode.js) joined as Generate's combine() does (script.js)."""
    assert built(name) == reference_prompt(name)


HAND_WRITTEN = {
    "ChatML": (
        "<|im_start|>system\n" + SYSTEM + "\nAlice is a fox.\nAlice's personality: sly\n"
        "Scenario: A river.\nBob is a traveller.<|im_end|>\n"
        "<|im_start|>user\nBob: Who are you?<|im_end|>\n"
        "<|im_start|>assistant\nAlice: A fox.<|im_end|>\n"
        "<|im_start|>assistant\nAlice: Hello, Bob!<|im_end|>\n"
        "<|im_start|>user\nBob: Hi.<|im_end|>\n<|im_start|>assistant\nAlice:"
    ),
    "Mistral V2 & V3": (
        "[INST] " + SYSTEM + "\nAlice is a fox.\nsly\nA river.\nBob is a traveller."
        "[/INST] Understood.</s>[INST] Bob: Who are you?[/INST] Alice: A fox.</s>"
        "[INST] Bob: Let's get started. Please respond based on the information and "
        "instructions provided above.[/INST] Alice: Hello, Bob!</s>[INST] Bob: Hi.[/INST] Alice:"
    ),
    "Alpaca": (
        SYSTEM + "\nAlice is a fox.\nAlice's personality: sly\nScenario: A river.\n"
        "Bob is a traveller.\n\n### Instruction:\nBob: Who are you?\n\n### Response:\nA fox.\n\n"
        "### Response:\nHello, Bob!\n\n### Instruction:\nHi.\n\n### Response:\n"
    ),
    "Metharme": (
        "<|system|>" + SYSTEM + "\nAlice is a fox.\nAlice's personality: sly\n"
        "Scenario: A river.\nBob is a traveller.\n***\n<|user|>Bob: Who are you?<|model|>"
        "A fox.***\n<|model|>Hello, Bob!<|user|>Hi.<|model|>"
    ),
    "ChatML-Names": (
        "<|im_start|>system\n" + SYSTEM + "\nAlice is a fox.\nAlice's personality: sly\n"
        "Scenario: A river.\nBob is a traveller.<|im_end|>\n<|im_start|>[Bob]\nWho are you?"
        "<|im_end|>\n<|im_start|>[Alice]\nA fox.<|im_end|>\n<|im_start|>[Alice]\nHello, Bob!"
        "<|im_end|>\n<|im_start|>[Bob]\nHi.<|im_end|>\n<|im_start|>[Alice]\n"
    ),
}


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_hand_written_expectations(name):
    """The same functions, worked through by hand from each preset's JSON."""
    assert built(name) == HAND_WRITTEN[name]


def test_stop_strings_follow_get_instruct_stopping_sequences():
    """getInstructStoppingSequences: each sequence, on a new line when `wrap` is on; the stop
    sequence also as it is (Parlor's addition, for models without it as a token)."""
    inp = PromptInput(card=CARD, user_name="Bob", history=CHAT)
    chatml = build_prompt(inp, instruct_template("ChatML"), len, 8192, 100)
    assert chatml.stop == [
        "\nBob:",
        "\n<|im_end|>",
        "\n<|im_start|>user",
        "\n<|im_start|>assistant",
        "\n<|im_start|>system",
        "<|im_end|>",
    ]
    names = build_prompt(inp, instruct_template("ChatML-Names"), len, 8192, 100)
    assert "\n<|im_start|>[Bob]" in names.stop and "\n<|im_start|>[Alice]" in names.stop


def test_a_narrator_line_is_a_system_turn_without_a_name():
    """formatInstructModeChat with isNarrator: the system sequence (or the user's when
    system_same_as_user), never the character's name."""
    history = [*CHAT, Message("system", "The river rises."), Message("user", "Run!")]
    chatml = built("ChatML", history)
    assert "<|im_start|>system\nThe river rises.<|im_end|>\n" in chatml
    llama = built("Llama 3 Instruct", history)
    assert "<|start_header_id|>user<|end_header_id|>\n\nThe river rises.<|eot_id|>" in llama


def test_another_group_member_is_named_under_force():
    """names_behavior "force": names are written for speakers other than the user."""
    history = [
        Message("assistant", "Hello, Bob!"),
        Message("assistant", "And me.", "Carol"),
        Message("user", "Hi."),
    ]
    text = built("Alpaca", history)
    assert "### Response:\nCarol: And me.\n\n" in text
    assert "### Response:\nHello, Bob!\n\n" in text


def test_continue_leaves_the_reply_open_with_the_last_output_sequence():
    """Generate with isContinue: the last message formatted with the LAST sequence and cut
    after its text; no last prompt line."""
    history = [*CHAT, Message("assistant", "Well")]
    inp = PromptInput(card=CARD, user_name="Bob", history=history, continue_last=True)
    text = build_prompt(inp, instruct_template("Mistral V2 & V3"), len, 8192, 100).text
    assert text.endswith("[INST] Bob: Hi.[/INST]Alice: Well")


def test_st_files_import_and_export(tmp_path):
    old = {
        "name": "Old",
        "input_sequence": "### User:",
        "output_sequence": "### Bot:",
        "separator_sequence": "\n",
        "names": True,
        "wrap": True,
        "macro": True,
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    preset = read_preset_file(path)
    assert isinstance(preset, InstructPreset)
    assert preset.output_suffix == "\n" and preset.names_behavior is Names.ALWAYS
    write_preset_file(preset, tmp_path / "out.json")
    again = json.loads((tmp_path / "out.json").read_text())
    assert again["names_behavior"] == "always" and "separator_sequence" not in again
    assert read_preset_file(tmp_path / "out.json") == preset
    ctx = tmp_path / "ctx.json"
    ctx.write_text(json.dumps(shipped_context()["ChatML"].to_st()))
    assert read_preset_file(ctx) == shipped_context()["ChatML"]


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"name": "x", "wrap": "yes"}, "wrap must be true or false"),
        ({"name": "x", "names_behavior": "sometimes"}, "names_behavior must be"),
        ({"input_sequence": "a"}, "no name"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_preset_files_say_what_is_wrong(tmp_path, raw, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=message):
        read_preset_file(path)


def test_story_string_blocks_else_unless_and_trim():
    """renderStoryString: Handlebars blocks, {{trim}}, leading newlines removed, a newline
    added at the end."""
    ctx = ContextTemplate(
        name="t",
        story_string=(
            "\n\n{{#if description}}D={{description}}{{else}}none{{/if}}\n"
            "{{#unless scenario}}no scenario{{/unless}}\n{{trim}}\n\n{{char}} {{random:a}}"
        ),
    )
    assert (
        ctx.render({"description": "fox", "char": "Alice"})
        == "D=fox\nno scenarioAlice {{random:a}}\n"
    )
    assert ctx.render({}, wrap=False) == "none\nno scenario {{random:a}}"


@pytest.mark.parametrize(
    "source, message",
    [
        ("{{#if description}}open", "never closed"),
        ("{{/if}}", "without its opening"),
        ("{{#if __class__}}x{{/if}}", "can be tested"),
    ],
)
def test_broken_story_strings_are_refused_with_a_reason(source, message):
    with pytest.raises(StoryStringError, match=message):
        ContextTemplate.from_st({"name": "bad", "story_string": source})


def test_story_string_text_cannot_reach_jinja():
    """A story string is Handlebars: Jinja syntax in it is plain text, not code."""
    ctx = ContextTemplate(
        name="t",
        story_string="{% for x in range(10**9) %}x{% endfor %}{{ ''.__class__ }}{{description}}",
    )
    assert (
        ctx.render({"description": "d"})
        == "{% for x in range(10**9) %}x{% endfor %}{{ ''.__class__ }}d\n"
    )


def test_the_first_output_sequence_marks_the_chats_first_message_only():
    """Generate: `formatMessageHistoryItem(coreChat[0], …, force_output_sequence.FIRST)` is
    the chat's oldest message; once it is dropped, no kept message gets the first sequence."""
    long_chat = (
        [Message("assistant", "Hello, Bob!")]
        + [
            Message("user" if i % 2 else "assistant", f"line {i} " + "word " * 40)
            for i in range(1, 60)
        ]
        + [Message("user", "Last?")]
    )
    inp = PromptInput(card=CARD, user_name="Bob", history=long_chat)
    whole = build_prompt(inp, instruct_template("Alpaca-Single-Turn"), len, 100_000, 100)
    assert whole.text.count("<START OF CHAT>") == 1
    cut = build_prompt(inp, instruct_template("Alpaca-Single-Turn"), len, 3000, 100)
    assert cut.dropped_messages > 0 and "<START OF CHAT>" not in cut.text
