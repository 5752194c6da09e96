"""Saved sessions as appended records, on real llama.cpp: what a save writes, what a restore
gives back, and that a save never holds up a request.

The engine child is driven in this process (its methods, as its serve loop calls them), so
the tests can look at its cache and its logits between steps.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from app.core.engine import LoadParams, sessions
from app.core.engine import session_file as sf
from app.core.engine.child import Child, _handle
from app.core.engine.session_file import SUFFIX
from app.core.engine.sessions import SessionStore
from app.core.prompt import Message
from tests.engine.shift_drive import (
    CARD,
    PROBE,
    TOLERANCE,
    USER,
    DrivenChat,
    NullPipe,
    last_logits,
    run_reply,
    shift_child,
)

N_CTX = 1024
# A file restored range by range holds the same K/V bytes as a whole save; where the two
# differ is in which cells of llama.cpp's cache they land in (a file replays its shifts, so
# its cells sit in another order), so attention sums them in another order. Measured here:
# at most 3.8e-6 over these tests, one or two float32 steps of logits near 20 (1.9e-6 each);
# 1e-4 leaves room for that and is still a hundredth of the shift's own TOLERANCE.
SAME = 1e-4
REPLY = "the storm is over the river road and the traveler has ale and bread in the tavern"


def _session_child(model, folder: Path, flash_attn: bool = True) -> Child:
    child = Child(NullPipe(), (ctypes.c_byte * 2)())
    child.load(
        LoadParams(
            model_path=str(model), n_ctx=N_CTX, flash_attn=flash_attn, session_dir=str(folder)
        )
    )
    return child


def _idle_save(child: Child) -> None:
    """What the serve loop does after a reply and two quiet seconds."""
    child._replies += 1
    assert child.save_session()
    child.sessions.wait()


def _turn(child: Child, chat: DrivenChat, user_text: str):
    """One turn: the prompt evaluated (one token sampled), then the turn's messages added
    to the history, the reply a fixed text. Generated replies come back re-tokenized and
    are matched to their ids (reply_ids.py), which the files keep for a restart; that is
    tested in test_session_restart.py, not here."""
    stats = run_reply(child, chat.prompt(user_text), PROBE, [])
    chat.history += [Message(role="user", text=user_text)]
    chat.history += [Message(role="assistant", text=f"{REPLY} {user_text[:4]}")]
    return stats


def _one_file(folder: Path) -> sf.FileIndex:
    (path,) = folder.glob(f"*{SUFFIX}")
    return sf.scan(path)


def _full_save(child: Child, folder: Path) -> None:
    """The live cache written whole, in one save, into another folder."""
    store = SessionStore(folder, child.sessions.identity, 10**12)
    from app.core.engine import session_io

    complete, _ = session_io.save(child.llm, store, child.keep, final=True)
    store.wait()
    index = _one_file(folder)
    assert complete and index.tokens == child.llm.input_ids[: child.llm.n_tokens].tolist()
    assert all(not r.chunks and r.prefix == r.start for r in index.records)


def _next_logits(model, folder: Path, prompt, flash_attn: bool = True):
    restarted = _session_child(model, folder, flash_attn)
    stats = run_reply(restarted, prompt, PROBE, [])
    return stats, last_logits(restarted)


@pytest.mark.parametrize("flash_attn", [True, False])
def test_a_session_saved_turn_by_turn_restores_to_the_logits_of_a_full_save(
    tiny_llama_path, tmp_path, flash_attn
):
    """Each idle save appends the turn's tokens only; the file of many records restores to
    the cache a single whole save gives: the same bytes, loaded range by range, so the same
    logits up to the order attention sums the cells in (SAME), flash attention on and off."""
    folder = tmp_path / "turns"
    live, fresh = (
        _session_child(tiny_llama_path, folder, flash_attn),
        shift_child(tiny_llama_path, flash_attn),
    )
    chat = DrivenChat(live, CARD)
    written = []
    for i in range(4):
        _turn(live, chat, f"({i}) {USER}")
        _idle_save(live)
        written.append(live.sessions.take_writes()[0])
    index = _one_file(folder)
    assert len(index.records) >= 4
    assert index.tokens == live.llm.input_ids[: live.llm.n_tokens].tolist()
    state = index.payload_bytes
    # the first save holds the card and the greeting; each later one about a turn
    assert all(w < 0.45 * state for w in written[1:]), (written, state)
    _full_save(live, tmp_path / "whole")
    prompt = chat.prompt(f"(4) {USER}")
    by_turns, a = _next_logits(tiny_llama_path, folder, prompt, flash_attn)
    whole, b = _next_logits(tiny_llama_path, tmp_path / "whole", prompt, flash_attn)
    assert by_turns.restored_tokens == whole.restored_tokens > 0.5 * by_turns.prompt_tokens
    assert float(np.abs(a - b).max()) <= SAME
    fresh.llm.reset()
    run_reply(fresh, prompt, PROBE, [])
    c = last_logits(fresh)
    assert int(a.argmax()) == int(c.argmax()) and float(np.abs(a - c).max()) <= TOLERANCE


def test_saves_across_context_shifts_restore_the_live_cache(tiny_llama_path, tmp_path):
    """Past the limit the builder drops messages: the records carry the shifts, and the file
    rebuilds the cache the live engine holds: the logits of a whole save of it, bit for bit,
    and within the shift's TOLERANCE of a full read."""
    folder = tmp_path / "sessions"
    live, fresh = _session_child(tiny_llama_path, folder), shift_child(tiny_llama_path, True)
    chat = DrivenChat(live, CARD)
    shifted = 0
    for i in range(10):
        shifted += bool(_turn(live, chat, f"({i}) {USER}").shifted_tokens)
        _idle_save(live)
    index = _one_file(folder)
    assert shifted >= 4 and any(r.chunks for r in index.records)
    prompt = chat.prompt(f"(10) {USER}")
    assert index.tokens == live.llm.input_ids[: live.llm.n_tokens].tolist()
    _full_save(live, tmp_path / "whole")
    restored, a = _next_logits(tiny_llama_path, folder, prompt)
    whole, b = _next_logits(tiny_llama_path, tmp_path / "whole", prompt)
    assert restored.restored_tokens == whole.restored_tokens > 0.5 * restored.prompt_tokens
    assert restored.shifted_tokens > 0  # the file is a turn old: the next turn shifts it
    assert float(np.abs(a - b).max()) <= SAME
    fresh.llm.reset()
    run_reply(fresh, prompt, PROBE, [])
    c = last_logits(fresh)
    assert int(a.argmax()) == int(c.argmax()) and float(np.abs(a - c).max()) <= TOLERANCE


