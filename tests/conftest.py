"""Shared fixtures: every test gets its own data folders; tiny models are written once."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def parlor_home(tmp_path, monkeypatch):
    """Point every Parlor folder at a fresh temporary root so no test touches real data."""
    home = tmp_path / "parlor-home"
    monkeypatch.setenv("PARLOR_HOME", str(home))
    return home


@pytest.fixture
def store(tmp_path):
    """A real SQLite store in a fresh file, closed after the test."""
    from app.core.store import Store

    store = Store(tmp_path / "parlor.db")
    yield store
    store.close()


@pytest.fixture(scope="session")
def tiny_llama_path(tmp_path_factory):
    from tests.tiny_models import write_tiny_llama

    return write_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama.gguf")


@pytest.fixture(scope="session")
def tiny_moe_path(tmp_path_factory):
    from tests.tiny_models import write_tiny_llama

    return write_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-moe.gguf", n_expert=4)
