"""A chat reopened after a restart reads no more than the same chat in a process that never
stopped: the saved session brings back the replies' generated ids as well as the cache.

Generated replies go into the next prompt as the clean-up leaves them; the tiny model writes
words with their leading space and the tokenizer spells the stripped first word letter by
letter, so the prompt matches the cache only where the engine puts the generated ids back
(reply_ids.py). The figures are llama.cpp's own counters (perf.py), on the engine child
driven in this process as its serve loop drives it.
"""

from __future__ import annotations

import ctypes
import shutil
import threading
from pathlib import Path

import pytest

from app.core.appdata.settings import Settings
from app.core.chat.job import PromptJob, TokenCounter
from app.core.engine import LoadParams, PromptLayout, SamplingParams
from app.core.engine import session_file as sf
from app.core.engine.child import Child, _info
from app.core.engine.local import LocalEngine
from app.core.engine.session_file import SUFFIX
from app.core.prompt import Message, PromptInput
from app.core.prompt.cleanup import clean_reply
from tests.engine.collect import Collect

CARD = {
    "name": "Mira",
    "description": "Mira keeps the tavern by the river road and knows every traveler.",
    "first_mes": "Welcome, stranger. The rain is coming down hard tonight.",
}
REPLY_TOKENS = 24
GREEDY = SamplingParams(max_tokens=REPLY_TOKENS, temperature=0.0, seed=1, repeat_penalty=1.0)


def _child(model: Path, folder: Path, n_ctx: int) -> Child:
    child = Child(Collect(), (ctypes.c_byte * 2)())
    child.load(LoadParams(model_path=str(model), n_ctx=n_ctx, session_dir=str(folder)))
    return child


class _Chat:
    """A chat through the app's prompt builder; replies stored as the clean-up leaves them."""

    def __init__(self, info, count, template: str) -> None:
        self.info, self.count = info, count
        self.settings = Settings(max_tokens=REPLY_TOKENS, user_name="Ann", template=template)
        self.counter = TokenCounter()
        self.history = [Message(role="assistant", text=CARD["first_mes"])]
        self.last = ""  # the last reply, as stored

    def prompt(self, user_text: str):
        inp = PromptInput(
            card=CARD, user_name="Ann", history=[*self.history, Message("user", user_text)]
        )
        return PromptJob(inp, self.info, self.settings, self.counter)(self.count)

    def add(self, user_text: str, raw: str) -> None:
        self.last = clean_reply(raw, char="Mira", user="Ann").text
        assert self.last != raw  # the stored reply is not the text the model generated
        self.history += [Message("user", user_text), Message("assistant", self.last)]


def _chat_of(child: Child, template: str) -> _Chat:
    llm = child.llm

    def count(texts: list[str]) -> list[int]:
        return [len(llm.tokenize(t.encode(), add_bos=False, special=True)) for t in texts]

    return _Chat(_info(llm, child.params, child.shift_off), count, template)


def _generate(child: Child, prompt):
    child.conn = Collect()
    stats = child.generate(prompt.text, GREEDY, PromptLayout(prompt.permanent_chars))
    return stats, "".join(child.conn.pieces)


def _idle_save(child: Child) -> None:
    """What the serve loop does after a reply and two quiet seconds."""
    child._replies += 1
    assert child.save_session()
    child.sessions.wait()


def _user(turn: int) -> str:
    return f"({turn}) hello friend, the traveler is here again"


def _turns(child: Child, chat: _Chat, turns: int) -> None:
    for turn in range(turns):
        _, raw = _generate(child, chat.prompt(_user(turn)))
        chat.add(_user(turn), raw)
        _idle_save(child)


@pytest.mark.parametrize(
    "template, n_ctx, turns",
    [
        ("auto", 2048, 4),  # the tiny model has no template: ChatML, a reply a line
        ("mistral", 2048, 4),  # [INST] … [/INST] reply</s>: no line of its own
        ("auto", 640, 10),  # past the limit: the history shifted at every turn
    ],
)
def test_a_restart_evaluates_what_an_uninterrupted_session_evaluates(
    tiny_llama_path, tmp_path, template, n_ctx, turns
):
    """Before the files kept the replies' ids, the restarted engine evaluated 108 tokens
    where the live one evaluated 106 (ChatML), 692 where it evaluated 62 (Mistral: it matched
    up to the first reply only) and 109 for 107 past the limit."""
    live = _child(tiny_llama_path, tmp_path / "live", n_ctx)
    chat = _chat_of(live, template)
    _turns(live, chat, turns)
    (path,) = (tmp_path / "live").glob(f"*{SUFFIX}")
    assert sf.scan(path).tokens == live.llm.input_ids[: live.llm.n_tokens].tolist()
    shutil.copytree(tmp_path / "live", tmp_path / "restart")

    prompt = chat.prompt(_user(turns))
    uninterrupted, expected = _generate(live, prompt)
    restarted = _child(tiny_llama_path, tmp_path / "restart", n_ctx)  # an empty cache
    after_restart, got = _generate(restarted, prompt)

    assert after_restart.restored_tokens > 0.5 * after_restart.prompt_tokens
    assert after_restart.prompt_tokens == uninterrupted.prompt_tokens  # the same ids
    assert after_restart.reused_tokens == uninterrupted.reused_tokens
    assert after_restart.llama_prompt_eval == uninterrupted.llama_prompt_eval
    assert got == expected  # the same cache: the same greedy reply


def test_the_engine_process_restarted_reads_only_the_new_message(tiny_llama_path, tmp_path):
    """The same through LocalEngine: the session saved as the model is unloaded, a new
    child process, the next turn; llama.cpp evaluates the new text and the glue only."""
    folder = str(tmp_path / "sessions")
    params = LoadParams(model_path=str(tiny_llama_path), n_ctx=2048, session_dir=folder)
    cancel = threading.Event()
    engine = LocalEngine()
    chat = _Chat(engine.load(params), engine.count_tokens, "mistral")
    try:
        for turn in range(3):
            prompt = chat.prompt(_user(turn))
            layout = PromptLayout(prompt.permanent_chars)
            chat.add(_user(turn), "".join(engine.stream(prompt.text, GREEDY, cancel, layout)))
        before = prompt
    finally:
        engine.unload()  # the child saves what the folder lacks before it exits
    engine.load(params)  # a new child process: an empty cache, no replies known
    try:
        prompt = chat.prompt(_user(3))
        list(engine.stream(prompt.text, GREEDY, cancel, PromptLayout(prompt.permanent_chars)))
        stats = engine.last_stats
        assert prompt.text.startswith(before.text + chat.last)
        new = engine.count_tokens([prompt.text[len(before.text) + len(chat.last) :]])[0]
    finally:
        engine.unload()
    assert stats is not None and stats.restored_tokens > 0
    # the new text, the last reply's last id (sampled, never decoded), a token where they meet
    assert 0 <= stats.llama_prompt_eval <= new + 3