# --- a save never holds up a request ------------------------------------------------------------
class _Gate:
    """Holds the writer thread at the disk until the test opens it (the real append then)."""

    def __init__(self) -> None:
        self.open, self.entered = threading.Event(), threading.Event()

    def __call__(self, path, head, payload) -> int:
        self.entered.set()
        assert self.open.wait(30)
        return sf.append(path, head, payload)


class _Answers:
    def __init__(self) -> None:
        self.messages: list[tuple] = []

    def send(self, message) -> None:
        self.messages.append(message)


def test_a_save_being_written_does_not_hold_up_a_count_or_a_reply(tiny_llama_path, tmp_path):
    """Ordering, not timing: while the writer is held at the disk with the whole save
    queued, a token count and a reply are answered; only then does the write go through."""
    folder = tmp_path / "sessions"
    child = _session_child(tiny_llama_path, folder)
    chat = DrivenChat(child, CARD)
    run_reply(child, chat.prompt(USER), PROBE, [])
    gate = child.sessions.write_record = _Gate()
    child._replies += 1
    assert child.save_session()  # everything copied and queued: the engine thread is free
    assert gate.entered.wait(30) and child.sessions.busy
    child.conn = answers = _Answers()
    _handle(child, ("tokenize", [USER, CARD["description"]]))
    stats = run_reply(child, chat.prompt(USER + " again"), PROBE, [])
    assert answers.messages[0][0] == "counts" and stats.prompt_tokens > 0
    assert child.sessions.busy and not list(folder.glob(f"*{SUFFIX}"))  # still not written
    gate.open.set()
    child.sessions.wait()
    assert not child.sessions.busy and len(_one_file(folder).records) >= 1


