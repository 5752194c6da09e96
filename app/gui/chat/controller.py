"""The chat controller: turns user actions into store writes and generation requests.

It owns the order of events in docs/ARCHITECTURE.md "How a reply is made": the user's
message is committed before anything else; the reply exists in the store as soon as it starts and is
saved every couple of seconds while it streams; a stopped or failed reply is kept and marked.
Regenerate adds a sibling (a swipe), continue extends the last reply in place, impersonate
writes the user's next line into the composer and stores nothing. Deleting hides the
messages at once and removes them from the store only when the Undo bar goes away (or the
next action needs the path), so Undo is exact: nothing is rewritten. Then the store hides
them in one short transaction and the `Purger` removes the rows in the background.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.appdata.logs import text_for_log
from app.core.chat.context import AppContext
from app.core.chat.job import (
    IMPERSONATE_INSTRUCTION,
    PromptIds,
    PromptJob,
    TokenCounter,
    chat_persona_of,
    prompt_input,
    sampling_from,
)
from app.core.chat.macro_state import new_chat, remember_variables
from app.core.chat.prompt_read import ChatTurn, read_prompt_input
from app.core.chat.world_info import default_note, remember_lore_state
from app.core.engine import ModelInfo, StreamStats
from app.core.prompt import PromptInput
from app.core.prompt.history_tail import history_reach
from app.core.store import Message, StoreError
from app.core.store.world_state import WorldInfoStore
from app.gui.chat.model import PAGE, ChatModel
from app.gui.chat.purger import Purger
from app.gui.workers import WorkerThread

SAVE_EVERY_MS = 2000
log = logging.getLogger(__name__)


@dataclass
class _Target:
    """Where streamed text goes: a stored reply (new or continued) or the composer."""

    kind: str  # "reply" | "impersonate"
    message_id: int | None = None
    text: str = ""


class ChatController(QObject):
    busy_changed = Signal(bool)
    error = Signal(str)
    reply_finished = Signal(object)  # StreamStats
    impersonation = Signal(str)  # streamed text for the composer
    impersonation_finished = Signal(str)
    chat_opened = Signal(int)  # another chat (or a branch) is shown: reset its state
    notice = Signal(str)  # something the user should know, for the status bar
    deleted = Signal(int)  # messages hidden by a delete that Undo can bring back
    _generate = Signal(object, object)

    def __init__(self, ctx: AppContext, model: ChatModel, worker: WorkerThread) -> None:
        super().__init__()
        self.ctx, self.model, self.worker = ctx, model, worker.worker
        self.chat_id: int | None = None
        self.card: dict = {}
        self.info: ModelInfo | None = None
        self.counter = TokenCounter()
        self.last_prompt = None
        self._pending_delete: int | None = None  # hidden, deleted for good on commit
        self.purger = Purger(self)  # removes committed deletes' rows in the background
        self._target: _Target | None = None
        self._save_timer = QTimer(self, interval=SAVE_EVERY_MS, timeout=self._save_partial)
        self._prepare = None  # reads the next job's history on the worker thread
        self._lore_ids: list[int] = []  # the prompt's path; its timed effects are kept here
        self._prompt_ids = PromptIds()  # the prompt's history
        self._generate.connect(self.worker.generate)
        self.worker.started.connect(self._on_started)
        self.worker.token_batch.connect(self._on_batch)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)

    @property
    def busy(self) -> bool:
        return self._target is not None

    def set_model(self, info: ModelInfo | None) -> None:
        self.info = info
        self.counter = TokenCounter()  # counts belong to one tokenizer

    # --- chats -------------------------------------------------------------------------
    def open_character(self, character_id: int) -> None:
        chats = self.ctx.store.chats.of_character(character_id)
        self.open_chat(chats[0].id if chats else self.new_chat(character_id))

    def new_chat(self, character_id: int) -> int:
        card = self.ctx.store.characters.card(character_id)
        default = self.ctx.store.personas.default()
        user = default.name if default else self.ctx.settings.user_name
        return new_chat(self.ctx.store, character_id, card, user)

    def open_chat(self, chat_id: int) -> None:
        self.commit_delete()
        self.chat_id = chat_id
        # read from the context's store each time: a restored backup replaces the Store
        store = self.ctx.store
        self.model.source, self.model.store_path = store.messages, store.path
        if not self.purger.busy and store.messages.hidden_pending():
            self.purger.start(store.path)  # a delete the last run (or a restore) left hidden
        self.card = self.ctx.store.characters.card(self.ctx.store.chats.character_of(chat_id))
        self.last_prompt = None  # the last prompt, its budget and drops were another chat's
        self.model.set_out_of_context(0)
        self.reload()
        self.chat_opened.emit(chat_id)

    def reload(self) -> None:
        """Show the chat's active path again (after a swipe, edit, delete or new settings)."""
        self.model.names = {
            "user": self._user_name(),
            "assistant": self.card.get("name", ""),
            "system": "System",
        }
        if self.chat_id is not None:
            self.model.show_end(self.chat_id, self._shown_leaf())

    def _shown_leaf(self) -> int | None:
        """The active leaf, or above a delete that waits for its Undo to expire."""
        if self._pending_delete is not None:
            return self.ctx.store.messages.get(self._pending_delete).parent_id
        return self.ctx.store.messages.active_leaf(self.chat_id)

    def _last(self) -> Message | None:
        """The newest message of the active path: one row, whatever the chat's length."""
        leaf = self.ctx.store.messages.active_leaf(self.chat_id)
        return self.ctx.store.messages.get(leaf) if leaf is not None else None

    def _show_end(self) -> None:
        """Back to the newest page when Find left the window further up the path."""
        if self.model.has_later():
            self.reload()

    def _persona(self) -> tuple[str, str] | None:
        """The chat's persona, else the default one, else None (the settings' name)."""
        return chat_persona_of(self.ctx.store, self.chat_id) if self.chat_id is not None else None

    def _user_name(self) -> str:
        persona = self._persona()
        return persona[0] if persona and persona[0] else self.ctx.settings.user_name

    def _input(
        self, *, leaf: int | None, instruction: str | None = None, continue_last: bool = False
    ) -> PromptInput:
        """The prompt's input: a stand-in with the card and persona only. The job reads
        the path's newest part up to `leaf` on the worker thread and builds the real input
        there (`_reader_for`, `read_prompt_input`)."""
        self._prepare = self._reader_for(leaf, instruction, continue_last)
        return prompt_input(self.card, self.ctx.settings, [], persona=self._persona())

    def _reader_for(self, leaf: int | None, instruction: str | None, continue_last: bool):
        """The job's first step, run on the worker thread; it leaves the path's ids for
        `_on_started` (read only after the worker's `started` signal)."""
        store, chat, reach = self.ctx.store, self.chat_id, self._history_reach()
        model, first = self._macro_session()
        turn = ChatTurn(
            self.card,
            self.ctx.settings,
            store.chats.character_of(chat),
            persona=self._persona(),
            note=default_note(self.ctx.settings),
            instruction=instruction,
            continue_last=continue_last,
            model=model,
            first_included=first,
        )

        def prepare(_stand_in: PromptInput) -> PromptInput:
            read = read_prompt_input(store, chat, leaf, reach, turn)
            self._lore_ids, self._prompt_ids = read.path_ids, read.prompt_ids
            return read.inp

        return prepare

    def _history_reach(self) -> int:
        """How many of the path's newest messages a prompt job reads (history_tail.py)."""
        return history_reach(self.info.n_ctx if self.info else self.ctx.settings.n_ctx)

    def _macro_session(self) -> tuple[str | None, int | None]:
        """{{model}} and {{firstIncludedMessageId}} (the last prompt's first message)."""
        first = self.last_prompt.dropped_messages if self.last_prompt is not None else None
        return (self.info.name if self.info else None), first

    # --- actions -----------------------------------------------------------------------
    def _ready(self) -> bool:
        if self.busy or self.chat_id is None:
            return False
        if not self.commit_delete():
            return False
        if self.info is None:
            self.error.emit(self.tr("Load a model first: File → Open a GGUF file…"))
            return False
        return True

    def _guarded(self, action) -> bool:
        try:
            action()
        except StoreError as exc:
            self.error.emit(str(exc))
            return False
        return True

    def send(self, text: str) -> bool:
        """Commit the user's message, then ask for a reply. False when that cannot happen."""
        if not self._ready():
            return False

        def act():
            self._new_reply(self._commit_user_message(text))

        return self._guarded(act)

    def _commit_user_message(self, text: str) -> int:
        """Store the user's message under the active leaf and show it; its id."""
        self._show_end()
        leaf = self.ctx.store.messages.active_leaf(self.chat_id)
        # The name is kept with the message: a later persona change renames new
        # messages, not what was already said (SillyTavern keeps `name` per message).
        user_id = self.ctx.store.messages.append(
            self.chat_id, leaf, "user", text, gen_info={"name": self._user_name()}
        )
        self.model.append(self.ctx.store.messages.get(user_id))
        return user_id

    def regenerate(self) -> bool:
        """A new reply beside the last one (a swipe), or a reply to a trailing user message."""
        if not self._ready():
            return False
        last = self._last()
        if last is None:
            return False
        if last.role == "assistant":
            if last.parent_id is None:  # a greeting: show the next one, never generate
                return self._swipe_greeting(last, +1) is not None
            parent = last.parent_id
            return self._guarded(lambda: self._new_reply(parent))
        return self._guarded(lambda: self._new_reply(last.id))

    def continue_reply(self) -> bool:
        """Extend the last reply in place."""
        if not self._ready():
            return False
        last = self._last()
        if last is None or last.role != "assistant":
            return self.regenerate()

        def act():
            self.ctx.store.messages.update(last.id, last.text, "streaming")
            self._show_end()
            self.model.update_last(status="streaming")
            inp = self._input(leaf=last.id, continue_last=True)
            self._run(_Target("reply", last.id, last.text), inp)

        return self._guarded(act)

    def impersonate(self) -> bool:
        """Have the model write the user's next line; it goes to the composer, not the chat."""
        if not self._ready():
            return False
        leaf = self.ctx.store.messages.active_leaf(self.chat_id)
        inp = self._input(leaf=leaf, instruction=IMPERSONATE_INSTRUCTION)
        self._run(_Target("impersonate"), inp, stop=[f"\n{self.card.get('name', '')}:"])
        return True

    def swipe(self, message_id: int, step: int) -> int | None:
        """Show a sibling of any message; past the last reply's last swipe, write a new one."""
        if self.busy or self.chat_id is None or not self.commit_delete():
            return None
        msg = self.ctx.store.messages.get(message_id)
        if msg.parent_id is None:
            return self._swipe_greeting(msg, step)
        siblings = self.ctx.store.messages.sibling_ids(message_id)
        index = siblings.index(message_id) + step
        if not 0 <= index < len(siblings):
            last = self.ctx.store.messages.active_leaf(self.chat_id)
            if step > 0 and msg.role == "assistant" and last == message_id:
                self.regenerate()
                return self.ctx.store.messages.active_leaf(self.chat_id)
            return None
        leaf = self.ctx.store.messages.show_branch(self.chat_id, siblings[index])
        self._show_swiped(message_id, siblings[index], leaf)
        return leaf

    def _show_swiped(self, old: int, new: int, leaf: int) -> None:
        """Replace the rows from `old` down with the branch now shown from `new`: a page
        of it, read down from `new` (the rows above the swipe stay as they are)."""
        row = self.model.row_of(old)
        if row < 0:
            self.reload()
            return
        store = self.ctx.store.messages
        page = store.placed([new]) + store.after(new, PAGE - 1)
        self.model.leaf = leaf
        self.model.replace_from(row, page, later=bool(page) and page[-1].id != leaf)

    def _swipe_greeting(self, msg: Message, step: int) -> int | None:
        """Greetings are the chat's roots: swiping them wraps around (SillyTavern's
        `swipe_right` loops back to the first alternate greeting) and never generates.

        Mid-chat, another greeting is another branch: the conversation after this one is
        kept, and the notice says how to get it back."""
        siblings = self.ctx.store.messages.sibling_ids(msg.id)
        if len(siblings) < 2:
            self.notice.emit(self.tr("This character has only one greeting."))
            return None
        target = siblings[(siblings.index(msg.id) + step) % len(siblings)]
        had_more = self.ctx.store.messages.active_leaf(self.chat_id) != msg.id
        leaf = self.ctx.store.messages.show_branch(self.chat_id, target)
        self._show_swiped(msg.id, target, leaf)
        if had_more:
            self.notice.emit(
                self.tr(
                    "Showing greeting {0} of {1}. The conversation after greeting {2} is kept: "
                    "swipe back to it to continue there."
                ).format(siblings.index(target) + 1, len(siblings), siblings.index(msg.id) + 1)
            )
        return leaf

    def edit(self, message_id: int, text: str) -> bool:
        ok = self._guarded(lambda: self.ctx.store.messages.update(message_id, text))
        self.model.replace_message(self.ctx.store.messages.placed([message_id])[0])
        return ok

    def delete(self, message_id: int) -> int:
        """Hide a message and what follows it; returns how many are hidden (0: refused).

        The store keeps them until `commit_delete` (the Undo bar expired, or an action
        needs the real path); `undo_delete` shows them again exactly as they were."""
        if self.busy or not self.commit_delete():
            return 0
        hidden = self._count_from(message_id)
        if not hidden:
            return 0
        self._pending_delete = message_id
        row, parent = self.model.row_of(message_id), self._shown_leaf()
        if row >= 0 and not self.model.has_later():
            self.model.truncate(row)
            self.model.leaf = parent
        else:
            self.model.show_end(self.chat_id, parent)
        self.deleted.emit(hidden)
        return hidden

    def _count_from(self, message_id: int) -> int:
        """How many messages run from `message_id` to the path's end (0: not on the path).
        The model says it without a read when its rows reach the end or a Find jump
        listed the path below them (a long chat's first message has 100,000 below it);
        else the store walks up from the leaf."""
        count = self.model.rows_to_end(self.model.row_of(message_id))
        store = self.ctx.store.messages
        if count is not None and self.model.leaf == store.active_leaf(self.chat_id):
            return count
        return store.steps_to(self.chat_id, message_id) or 0

    def undo_delete(self) -> None:
        if self._pending_delete is not None:
            self._pending_delete = None
            self.reload()

    def commit_delete(self) -> bool:
        """Delete for good what the last delete hid: hidden in the store at once, whatever
        the branch's length, its rows removed in the background. False when the store
        refused."""
        mid, self._pending_delete = self._pending_delete, None
        if mid is None:
            return True
        ok = self._guarded(lambda: self.ctx.store.messages.hide(mid))
        if ok:
            log.info("deleted message %s and what followed it", mid)
            self.purger.start(self.ctx.store.path)
            # the parent's other reply (a swipe) is the path's end now: show it
            if self.chat_id is not None and self.model.leaf != self._shown_leaf():
                self.reload()
        return ok

    def stop(self) -> None:
        self.worker.cancel.set()

    # --- running a generation ----------------------------------------------------------
    def _new_reply(self, parent_id: int) -> None:
        """A reply under `parent_id`; its prompt reads the path on the worker thread."""
        reply_id = self.ctx.store.messages.append(
            self.chat_id, parent_id, "assistant", "", status="streaming"
        )
        self._show_reply(parent_id, reply_id)
        self._run(_Target("reply", reply_id), self._input(leaf=parent_id))

    def _show_reply(self, parent_id: int, reply_id: int) -> None:
        """The new reply in place of the rows below its parent (the old reply, for a
        regenerate): one row read, whatever the chat's length."""
        row = self.model.row_of(parent_id)
        if row < 0 or self.model.has_later():
            self.reload()
            return
        self.model.leaf = reply_id
        self.model.replace_from(row + 1, self.ctx.store.messages.placed([reply_id]))

    def _run(self, target: _Target, inp, stop: list[str] | None = None) -> None:
        self._target = target
        job = self._job_for(inp)
        self._prepare = None
        self._job = job  # its clean-up runs on the finished reply
        self.worker.cancel.clear()
        if target.kind == "reply":
            self._save_timer.start()
        self.busy_changed.emit(True)
        overrides = self.ctx.store.chats.extra(self.chat_id).get("sampler")
        self._sampling = sampling_from(self.ctx.settings, stop or [], overrides)
        self._generate.emit(job, self._sampling)

    def _job_for(self, inp) -> PromptJob:
        """The prompt job for `inp` (a group chat's controller makes its speaker's)."""
        return PromptJob(inp, self.info, self.ctx.settings, self.counter, prepare=self._prepare)

    def _on_started(self, prompt) -> None:
        self.last_prompt = prompt
        if self.chat_id is not None:  # world info's sticky/cooldown state for this branch
            self._guarded(
                lambda: remember_lore_state(WorldInfoStore(self.ctx.store), self._lore_ids, prompt)
            )
            self.model.prompt_ids = self._prompt_ids  # for the out-of-context marks
            # {{setvar}} and friends take effect once the prompt holding them is sent
            self._guarded(lambda: remember_variables(self.ctx.store, self.chat_id, prompt))
        log.info(
            "prompt built: %d of %d tokens, %d older messages left out, lore %d%s",
            prompt.tokens,
            self.info.n_ctx if self.info else 0,
            prompt.dropped_messages,
            len(prompt.lore),
            f", text {text_for_log(prompt.text, True)}" if self.ctx.settings.log_text else "",
        )

    def _on_batch(self, text: str) -> None:
        if self._target is None:
            return
        self._target.text += text
        if self._target.kind == "reply":
            # the whole text, not the piece: the row may have been re-read from the store
            # (a Find jump and back) with only the last save's text
            self.model.update_last(text=self._target.text)
        else:
            self.impersonation.emit(text)

    def _save_partial(self) -> None:
        if self._target is not None and self._target.kind == "reply":
            self._write_reply(None)

    def _write_reply(self, status: str | None, info: dict | None = None) -> None:
        try:
            self.ctx.store.messages.update(self._target.message_id, self._target.text, status, info)
        except StoreError as exc:
            self.error.emit(str(exc))

    def _finish(self, status: str, info: dict | None) -> None:
        self._save_timer.stop()
        target = self._target
        if target.kind == "reply":
            self._write_reply(status, info)
            # the bubble shows what the store holds, a failure's cause included
            self.model.update_last(status=status, **({"gen_info": info} if info else {}))
        else:
            self.impersonation_finished.emit(target.text.strip())
        self._target = None
        self.busy_changed.emit(False)

    def _on_finished(self, stats: StreamStats | None) -> None:
        if self._target is None:
            return
        stats = stats or StreamStats()
        sampler = {k: v for k, v in asdict(self._sampling).items() if k != "stop"}
        log.info(
            "reply %s: %d tokens, %.1f tok/s, first token after %.2f s, prompt %d tokens "
            "(%d reused, %d shifted%s), seed %s, finish %s, text %s",
            "stopped" if stats.stopped else "complete",
            stats.tokens,
            stats.tokens_per_s,
            stats.ttft_s,
            stats.prompt_tokens,
            stats.reused_tokens,
            stats.shifted_tokens,
            f"; full read: {stats.full_read_reason}" if stats.full_read_reason else "",
            stats.seed,
            stats.finish_reason or "-",
            text_for_log(self._target.text, self.ctx.settings.log_text),
        )
        extra = self._clean_reply()
        self._finish(
            "stopped" if stats.stopped else "complete",
            {
                "model": self.info.name if self.info else "",
                "seed": stats.seed,
                "sampler": sampler,
                "tokens": stats.tokens,
                "tokens_per_s": round(stats.tokens_per_s, 2),
                **extra,
            },
        )
        self.reply_finished.emit(stats)

    def _clean_reply(self) -> dict:
        """SillyTavern's clean-up on the finished reply; the raw text stays in its info."""
        job = getattr(self, "_job", None)
        if self._target.kind != "reply" or job is None:
            return {}
        cleaned = job.clean(self._target.text)
        if not cleaned.changed:
            return {}
        self._target.text = cleaned.text
        self.model.update_last(text=cleaned.text)
        return {"raw_text": cleaned.raw}

    def _on_failed(self, message: str, crashed: bool) -> None:
        log.error(
            "reply %s: %s",
            "interrupted, the engine process crashed" if crashed else "failed",
            message,
        )
        retry = not crashed and self._target is not None and self._target.kind == "reply"
        if self._target is not None:
            self._finish("interrupted" if crashed else "error", {"error": message})
        if crashed:
            self.set_model(None)
        if retry:  # the failed reply stays, marked; regenerating writes a new one beside it
            message += "\n\nRetry in the reply (or Regenerate, Ctrl+Return) tries it again."
        self.error.emit(message)
