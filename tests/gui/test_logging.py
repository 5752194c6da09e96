"""parlor.log tells what happened — loads, replies, failures — without the chat's text
unless Settings → Diagnostics → "Log message text" is on."""

from __future__ import annotations

import logging

from tests.gui.conftest import load


def _messages(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


def test_loads_and_replies_are_logged_without_their_text(
    qtbot, make_window, tiny_llama_path, caplog
):
    caplog.set_level(logging.INFO)
    window = make_window(max_tokens=6)
    load(qtbot, window, tiny_llama_path)
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        window.send("My secret plan is zanzibar")
    text = _messages(caplog)
    assert "loading tiny-llama.gguf (n_ctx=" in text
    assert "loaded tiny-llama.gguf in " in text and "effective: n_ctx=" in text
    assert "reply complete: " in text and "tok/s" in text
    assert "zanzibar" not in text and "Gull & Lantern" not in text
    reply = window.chat_model.messages()[-1].text
    assert f"text <{len(reply)} characters>" in text


def test_log_message_text_setting_quotes_the_reply(qtbot, make_window, tiny_llama_path, caplog):
    caplog.set_level(logging.INFO)
    window = make_window(max_tokens=6)
    window.ctx.settings.log_text = True
    load(qtbot, window, tiny_llama_path)
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        window.send("My secret plan is zanzibar")
    assert "zanzibar" in _messages(caplog)


def test_a_refused_file_and_a_cancelled_load_are_logged_with_their_cause(
    qtbot, make_window, tiny_llama_path, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    bad = tmp_path / "holiday-photo.gguf"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    window = make_window()
    assert not window.models.load(str(bad))
    with qtbot.waitSignal(window.model_failed, timeout=60000):
        window.models.load(str(tiny_llama_path))
        window.stop_button.click()
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("holiday-photo.gguf" in m for m in failures)
    assert any("loading tiny-llama.gguf failed" in m and "cancel" in m.lower() for m in failures)
