"""The card editor's exact token count comes from the engine's child process.

llama.cpp runs only there (crash isolation): the count is a request queued to the
generation worker like a reply, answered on the GUI thread. Before a model is loaded, and
when the engine cannot count, the editor shows its estimate.
"""

from __future__ import annotations

import pytest

from tests.gui.conftest import load


@pytest.fixture
def no_llama_here(monkeypatch):
    """Any llama.cpp model made in this (the GUI's) process fails the test."""
    import llama_cpp

    made = []

    class Refused:
        def __init__(self, *args, **kwargs) -> None:
            made.append(kwargs.get("model_path"))
            raise AssertionError("llama.cpp was opened in the GUI process")

    monkeypatch.setattr(llama_cpp, "Llama", Refused)
    return made


def _count_in_a_child_of_its_own(model, text: str) -> int:
    """The engine is owned by the window's worker thread (one caller at a time), which is
    busy with the editor's own count just then: count with a second engine instead."""
    from app.core.engine import LoadParams
    from app.core.engine.local import LocalEngine

    engine = LocalEngine()
    try:
        engine.load(LoadParams(model_path=str(model), n_ctx=4096))
        return engine.count_tokens([text])[0]
    finally:
        engine.unload()


def test_the_exact_count_comes_from_the_engine_child(
    qtbot, make_window, tiny_llama_path, no_llama_here
):
    window = make_window()
    before = window.library.edit_current()
    assert "≈" in before.token_label.text()  # no model yet: the estimate
    before.reject()
    load(qtbot, window, tiny_llama_path)
    editor = window.library.edit_current()
    expected = _count_in_a_child_of_its_own(tiny_llama_path, editor.permanent_text())
    qtbot.waitUntil(lambda: "≈" not in editor.token_label.text(), timeout=10000)
    assert editor.token_count == expected
    assert f"{expected:,} tokens" in editor.token_label.text()
    editor.fields["description"].setPlainText(editor.fields["description"].toPlainText() + " more")
    qtbot.waitUntil(lambda: editor.token_count != expected, timeout=10000)
    assert "≈" not in editor.token_label.text()
    assert no_llama_here == []


def test_an_engine_without_a_model_leaves_the_estimate(qtbot, make_window):
    from app.gui.characters.token_counter import EngineTokenCounter

    window = make_window()
    counter = EngineTokenCounter(window.worker.worker, window)
    answers = []
    counter.request("Hello there", answers.append)
    qtbot.waitUntil(lambda: answers != [], timeout=10000)
    assert answers == [None]  # "No model is loaded." became no exact count
    editor = window.library.edit_current()
    editor.count_tokens = counter
    editor.update_token_count()
    qtbot.wait(200)
    assert "≈" in editor.token_label.text() and editor.token_count > 0
