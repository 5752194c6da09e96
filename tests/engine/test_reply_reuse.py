"""The previous reply is reused from the KV cache even when its stored text tokenizes
differently from what the model generated.

The tiny model writes words with their leading space ("▁light"); the clean-up strips the
reply's first space, and the tokenizer spells the stored "light" letter by letter. Without
the generated ids the next prompt parts from the cache at the reply's first token and the
whole reply is read again every turn. The counts are llama.cpp's own (perf.py).
"""

from __future__ import annotations

import ctypes
import threading

from app.core.appdata.settings import Settings
from app.core.chat.job import PromptJob, TokenCounter
from app.core.engine import LoadParams, PromptLayout, SamplingParams
from app.core.engine.child import Child, _info
from app.core.engine.kv_shift import common_prefix
from app.core.engine.local import LocalEngine
from app.core.prompt import Message, PromptInput
from app.core.prompt.cleanup import clean_reply
from tests.engine.collect import Collect

CARD = {
    "name": "Mira",
    "description": "Mira keeps the tavern by the river road.",
    "first_mes": "Welcome, stranger.",
}
REPLY_TOKENS = 40
GREEDY = SamplingParams(max_tokens=REPLY_TOKENS, temperature=0.0, seed=1, repeat_penalty=1.0)


class _Chat:
    """A chat through the app's prompt builder; replies are stored as the clean-up leaves them."""

    def __init__(self, info, count) -> None:
        self.info, self.count = info, count
        self.settings = Settings(max_tokens=REPLY_TOKENS, user_name="Ann")
        self.counter = TokenCounter()
        self.history = [Message(role="assistant", text=CARD["first_mes"])]

    def prompt(self, user_text: str):
        inp = PromptInput(
            card=CARD, user_name="Ann", history=[*self.history, Message("user", user_text)]
        )
        return PromptJob(inp, self.info, self.settings, self.counter)(self.count)

    def add(self, user_text: str, raw: str) -> str:
        cleaned = clean_reply(raw, char="Mira", user="Ann").text
        self.history += [Message("user", user_text), Message("assistant", cleaned)]
        return cleaned


def _new_part(before: str, reply: str, after: str) -> str:
    """The text a turn adds after the previous prompt and its reply: the template's glue,
    the user's line, the next reply's header."""
    assert after.startswith(before + reply)
    return after[len(before) + len(reply) :]


def test_each_turn_evaluates_only_the_new_message_and_the_template_glue(tiny_llama_path):
    child = Child(Collect(), (ctypes.c_byte * 2)())
    child.load(LoadParams(model_path=str(tiny_llama_path), n_ctx=2048))
    llm = child.llm

    def count(texts: list[str]) -> list[int]:
        return [len(llm.tokenize(t.encode(), add_bos=False, special=True)) for t in texts]

    chat = _Chat(_info(llm, child.params, child.shift_off), count)
    before = reply = None
    for turn in range(4):
        user = f"({turn}) hello friend, the traveler is here again"
        prompt = chat.prompt(user)
        if before is not None:
            # the bug this guards against: the stored reply tokenizes apart from the cache
            cached = llm.input_ids[: llm.n_tokens].tolist()
            assert common_prefix(child._tokenize(prompt.text), cached) < len(cached) - 10
        child.conn = Collect()
        stats = child.generate(prompt.text, GREEDY, PromptLayout(prompt.permanent_chars))
        raw = "".join(child.conn.pieces)
        assert raw.startswith(" ") and stats.tokens >= REPLY_TOKENS - 1
        if before is not None:
            new = _new_part(before.text, reply, prompt.text)
            # llama.cpp's counter: the new text, plus the previous reply's last token (sampled
            # but never decoded) and a token or two where the new text meets the reply
            assert 0 <= stats.llama_prompt_eval <= count([new])[0] + 3, f"turn {turn}"
            assert stats.llama_prompt_eval < count([new])[0] + REPLY_TOKENS // 2
        before, reply = prompt, chat.add(user, raw)
        assert reply == raw.strip() and reply != raw


def test_the_engine_process_reuses_the_cleaned_reply(tiny_llama_path):
    """The same through LocalEngine, the child process the window uses."""
    engine = LocalEngine()
    info = engine.load(LoadParams(model_path=str(tiny_llama_path), n_ctx=2048))
    try:
        chat = _Chat(info, engine.count_tokens)
        cancel = threading.Event()
        first = chat.prompt("hello friend")
        raw = "".join(engine.stream(first.text, GREEDY, cancel, PromptLayout(0)))
        reply = chat.add("hello friend", raw)
        second = chat.prompt("the rain again")
        list(engine.stream(second.text, GREEDY, cancel, PromptLayout(0)))
        stats = engine.last_stats
        new = engine.count_tokens([_new_part(first.text, reply, second.text)])[0]
        assert stats is not None and 0 <= stats.llama_prompt_eval <= new + 3
        assert stats.reused_tokens >= stats.prompt_tokens - new - 3
    finally:
        engine.unload()