def test_a_request_arriving_during_the_copy_stops_the_save_which_goes_on_later(
    tiny_llama_path, tmp_path, monkeypatch
):
    """The copy goes range by range and looks at the pipe between ranges: a request that
    came in is served before the rest is copied; the next idle moment copies the rest, and
    the file then restores as if it had been written at once."""
    monkeypatch.setattr(sessions, "CHUNK_BYTES", 64 * 1024)  # several ranges for this model
    folder = tmp_path / "sessions"
    child = _session_child(tiny_llama_path, folder)
    chat = DrivenChat(child, CARD)
    prompt = chat.prompt(USER)
    run_reply(child, prompt, PROBE, [])
    parent, end = multiprocessing.Pipe()
    asked = []

    def waiting(timeout: float) -> bool:
        asked.append(timeout)
        if len(asked) == 2:  # the request comes in after the first range was copied
            parent.send(("tokenize", [USER]))
        return end.poll(timeout)

    child._replies += 1
    assert not child.save_session(waiting=waiting)  # stopped: not everything is saved
    child.sessions.wait()
    first = _one_file(folder)
    assert len(first.records) == 1 and len(first.tokens) < child.llm.n_tokens
    child.conn = end
    _handle(child, end.recv())  # the count is answered with the save half done
    assert parent.recv()[0] == "counts"
    assert child.save_session()  # the next idle moment: the rest
    child.sessions.wait()
    index = _one_file(folder)
    assert index.tokens == child.llm.input_ids[: child.llm.n_tokens].tolist()
    _full_save(child, tmp_path / "whole")
    next_prompt = chat.prompt(USER + " again")
    _, a = _next_logits(tiny_llama_path, folder, next_prompt)
    _, b = _next_logits(tiny_llama_path, tmp_path / "whole", next_prompt)
    assert float(np.abs(a - b).max()) <= SAME


# --- files that are not this model's, or not whole ------------------------------------------------
def test_a_file_of_another_model_under_this_models_name_is_rejected_with_a_note(
    tiny_llama_path, tmp_path
):
    from tests.tiny_models import write_tiny_llama

    other = write_tiny_llama(tmp_path / "other.gguf", seed=2)
    theirs = _session_child(other, tmp_path / "theirs")
    run_reply(theirs, DrivenChat(theirs, CARD).prompt(USER), PROBE, [])
    _idle_save(theirs)
    mine = _session_child(tiny_llama_path, tmp_path / "mine")
    (tmp_path / "mine").mkdir(exist_ok=True)
    (path,) = (tmp_path / "theirs").glob(f"*{SUFFIX}")
    planted = tmp_path / "mine" / f"{mine.sessions.prefix}-{path.name.split('-')[1]}"
    shutil.copy(path, planted)
    stats = run_reply(mine, DrivenChat(mine, CARD).prompt(USER), PROBE, [])
    notes = mine.sessions.take_notes()
    assert stats.restored_tokens == 0 and not planted.exists()
    assert any("another model" in n for n in notes), notes


def test_a_write_cut_short_keeps_the_whole_records_and_says_so(tiny_llama_path, tmp_path):
    """A crash in the middle of an append leaves half a record: the records before it are
    used, the half one is cut off, and the log says so."""
    folder = tmp_path / "sessions"
    live = _session_child(tiny_llama_path, folder)
    chat = DrivenChat(live, CARD)
    for i in range(2):
        _turn(live, chat, f"({i}) {USER}")
        _idle_save(live)
    index = _one_file(folder)
    assert len(index.records) >= 2
    last = index.records[-1]
    with open(index.path, "r+b") as f:
        f.truncate(last.payload_offset + last.payload_len // 2)
    restarted = _session_child(tiny_llama_path, folder)
    stats = run_reply(restarted, chat.prompt(f"(2) {USER}"), PROBE, [])
    notes = restarted.sessions.take_notes()
    assert any("damaged end" in n for n in notes), notes
    assert 0 < stats.restored_tokens <= last.start
    before = index.records[-2]
    assert index.path.stat().st_size == before.payload_offset + before.payload_len
