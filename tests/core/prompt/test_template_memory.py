"""Issue 21: a model's chat template renders under a hard memory limit of its own.

Each value already had a size limit, but a template could keep many of them: a namespace
list grown in a loop, hundreds of `set`s, or recursion holding a big argument per frame
each passed the check and together asked for gigabytes. The sandbox's ledger of bytes
built stops them, fast, with a message naming the template; each case runs in a child
with 400 MB to spare, so a miss shows up as a MemoryError or a killed child, not as a
test machine out of memory.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import pytest

from app.core.prompt import Message, preset, template_from_gguf
from app.core.prompt.templates import Limits
from tests.hostile import Bounded
from tests.tiny_models import write_tiny_llama

TAIL = "{% for m in messages %}<|im_start|>{{ m.content }}<|im_end|>{% endfor %}"
BIG = "{% set big = 'x' * 3900000 %}"
HOARDERS = {
    "a namespace list grown in a loop": BIG
    + "{% set ns = namespace(x=[]) %}{% for i in range(2000) %}"
    "{% set ns.x = [ns.x, big ~ i] %}{% endfor %}",
    "hundreds of sets": BIG + "".join(f"{{% set a{i} = big ~ {i} %}}" for i in range(300)),
    "recursion holding a value per frame": "{% macro f(n, s) %}{% if n %}"
    "{{ f(n - 1, s ~ '\u00e9') }}{% endif %}{% endmacro %}"
    "{{ f(60, '\U0001f600' * 3900000) }}",
    "a dict literal per iteration": BIG + "{% set ns = namespace(d={}) %}"
    "{% for i in range(2000) %}{% set ns.d = {'k': ns.d, 'v': big ~ i} %}{% endfor %}",
}
CONVERSATION = [Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Bye")]


@pytest.fixture
def bounded():
    child = Bounded(extra_mb=400)  # a fresh one each case: freed memory is not all returned
    yield child
    child.close()


def _render(source: str) -> tuple[float, bool, str]:
    start = time.monotonic()
    out = template_from_gguf(source + TAIL, "", "<|im_end|>").render(CONVERSATION)
    fell_back = out.text == preset("chatml").render(CONVERSATION).text
    return time.monotonic() - start, fell_back, " ".join(out.warnings)


@pytest.mark.parametrize("source", HOARDERS.values(), ids=HOARDERS.keys())
def test_a_template_that_hoards_memory_is_stopped_by_its_memory_limit(bounded, source):
    seconds, fell_back, warning = bounded(_render, source, seconds=20)
    assert fell_back and seconds < 5
    assert "The model's chat template could not be used" in warning
    assert "memory limit" in warning and "MemoryError" not in warning


def test_a_long_chat_in_a_real_template_stays_within_the_limit():
    """1,000 messages of 2 KB through a template that trims every message and builds the
    system prompt with `+`: far below the ledger, which grows with the chat."""
    source = (
        "{% set ns = namespace(system='') %}{% for m in messages %}"
        "{% if m.role == 'system' %}{% set ns.system = ns.system + m.content|trim %}{% endif %}"
        "{% endfor %}{{ ns.system }}"
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content|trim }}<|im_end|>\n"
        "{% endfor %}"
    )
    chat = [Message("system", "Be kind.")] + [
        Message("user" if i % 2 == 0 else "assistant", f"{i} " + "word " * 400) for i in range(1000)
    ]
    out = template_from_gguf(source, "", "<|im_end|>", limits=Limits(max_memory=32 * 2**20))
    rendered = out.render(chat)
    assert not rendered.warnings
    assert rendered.text.count("<|im_start|>") == 1001


def test_the_limit_is_per_render():
    """The ledger starts at zero each time: many ordinary renders never add up to a refusal."""
    source = "{% set s = 'y' * 1000000 %}{{ s|length }}" + TAIL
    template = template_from_gguf(source, "", "<|im_end|>", limits=Limits(max_memory=8 * 2**20))
    for _ in range(20):
        assert not template.render(CONVERSATION).warnings


def _prompt_cli(model: str, card: str) -> tuple[int, str, str]:
    from app.cli import main

    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["prompt", "--card", card, "--model", model])
    return code, err.getvalue(), f"{time.monotonic() - start:.1f}"


def test_parlor_prompt_with_the_model_stops_its_hoarding_template(tmp_path):
    """`parlor prompt --model` renders the file's template in its own process: the limit
    holds there too, and the prompt comes out in the closest preset."""
    model = write_tiny_llama(
        tmp_path / "hoarder.gguf",
        n_layer=1,
        n_ctx=512,
        chat_template=HOARDERS["a namespace list grown in a loop"] + TAIL,
    )
    card = tmp_path / "card.json"
    card.write_text(
        json.dumps({"spec": "chara_card_v2", "data": {"name": "Ada", "first_mes": "Hello"}})
    )
    child = Bounded(extra_mb=500)
    try:
        code, err, seconds = child(_prompt_cli, str(model), str(card), seconds=60)
    finally:
        child.close()
    assert code == 0, err
    assert "model's chat template could not be used" in err and "memory limit" in err, err
    assert float(seconds) < 20


def test_the_ledger_counts_what_a_value_holds():
    from app.core.prompt.format_checks import deep_bytes

    ascii_text, wide_text = "a" * 1000, "\U0001f600" * 1000
    assert deep_bytes(wide_text) > 3 * deep_bytes(ascii_text)
    shared = ["x" * 10_000]
    assert deep_bytes([shared, shared]) < 2 * deep_bytes(shared)  # counted once
    assert deep_bytes({"k": ascii_text}) > 1000
    assert deep_bytes(Path("x")) == 0
