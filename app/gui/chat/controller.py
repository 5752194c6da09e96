"""The chat controller: turns user actions into store writes and generation requests.

It owns the order of events in ARCHITECTURE "How data flows": the user's message is
committed before anything else; the reply exists in the store as soon as it starts and is
saved every couple of seconds while it streams; a stopped or failed reply is kept and marked.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.context import AppContext
from app.core.conversation import (
    PromptJob,
    TokenCounter,
    greetings,
    prompt_input,
    sampling_from,
)
from app.core.engine import ModelInfo, StreamStats
from app.core.store import StoreError
from app.gui.chat.model import ChatModel
from app.gui.workers import WorkerThread

SAVE_EVERY_MS = 2000


class ChatController(QObject):
    busy_changed = Signal(bool)
    error = Signal(str)
    reply_finished = Signal(object)   # StreamStats
    _generate = Signal(object, object)

    def __init__(self, ctx: AppContext, model: ChatModel, worker: WorkerThread) -> None:
        super().__init__()
        self.ctx, self.model, self.worker = ctx, model, worker.worker
        self.chat_id: int | None = None
        self.card: dict = {}
        self.info: ModelInfo | None = None
        self.counter = TokenCounter()
        self.last_prompt = None
        self._reply_id: int | None = None
        self._save_timer = QTimer(self, interval=SAVE_EVERY_MS, timeout=self._save_partial)
        self._generate.connect(self.worker.generate)
        self.worker.started.connect(self._on_started)
        self.worker.token_batch.connect(self.model.append_text)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)

    @property
    def busy(self) -> bool:
        return self._reply_id is not None

    def set_model(self, info: ModelInfo | None) -> None:
        self.info = info
        self.counter = TokenCounter()  # counts belong to one tokenizer

    # --- chats -------------------------------------------------------------------------
    def open_character(self, character_id: int) -> None:
        chats = self.ctx.store.chats(character_id)
        self.open_chat(chats[0]["id"] if chats else self.new_chat(character_id))

    def new_chat(self, character_id: int) -> int:
        card = self.ctx.store.character_card(character_id)
        return self.ctx.store.new_chat(character_id,
                                       greetings(card, self.ctx.settings.user_name))

    def open_chat(self, chat_id: int) -> None:
        self.chat_id = chat_id
        self.card = self.ctx.store.character_card(self.ctx.store.chat_character(chat_id))
        self.model.names = {"user": self.ctx.settings.user_name,
                            "assistant": self.card.get("name", ""), "system": "System"}
        self.model.set_messages(self.ctx.store.active_path(chat_id))

    # --- sending -----------------------------------------------------------------------
    def send(self, text: str) -> bool:
        """Commit the user's message, then ask for a reply. False when that cannot happen."""
        if self.busy or self.chat_id is None:
            return False
        if self.info is None:
            self.error.emit(self.tr("Load a model first: File → Open a GGUF file…"))
            return False
        try:
            leaf = self.ctx.store.active_leaf(self.chat_id)
            user_id = self.ctx.store.append_message(self.chat_id, leaf, "user", text)
            self.model.append(self.ctx.store.message(user_id))
            self._start_reply(user_id)
        except StoreError as exc:
            self.error.emit(str(exc))
            return False
        return True

    def _start_reply(self, parent_id: int) -> None:
        history = self.ctx.store.active_path(self.chat_id)
        self._reply_id = self.ctx.store.append_message(self.chat_id, parent_id, "assistant",
                                                       "", status="streaming")
        self.model.append(self.ctx.store.message(self._reply_id))
        job = PromptJob(prompt_input(self.card, self.ctx.settings, history), self.info,
                        self.ctx.settings, self.counter)
        self.worker.cancel.clear()
        self._started_at = time.monotonic()
        self._save_timer.start()
        self.busy_changed.emit(True)
        self._generate.emit(job, sampling_from(self.ctx.settings, []))

    def stop(self) -> None:
        self.worker.cancel.set()

    # --- worker results ----------------------------------------------------------------
    def _on_started(self, prompt) -> None:
        self.last_prompt = prompt

    def _current_text(self) -> str:
        messages = self.model.messages()
        return messages[-1].text if messages else ""

    def _save_partial(self) -> None:
        if self._reply_id is not None:
            self._write_reply(None)

    def _write_reply(self, status: str | None, info: dict | None = None) -> None:
        try:
            self.ctx.store.update_message(self._reply_id, self._current_text(), status, info)
        except StoreError as exc:
            self.error.emit(str(exc))

    def _finish(self, status: str, info: dict | None) -> None:
        self._save_timer.stop()
        self._write_reply(status, info)
        self.model.update_last(status=status)
        self._reply_id = None
        self.busy_changed.emit(False)

    def _on_finished(self, stats: StreamStats | None) -> None:
        stats = stats or StreamStats()
        status = "stopped" if stats.stopped else "complete"
        s = self.ctx.settings
        self._finish(status, {
            "model": self.info.name if self.info else "", "seed": stats.seed,
            "sampler": {"temperature": s.temperature, "top_p": s.top_p, "min_p": s.min_p,
                        "top_k": s.top_k, "repeat_penalty": s.repeat_penalty},
            "tokens": stats.tokens, "tokens_per_s": round(stats.tokens_per_s, 2)})
        self.reply_finished.emit(stats)

    def _on_failed(self, message: str, crashed: bool) -> None:
        self._finish("interrupted" if crashed else "error", {"error": message})
        if crashed:
            self.set_model(None)
        self.error.emit(message)
