"""Saved KV sessions: restored after a restart, ignored when damaged, kept under a cap."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from app.core.engine import LoadParams, SamplingParams
from app.core.engine import session_file as sf
from app.core.engine.local import LocalEngine
from app.core.engine.session_file import SUFFIX
from app.core.engine.sessions import SessionStore, read_notice

GREEDY = SamplingParams(max_tokens=16, seed=3, temperature=0.0)
HISTORY = "The traveler walks into the tavern and asks for ale and bread. " * 8


def _wait_for_file(folder: Path) -> Path:
    """The child writes on a thread when it idles after the reply."""
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
        path = _wait_for_file(root / "live")
        _wait_for_records(path, 1)  # appended in place: copy it once its record is whole
        kept = shutil.copy(path, root / "kept")
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
    made = _wait_for_file(folder)
    _wait_for_records(made, 1)
    shutil.copy(made, sessions / path.name)
    write_tiny_llama(model, seed=1)  # the same name and size, other weights
    assert _restored(model, sessions, chat["follow_up"]) == 0


def test_a_session_for_another_chat_is_not_used(chat, sessions):
    assert _restored(chat["model"], sessions, "A different story entirely. " * 12) == 0


# --- the store itself: the folder's rules on plain bytes -----------------------------------------
IDENTITY = {
    "model": "m.gguf",
    "size": 1,
    "mtime_ns": 1,
    "n_ctx": 512,
    "kv_type": "f16",
    "flash_attn": True,
    "llama_cpp": "x",
}
PER_TOKEN = 100  # bytes of "state" a token, for these tests


def _store(folder: Path, cap: int = 10**9) -> SessionStore:
    return SessionStore(folder, IDENTITY, cap)


def _size_of(start: int, end: int) -> int:
    return (end - start) * PER_TOKEN


def _save(store: SessionStore, tokens: list[int], final: bool = False, replies=()) -> bool:
    """What session_io.save does, with bytes standing in for llama.cpp's ranges."""
    job = store.plan(tokens, _size_of, final=final)
    if job is None:
        return False
    job.replies = tuple(replies)
    for start, end in job.ranges:
        store.put(job, start, end, bytes([start % 256]) * _size_of(start, end))
    store.finish(job)
    store.wait()
    return True


def _files(folder: Path) -> dict[tuple[int, ...], sf.FileIndex]:
    return {tuple(i.tokens): i for i in map(sf.scan, folder.glob(f"*{SUFFIX}"))}


CHAT = list(range(1000, 1600))


def test_a_growing_chat_is_appended_to_its_file_writing_only_what_is_new(tmp_path):
    store = _store(tmp_path)
    assert _save(store, CHAT[:300])
    first = store.take_writes()[0]
    assert _save(store, CHAT[:340])
    (index,) = _files(tmp_path).values()
    assert index.tokens == CHAT[:340] and len(index.records) == 2
    assert 40 * PER_TOKEN <= store.take_writes()[0] < 40 * PER_TOKEN + 4096 < first
    assert not _save(store, CHAT[:340])  # nothing new: nothing written


def test_a_reply_changed_at_the_end_rewrites_only_from_the_change(tmp_path):
    """A swipe or the last reply re-tokenized: the record keeps the file up to the change."""
    store = _store(tmp_path)
    _save(store, CHAT[:300])
    changed = CHAT[:280] + [7] * 30
    _save(store, changed)
    (index,) = _files(tmp_path).values()
    assert index.tokens == changed and index.records[-1].prefix == 280
    assert index.records[-1].start == 280 and len(index.records[-1].tokens) == 30


def test_messages_dropped_at_the_front_are_a_shift_in_the_same_file(tmp_path):
    """Past the limit the new cache holds the file's history moved down: the record says
    which runs move, and only the new end is written."""
    store = _store(tmp_path)
    perm, history = CHAT[:50], CHAT[50:]
    _save(store, perm + history[:300])
    store.take_writes()
    shifted = perm + history[40:340]  # 40 dropped at the front, 40 new at the end
    _save(store, shifted)
    (index,) = _files(tmp_path).values()
    assert index.tokens == shifted
    assert [(c.src, c.dst, c.length) for c in index.records[-1].chunks] == [(90, 50, 260)]
    assert store.take_writes()[0] < 40 * PER_TOKEN + 4096


def test_the_replies_a_file_lists_follow_its_edits_as_its_tokens_do(tmp_path):
    """Each record lists the replies that start in its range (by position, so two replies
    with the same ids are two); a shift moves them down or drops them with their messages,
    and the file's list is where the rebuilt cache holds each one."""
    store = _store(tmp_path)
    perm, history = CHAT[:50], CHAT[50:]
    a, b, c = (1, 2, 3), (4, 5, 6), (7, 8, 9)
    _save(store, perm + history[:300], replies=[(70, a), (200, b), (250, b)])
    shifted = perm + history[40:340]  # 50..90 dropped: the replies after it move down by 40
    _save(store, shifted, replies=[(160, b), (210, b), (310, c)])
    (index,) = _files(tmp_path).values()
    assert index.records[0].replies == ((70, a), (200, b), (250, b))
    assert index.records[-1].replies == ((310, c),)  # the others were listed before
    assert index.replies == [(160, b), (210, b), (310, c)]


