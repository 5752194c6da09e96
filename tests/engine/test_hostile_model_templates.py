"""Issue 21, point 4: llama-cpp-python must not compile a GGUF's chat templates itself.

Jinja folds constants while compiling, so a template like `{{ 'a' * 10**9 }}` cost 9.6 s and
3.9 GB inside `Llama()`, and `|wordwrap(1)` on a long constant never finished loading; Parlor
renders the model's template in its own limited sandbox instead."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.core.engine import LoadParams, SamplingParams
from app.core.engine.local import LocalEngine
from app.core.prompt import Message, template_from_gguf
from tests.hostile import Bounded
from tests.tiny_models import write_tiny_llama

BOMB = "{{ 'a' * 10**9 }}{% for m in messages %}{{ m.content }}{% endfor %}"
NEVER_ENDS = "{{ ('a' * 2000000)|wordwrap(1) }}"


def write_hostile_model(path: Path) -> Path:
    """The tiny test llama, with a default template that folds to 1 GB and a named one
    that wraps 2 M characters one per line."""
    return write_tiny_llama(
        path,
        n_layer=1,
        n_ctx=512,
        chat_template=BOMB,
        extra_metadata={"tokenizer.chat_template.tool_use": NEVER_ENDS},
    )


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory):
    return write_hostile_model(tmp_path_factory.mktemp("hostile") / "hostile.gguf")


def _open_vocab(path: str) -> float:
    from llama_cpp import Llama

    from app.core.engine.template_guard import disable_gguf_template_compilation

    disable_gguf_template_compilation()
    start = time.monotonic()
    Llama(model_path=path, vocab_only=True, verbose=False)
    return time.monotonic() - start


def test_opening_the_model_compiles_none_of_its_templates(hostile_model):
    """In a child with 500 MB to spare and 30 s: compiling BOMB alone needs 3.9 GB."""
    child = Bounded(extra_mb=500)
    try:
        seconds = child(_open_vocab, str(hostile_model), seconds=30)
    finally:
        child.close()
    assert seconds < 5


def test_the_engine_loads_it_and_parlor_renders_a_preset_instead(hostile_model):
    engine = LocalEngine()
    try:
        start = time.monotonic()
        info = engine.load(LoadParams(model_path=str(hostile_model), n_ctx=256))
        assert time.monotonic() - start < 30
        assert info.chat_template == BOMB
        rendered = template_from_gguf(info.chat_template, info.bos, info.eos).render(
            [Message("user", "Hello")]
        )
        assert "stopped" in rendered.warnings[0] or "too large" in rendered.warnings[0]
        pieces = list(
            engine.stream(rendered.text, SamplingParams(max_tokens=4, seed=1), threading.Event())
        )
        assert pieces
    finally:
        engine.unload()
