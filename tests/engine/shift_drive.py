"""A chat driven past the context limit on real llama.cpp, twice: one context shifting its
cache, one reading every prompt in full. Shared by tests/engine/test_context_shift.py and
tests/packaging/shift_probe.py (which runs it on a built runtime's llama.cpp, with layers on
a Vulkan device), so it imports no pytest.
"""

from __future__ import annotations

import ctypes

import numpy as np

from app.core.appdata.settings import Settings
from app.core.chat.job import PromptJob, TokenCounter
from app.core.engine import LoadParams, PromptLayout, SamplingParams
from app.core.engine.child import Child
from app.core.prompt import Message, PromptInput

CARD = {
    "name": "Mira",
    "description": "Mira keeps the tavern by the river road and knows every traveler.",
    "personality": "warm, quiet, curious",
    "scenario": "A storm at night; the tavern is full.",
    "first_mes": "Welcome, stranger. The rain is coming down hard tonight.",
}
USER = "hello friend the traveler is here again with the rain and the storm over the river road"
N_CTX = 1024
PROBE = SamplingParams(max_tokens=1, temperature=0.0, seed=1)
REPLY_TOKENS = 12
# one token more: the last one sampled is never decoded, so the cache holds REPLY_TOKENS
GREEDY = SamplingParams(max_tokens=REPLY_TOKENS + 1, temperature=0.0, seed=1, repeat_penalty=1.0)
# Measured on the tiny model (f16 cache, flash attention on and off, 40 turns, 37 of them
# shifted): the largest difference between the logits after a shift and after a full
# re-read was 5.5e-5, in logits whose top two differ by 0.012-0.019. What differs is that the
# moved keys and values were computed while the dropped messages were still before them; a
# real model attends more to those (the prototype saw 0.04 on a larger test model),
# so the bound is 1e-2: loose for this model, still 0.5x the smallest top-two gap here.
TOLERANCE = 1e-2
# The tiny model's words are near ties after some tokens (its logits are almost flat), so a
# greedy reply may part at a step where the two candidates differ by float noise; the same
# happens between two full reads with other batch sizes. A parting is only accepted there.
TIE = 1e-3


class NullPipe:
    """Where the child writes its tokens; the test reads nothing from it."""

    def send(self, _message) -> None:
        pass


def shift_child(
    model, flash_attn: bool, kv_type: str = "f16", n_ctx: int = N_CTX, n_gpu_layers: int = 0
) -> Child:
    child = Child(NullPipe(), (ctypes.c_byte * 2)())
    child.load(
        LoadParams(
            model_path=str(model),
            n_ctx=n_ctx,
            flash_attn=flash_attn,
            kv_type=kv_type,
            n_gpu_layers=n_gpu_layers,
        )
    )
    return child


def last_logits(child: Child) -> np.ndarray:
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(child.llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(child.llm.n_vocab(),)).copy()


def run_reply(child: Child, prompt, sampling: SamplingParams, pieces: list[str]):
    """Generate through the child as the engine process does, collecting the text."""
    child.conn = Collector(pieces)
    stats = child.generate(prompt.text, sampling, PromptLayout(prompt.permanent_chars))
    return stats


class Collector:
    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def send(self, message) -> None:
        if message[0] == "token":
            self.pieces.append(message[1])


class DrivenChat:
    """A chat driven through the app's prompt builder, one user line and one reply a turn."""

    def __init__(self, child: Child, card: dict) -> None:
        self.child, self.card = child, card
        self.info = model_info(child)
        self.counter = TokenCounter()
        self.settings = Settings(max_tokens=GREEDY.max_tokens, user_name="Ann")
        self.history = [Message(role="assistant", text=card["first_mes"])]

    def prompt(self, user_text: str):
        inp = PromptInput(
            card=self.card,
            user_name="Ann",
            history=[*self.history, Message(role="user", text=user_text)],
        )
        return PromptJob(inp, self.info, self.settings, self.counter)(self._count)

    def _count(self, texts: list[str]) -> list[int]:
        llm = self.child.llm
        return [len(llm.tokenize(t.encode("utf-8"), add_bos=False, special=True)) for t in texts]


def model_info(child: Child):
    from app.core.engine.child import _info as info_of

    return info_of(child.llm, child.params, child.shift_off)


def generated_ids(child: Child, prompt_tokens: int) -> list[int]:
    return child.llm.input_ids[prompt_tokens : child.llm.n_tokens].tolist()


def drive_turn(shifting: Child, fresh: Child, chat: DrivenChat, user_text: str):
    """One turn on both contexts; the fresh one forgets everything first (a full read).

    Both know the same replies, so both evaluate the same ids: the tokenizer's, with the
    generated ids where the prompt holds a reply (reply_ids.py)."""
    prompt = chat.prompt(user_text)
    made = list(shifting.replies.replies)
    shifted = run_reply(shifting, prompt, PROBE, [])
    a = last_logits(shifting)
    fresh.llm.reset()
    fresh.replies.replies = list(made)
    run_reply(fresh, prompt, PROBE, [])
    b = last_logits(fresh)
    text: list[str] = []
    run_reply(shifting, prompt, GREEDY, text)
    fresh.llm.reset()
    fresh.replies.replies = list(made)
    run_reply(fresh, prompt, GREEDY, [])
    n = shifted.prompt_tokens
    got, want = generated_ids(shifting, n), generated_ids(fresh, n)
    chat.history += [
        Message(role="user", text=user_text),
        Message(role="assistant", text="".join(text)),
    ]
    return prompt, shifted, a, b, got, want


def parting_gap(fresh: Child, prompt, got: list[int], want: list[int]) -> float:
    """How far apart, in a full read, the two tokens are where the greedy replies part."""
    k = next(i for i, (x, y) in enumerate(zip(got, want, strict=True)) if x != y)
    fresh.llm.reset()
    layout = PromptLayout(prompt.permanent_chars)
    fresh.llm.eval(fresh.prompt_tokens(prompt.text, layout) + want[:k])
    logits = last_logits(fresh)
    return abs(float(logits[want[k]] - logits[got[k]]))
