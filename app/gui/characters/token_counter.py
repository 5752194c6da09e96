"""Exact token counts for the card editor, from the engine's own tokenizer.

llama.cpp runs only in the engine's child process (crash isolation), so the count is a
request like any other: queued to the generation worker, which owns the engine (C3), and
answered with a signal on the GUI thread. While a reply streams the request waits its
turn; the editor shows its estimate meanwhile. No model, a server that cannot tokenize,
or any failure answers None, and the estimate stays.

A counter is anything with `request(text, reply)`; `SyncCounter` wraps a plain function
(scripts, tests) in that shape.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal

Reply = Callable[[int | None], None]
_ids = itertools.count(1)  # one sequence for every counter: the worker answers them all


class TokenCounter(Protocol):
    def request(self, text: str, reply: Reply) -> None: ...


class SyncCounter:
    """A plain `count(text) -> int`; a failure answers None."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self.count = count

    def request(self, text: str, reply: Reply) -> None:
        try:
            value: int | None = int(self.count(text))
        except Exception:  # noqa: BLE001 - a tokenizer failure must not break editing
            value = None
        reply(value)


class EngineTokenCounter(QObject):
    """Counts through `worker.count_tokens` (a queued slot) and its `tokens_counted`."""

    asked = Signal(int, object)  # request id, [text]

    def __init__(self, worker: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._waiting: dict[int, Reply] = {}
        self.asked.connect(worker.count_tokens)  # the worker's thread: queued
        worker.tokens_counted.connect(self._on_counted)

    def request(self, text: str, reply: Reply) -> None:
        request = next(_ids)
        self._waiting[request] = reply
        self.asked.emit(request, [text])

    def _on_counted(self, request: int, counts: object) -> None:
        reply = self._waiting.pop(request, None)
        if reply is None:
            return  # another counter's request
        ok = isinstance(counts, list) and len(counts) == 1 and isinstance(counts[0], int)
        reply(counts[0] if ok else None)  # type: ignore[index]


def as_counter(count: TokenCounter | Callable[[str], int] | None) -> TokenCounter | None:
    if count is None or hasattr(count, "request"):
        return count  # type: ignore[return-value]
    return SyncCounter(count)
