"""The default context size: the model's trained context, capped by memory after the weights."""

import pytest

from app.core.appdata.machine import machine_from_sizes
from app.core.gguf.header import read_header
from app.core.gguf.memory import estimate_memory
from app.core.hub.catalog import usable_bytes
from app.core.hub.context_size import choose_context, largest_context
from tests.tiny_models import write_tiny_llama

BIG = machine_from_sizes(64)


@pytest.fixture(scope="module")
def headers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ctx")
    return {n: read_header(write_tiny_llama(folder / f"m{n}.gguf", n_ctx=n)) for n in (2048, 32768)}


def test_the_trained_context_when_memory_allows(headers):
    choice = choose_context(0, headers[32768], BIG)
    assert (choice.n_ctx, choice.trained, choice.chosen_by) == (32768, 32768, "model")
    assert "trained on 32768 tokens" in choice.note


def test_a_short_trained_context_is_not_stretched(headers):
    assert choose_context(0, headers[2048], BIG).n_ctx == 2048


def test_memory_caps_the_default(headers):
    header = headers[32768]
    weights = estimate_memory(header, 256).total_bytes
    small = machine_from_sizes((2 * 1024**3 + weights + 3_000_000) / 1024**3)
    choice = choose_context(0, header, small)
    assert 256 <= choice.n_ctx < 32768 and choice.n_ctx % 256 == 0
    usable = usable_bytes(small, gpu_offload=False)
    assert estimate_memory(header, choice.n_ctx).total_bytes <= usable
    assert estimate_memory(header, choice.n_ctx + 256).total_bytes > usable
    assert choice.memory_limit == choice.n_ctx


def test_the_users_setting_overrides(headers):
    choice = choose_context(4096, headers[32768], BIG)
    assert (choice.n_ctx, choice.chosen_by) == (4096, "setting")
    assert "your setting" in choice.note


def test_largest_context_is_zero_when_nothing_fits(headers):
    assert largest_context(headers[2048], 1000) == 0
