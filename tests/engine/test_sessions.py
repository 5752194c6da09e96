"""Saved KV sessions: restored after a restart, ignored when damaged, kept under a cap."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from app.core.engine import LoadParams, SamplingParams
from app.core.engine.local import LocalEngine
from app.core.engine.sessions import SUFFIX, SessionStore, read_header

GREEDY = SamplingParams(max_tokens=16, seed=3, temperature=0.0)
HISTORY = "The traveler walks into the tavern and asks for ale and bread. " * 8


def _wait_for_file(folder: Path) -> Path:
    """The child writes on a thread after the reply; the rename makes the file appear whole."""
    for _ in range(500):
        files = list(folder.glob(f"*{SUFFIX}"))
        if files:
            return files[0]
        time.sleep(0.02)
    raise AssertionError(f"no session file appeared in {folder}")


def _engine(model, folder: Path | None) -> LocalEngine:
    eng = LocalEngine()
    eng.load(
        LoadParams(model_path=str(model), n_ctx=1024, session_dir=str(folder) if folder else "")
    )
    return eng


def _reply(eng, prompt: str) -> str:
    return "".join(eng.stream(prompt, GREEDY, threading.Event()))


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    """A chat's first reply on a model copy; its session file kept aside; the next turn's
    reply from the same process (never restarted) as the reference."""
    from tests.tiny_models import write_tiny_llama

    root = tmp_path_factory.mktemp("sessions")
    model = write_tiny_llama(root / "model.gguf")
    live = _engine(model, root / "live")
    try:
        follow_up = HISTORY + _reply(live, HISTORY) + " And then?"
        (root / "kept").mkdir()
        kept = shutil.copy(_wait_for_file(root / "live"), root / "kept")
        expected = _reply(live, follow_up)
    finally:
        live.unload()
    return {
        "model": model,
        "follow_up": follow_up,
        "kept": Path(kept),
        "expected": expected,
        "prompt_tokens": live.last_stats.prompt_tokens,
    }


@pytest.fixture
def sessions(chat, tmp_path) -> Path:
    """A session folder holding a fresh copy of the kept file."""
    folder = tmp_path / "sessions"
    folder.mkdir()
    shutil.copy(chat["kept"], folder)
    return folder


def test_a_restored_session_gives_the_same_reply_and_skips_the_history(chat, sessions):
    fresh = _engine(chat["model"], sessions)  # a restart: a new process, an empty cache
    try:
        assert _reply(fresh, chat["follow_up"]) == chat["expected"]
        stats = fresh.last_stats
    finally:
        fresh.unload()
    assert stats.restored_tokens == stats.reused_tokens > 0.8 * chat["prompt_tokens"]
    assert stats.evaluated_tokens < 0.2 * chat["prompt_tokens"]


def test_without_a_session_the_history_is_read_again(chat):
    fresh = _engine(chat["model"], None)
    try:
        _reply(fresh, chat["follow_up"])
    finally:
        fresh.unload()
    assert fresh.last_stats.restored_tokens == 0 and fresh.last_stats.reused_tokens == 0


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) - 100])
    elif how == "payload":
        path.write_bytes(data[:-50] + bytes([data[-50] ^ 0xFF]) + data[-49:])
    elif how == "header":
        path.write_bytes(data[:20] + b"#" + data[21:])
    else:
        path.write_bytes(b"not a session at all")


def _restored(model, folder: Path, prompt: str) -> int:
    fresh = _engine(model, folder)
    try:
        assert len(_reply(fresh, prompt)) > 0
        return fresh.last_stats.restored_tokens
    finally:
        fresh.unload()


@pytest.mark.parametrize("how", ["truncated", "payload", "header", "garbage"])
def test_a_damaged_session_is_ignored_and_removed(chat, sessions, how):
    (path,) = sessions.glob(f"*{SUFFIX}")
    _damage(path, how)
    assert _restored(chat["model"], sessions, chat["follow_up"]) == 0
    assert not path.exists()


def test_a_session_for_a_replaced_model_file_is_not_used(chat, sessions, tmp_path):
    from tests.tiny_models import write_tiny_llama

    model = tmp_path / "model.gguf"
    shutil.copy(chat["model"], model)
    (path,) = sessions.glob(f"*{SUFFIX}")
    folder = tmp_path / "for-copy"
    _restored(model, folder, chat["follow_up"])  # a session for this path, as the user had
    shutil.copy(_wait_for_file(folder), sessions / path.name)
    write_tiny_llama(model, seed=1)  # the same name and size, other weights
    assert _restored(model, sessions, chat["follow_up"]) == 0


def test_a_session_for_another_chat_is_not_used(chat, sessions):
    assert _restored(chat["model"], sessions, "A different story entirely. " * 12) == 0


# --- the store itself ------------------------------------------------------------------------
IDENTITY = {
    "model": "m.gguf",
    "size": 1,
    "mtime_ns": 1,
    "n_ctx": 512,
    "kv_type": "f16",
    "flash_attn": True,
    "llama_cpp": "x",
}


def _store(folder: Path, cap: int) -> SessionStore:
    return SessionStore(folder, IDENTITY, cap)


def _write(store: SessionStore, tokens: list[int], size: int = 4000) -> None:
    store.save(tokens, bytes(range(256)) * (size // 256))
    store.wait()


def _files(folder: Path) -> dict[tuple[int, ...], Path]:
    return {tuple(read_header(p)[0].tokens): p for p in folder.glob(f"*{SUFFIX}")}


def test_the_next_turn_of_a_chat_replaces_the_previous_file_other_branches_stay(tmp_path):
    store = _store(tmp_path, 10**9)
    _write(store, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    _write(store, [9, 9])
    _write(store, [1, 2, 3, 4, 5, 6, 0, 0, 0, 0])  # another branch from turn 3: kept
    # the next turn: the last reply came back re-tokenized ([9, 10] as [9, 11])
    _write(store, [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13])
    assert set(_files(tmp_path)) == {
        (9, 9),
        (1, 2, 3, 4, 5, 6, 0, 0, 0, 0),
        (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13),
    }
    assert store.best_match([1, 2, 3, 4, 5, 6, 7, 8, 5], at_least=2)[1] == 8
    assert store.best_match([1, 2, 3, 4, 5, 6, 7, 8, 5], at_least=8) is None


def test_the_size_cap_evicts_the_least_recently_used(tmp_path):
    store = _store(tmp_path, 10**9)
    for first in (1, 2, 3):
        _write(store, [first, 0, 0])
    size = next(iter(_files(tmp_path).values())).stat().st_size
    oldest = _files(tmp_path)[(1, 0, 0)]
    store.load(oldest)  # using the oldest makes it the most recent
    time.sleep(0.01)
    capped = _store(tmp_path, 3 * size + size // 2)
    _write(capped, [4, 0, 0])
    assert set(_files(tmp_path)) == {(1, 0, 0), (3, 0, 0), (4, 0, 0)}
    assert sum(p.stat().st_size for p in tmp_path.glob(f"*{SUFFIX}")) <= 3 * size + size // 2


# --- when and what is written ------------------------------------------------------------------
def test_a_reply_writes_nothing_the_idle_engine_saves_and_an_ordinary_reply_rewrites_nothing(
    tmp_path,
):
    from app.core.engine.child import IDLE_SAVE_S
    from tests.tiny_models import write_tiny_llama

    model = write_tiny_llama(tmp_path / "model.gguf")
    folder = tmp_path / "sessions"
    eng = _engine(model, folder)
    try:
        reply = _reply(eng, HISTORY)
        assert not list(folder.glob(f"*{SUFFIX}"))  # the reply did not wait for a save
        path = _wait_for_file(folder)
        written, first = path.stat().st_mtime_ns, read_header(path)[0].tokens
        # a short follow-up grows the cache by far less than REWRITE_FRACTION: kept as is
        _reply(eng, HISTORY + reply + " And then?")
        time.sleep(IDLE_SAVE_S + 1.0)
        assert [p.name for p in folder.glob(f"*{SUFFIX}")] == [path.name]
        assert path.stat().st_mtime_ns == written
    finally:
        eng.unload()
    # at unload what the file lacks is worth more than MIN_GAIN_TOKENS (the reply came
    # back re-tokenized, then another): one new file, which supersedes the old one
    (last,) = folder.glob(f"*{SUFFIX}")
    assert last.name != path.name and len(read_header(last)[0].tokens) > len(first)


def test_a_session_over_the_cap_is_not_written_and_the_log_says_so(tmp_path, caplog):
    import logging

    from app.core.engine.child import IDLE_SAVE_S
    from tests.tiny_models import write_tiny_llama

    model = write_tiny_llama(tmp_path / "model.gguf")
    folder = tmp_path / "sessions"
    eng = LocalEngine()
    eng.load(
        LoadParams(model_path=str(model), n_ctx=1024, session_dir=str(folder), session_cap_mb=0)
    )
    try:
        with caplog.at_level(logging.WARNING, logger="app.core.engine.local"):
            reply = _reply(eng, HISTORY)
            time.sleep(IDLE_SAVE_S + 1.0)  # the idle save declines
            _reply(eng, HISTORY + reply)  # its note comes back with the next reply
    finally:
        eng.unload()
    assert not list(folder.glob("*"))  # nothing written, not even a temporary file
    assert any("Not saved" in r.getMessage() and "cap" in r.getMessage() for r in caplog.records)


def test_a_damaged_file_is_rejected_with_a_log_line(chat, sessions, caplog):
    import logging

    (path,) = sessions.glob(f"*{SUFFIX}")
    _damage(path, "payload")
    fresh = _engine(chat["model"], sessions)
    try:
        with caplog.at_level(logging.WARNING, logger="app.core.engine.local"):
            _reply(fresh, chat["follow_up"])
    finally:
        fresh.unload()
    assert any("checksum mismatch" in r.getMessage() for r in caplog.records)


def test_the_store_refuses_a_state_over_the_cap_and_says_why(tmp_path):
    store = _store(tmp_path, cap=1000)
    _write(store, [1, 2, 3], size=4096)
    assert not list(tmp_path.glob("*"))
    (note,) = store.take_notes()
    assert "Not saved" in note and "3 tokens" in note


def test_a_file_from_before_old_messages_left_is_superseded_by_the_shifted_chat(tmp_path):
    """Past the limit the newer file holds the older one's history moved down."""
    store = _store(tmp_path, 10**9)
    perm, history = list(range(50)), list(range(1000, 1400))
    _write(store, perm + history[:300])
    _write(store, perm + history[40:340])  # 40 dropped at the front, 40 new at the end
    assert set(_files(tmp_path)) == {tuple(perm + history[40:340])}
