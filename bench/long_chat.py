"""A long chat run turn by turn through the app's own prompt builder.

Benchmarks 2 and 3 measure what the app's prompts let llama.cpp reuse, so the prompt must
come from `app.core.chat.job.PromptJob` (card, persona, template, budget), exactly as
the chat controller builds it; only the messages are made up.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

from app.core.appdata.settings import Settings
from app.core.chat.job import PromptJob, TokenCounter
from app.core.engine import SamplingParams
from app.core.prompt import Message, PromptInput

CARD = {
    "name": "Mira",
    "description": "Mira keeps the harbour tavern and knows every sailor by name.",
    "personality": "warm, curious, a little sly",
    "scenario": "A stormy night; the tavern is full.",
    "first_mes": "Welcome in, stranger. Rain's coming down hard tonight.",
}
USER_LINE = "I shake the rain from my coat and ask about the ship in the harbour. "
CHAR_LINE = "She smiles and slides a mug of ale across the counter, then leans closer. "


@dataclass
class Turn:
    prompt_tokens: int
    evaluated_tokens: int
    restored_tokens: int
    ttft_s: float
    restore_s: float
    reply: str
    dropped_messages: int


def _text(line: str, chars: int) -> str:
    return (line * (chars // len(line) + 1))[:chars].strip()


class LongChat:
    """`turns` exchanges sized so the prompt fills about `fill` of the context."""

    def __init__(self, engine, info, turns: int, fill: float, max_tokens: int) -> None:
        self.engine, self.info = engine, info
        self.settings = Settings(max_tokens=max_tokens, user_name="Ann")
        self.counter = TokenCounter()
        self.history: list[Message] = []
        self._size(turns, int(fill * info.n_ctx))

    def _fill(self, turns: int, chars: int) -> None:
        self.history = [Message(role="assistant", text=CARD["first_mes"])]
        for i in range(turns - 1):
            self.history += [
                Message(role="user", text=f"({i}) {_text(USER_LINE, chars)}"),
                Message(role="assistant", text=f"({i}) {_text(CHAR_LINE, chars)}"),
            ]

    def _size(self, turns: int, target: int) -> None:
        """The longest messages whose prompt fits `target` tokens with nothing dropped
        (a binary search: the template's markup per message is the model's business)."""
        low, high = 1, 4 * target // turns
        while low < high:
            mid = (low + high + 1) // 2
            self._fill(turns, mid)
            prompt = self.build("probe")
            if prompt.dropped_messages == 0 and prompt.tokens <= target:
                low = mid
            else:
                high = mid - 1
        self._fill(turns, low)

    def build(self, user_text: str):
        inp = PromptInput(
            card=CARD,
            user_name="Ann",
            history=[*self.history, Message(role="user", text=user_text)],
        )
        job = PromptJob(inp, self.info, self.settings, self.counter)
        return job(self.engine.count_tokens)

    def send(self, user_text: str, sampling: SamplingParams, keep: bool = True) -> Turn:
        """One turn as the controller runs it: build, stream, append the reply."""
        prompt = self.build(user_text)
        sampling = replace(sampling, max_tokens=self.settings.max_tokens, stop=tuple(prompt.stop))
        start = time.perf_counter()
        first = None
        pieces = []
        for piece in self.engine.stream(prompt.text, sampling, threading.Event()):
            first = first or time.perf_counter()
            pieces.append(piece)
        stats = self.engine.last_stats
        if keep:
            self.history += [
                Message(role="user", text=user_text),
                Message(role="assistant", text="".join(pieces)),
            ]
        return Turn(
            stats.prompt_tokens,
            stats.evaluated_tokens,
            stats.restored_tokens,
            (first or time.perf_counter()) - start,
            stats.restore_s,
            "".join(pieces),
            prompt.dropped_messages,
        )
