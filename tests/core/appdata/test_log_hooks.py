"""Unhandled exceptions reach parlor.log with their traceback; chat text stays out of it
unless the user asks for it."""

from __future__ import annotations

import sys
import threading

from app.core.appdata import logs


def _install(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "excepthook", lambda *a: None)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)
    handler = logs.setup_logging(tmp_path)
    logs.install_excepthooks()
    return handler


def test_an_unhandled_exception_is_logged_with_its_traceback(monkeypatch, tmp_path):
    handler = _install(monkeypatch, tmp_path)
    try:
        raise ValueError("the card had no name")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    handler.flush()
    text = (tmp_path / logs.LOG_FILE).read_text()
    assert "CRITICAL parlor.crash: unhandled ValueError" in text
    assert "Traceback" in text and "the card had no name" in text


def test_an_exception_in_a_thread_is_logged(monkeypatch, tmp_path):
    handler = _install(monkeypatch, tmp_path)

    def boom():
        raise RuntimeError("worker fell over")

    thread = threading.Thread(target=boom, name="parlor-test-thread")
    thread.start()
    thread.join()
    handler.flush()
    text = (tmp_path / logs.LOG_FILE).read_text()
    assert "unhandled RuntimeError in thread parlor-test-thread" in text
    assert "worker fell over" in text


def test_chat_text_is_logged_only_by_length_unless_asked():
    assert logs.text_for_log("I love you, Wren", debug=False) == "<16 characters>"
    assert logs.text_for_log("I love you, Wren", debug=True) == "'I love you, Wren'"