def test_a_branch_from_an_earlier_message_and_another_chat_keep_their_own_files(tmp_path):
    store = _store(tmp_path)
    _save(store, CHAT[:500])
    _save(store, CHAT[:200] + [5] * 150)  # a branch from message 10 of 30
    _save(store, CHAT[:20] + [6] * 300)  # another chat with the same card
    assert set(_files(tmp_path)) == {
        tuple(CHAT[:500]),
        tuple(CHAT[:200] + [5] * 150),
        tuple(CHAT[:20] + [6] * 300),
    }
    best = store.best_match(CHAT[:210], at_least=100)
    assert best is not None and best[1] == 210 and best[0].tokens == CHAT[:500]
    assert store.best_match(CHAT[:210], at_least=210) is None


def test_a_file_mostly_of_dropped_tokens_is_written_anew_and_the_old_one_deleted(tmp_path):
    store = _store(tmp_path)
    perm, history = CHAT[:50], CHAT[50:]
    _save(store, perm + history[:200])
    (old,) = _files(tmp_path).values()
    for k in range(1, 8):  # each turn drops 40 at the front and adds 40 at the end
        _save(store, perm + history[40 * k : 200 + 40 * k])
    (index,) = _files(tmp_path).values()
    assert index.tokens == perm + history[280:480]
    assert index.path != old.path and not old.path.exists()
    assert index.size < 2 * 250 * PER_TOKEN + 16384  # never more than twice what it rebuilds


def test_a_session_over_the_cap_is_not_written_and_the_folder_says_so(tmp_path):
    store = _store(tmp_path, cap=200 * PER_TOKEN)
    assert not _save(store, CHAT[:300])
    assert not list(tmp_path.glob(f"*{SUFFIX}"))
    (note,) = store.take_notes()
    assert "Not saved" in note and "300 tokens" in note
    assert read_notice(tmp_path) == note  # what Settings → Model shows
    assert _save(store, CHAT[:150])
    assert read_notice(tmp_path) == ""  # the next save that went through clears it


def test_the_cap_holds_for_the_folder_the_least_recently_used_going_first(tmp_path):
    store = _store(tmp_path)
    for first in (1, 2, 3):
        _save(store, [first] * 200)
    time.sleep(0.01)
    oldest = _files(tmp_path)[(1,) * 200]
    store.used(oldest)  # a restore makes the oldest the most recent
    size = oldest.path.stat().st_size
    time.sleep(0.01)
    capped = _store(tmp_path, cap=3 * size + size // 2)
    _save(capped, [4] * 200)
    assert set(_files(tmp_path)) == {(1,) * 200, (3,) * 200, (4,) * 200}
    assert sum(p.stat().st_size for p in tmp_path.glob(f"*{SUFFIX}")) <= 3 * size + size // 2


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path):
    store = _store(tmp_path)
    _save(store, CHAT[:300])
    (index,) = _files(tmp_path).values()
    size = index.path.stat().st_size

    def full_disk(path, head, payload):
        with open(path, "ab") as f:
            f.write(head[:10])  # part of a record reached the disk, then it filled up
        raise OSError(28, "No space left on device")

    store.write_record = full_disk
    _save(store, CHAT[:340])
    assert any("No space left" in n for n in store.take_notes())
    store.write_record = sf.append
    # the half record is cut off when the file is next read; the whole ones are kept
    assert [i.tokens for i in store.files()] == [CHAT[:300]]
    assert index.path.stat().st_size == size


# --- when and what is written ------------------------------------------------------------------
def test_a_reply_writes_nothing_the_idle_engine_saves_and_the_next_turn_only_appends(
    tmp_path,
):
    from tests.tiny_models import write_tiny_llama

    model = write_tiny_llama(tmp_path / "model.gguf")
    folder = tmp_path / "sessions"
    eng = _engine(model, folder)
    try:
        reply = _reply(eng, HISTORY)
        assert not list(folder.glob(f"*{SUFFIX}"))  # the reply did not wait for a save
        path = _wait_for_file(folder)
        first = _wait_for_records(path, 1)
        _reply(eng, HISTORY + reply + " And then?")
        second = _wait_for_records(path, 2)  # the idle save after it: one more record
    finally:
        eng.unload()
    assert second.tokens[: len(first.tokens) - 20] == first.tokens[: len(first.tokens) - 20]
    new = second.records[-1]
    assert new.start > 0.8 * len(first.tokens)  # the old records were not written again
    assert new.payload_len < 0.5 * first.payload_bytes
    assert [p.name for p in folder.glob(f"*{SUFFIX}")] == [path.name]  # one file, appended


def _wait_for_records(path: Path, n: int) -> sf.FileIndex:
    for _ in range(500):
        index = sf.scan(path)
        if len(index.records) >= n:
            return index
        time.sleep(0.02)
    raise AssertionError(f"{path.name} did not get {n} records")


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
    assert not list(folder.glob(f"*{SUFFIX}"))  # nothing written
    assert any("Not saved" in r.getMessage() and "cap" in r.getMessage() for r in caplog.records)
    assert "Not saved" in read_notice(folder)  # and Settings → Model can say so


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
