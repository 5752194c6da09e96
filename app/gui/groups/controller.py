"""The chat controller for group chats as well: who speaks, a queue of speakers, auto mode.

For a one-character chat it is the plain `ChatController`. In a group chat each reply is
written by one member: the activation strategy (app.core.chat.groups) gives the members who
answer the user's message, in order, and each writes in turn; regenerate and continue ask the
message's own speaker; "let speak" makes one member answer now. Auto mode keeps the members
answering one another for N replies, until Stop or until the user types.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal

from app.core.chat.groups.conversation import GroupChat, start_group_chat
from app.core.chat.groups.prompt import GroupPromptJob, group_prompt_input, group_speaker
from app.core.chat.job import PromptIds, PromptJob, earlier_of, prompt_input, sent_ids
from app.core.prompt import PromptInput
from app.core.store import StoreError
from app.core.store.reader import read_tail
from app.gui.chat.controller import ChatController, _Target


class GroupChatController(ChatController):
    group_changed = Signal()  # the open chat's group, its members or the next speaker
    auto_changed = Signal(bool)  # auto mode on or off

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.group_chat: GroupChat | None = None
        self._speaker: int | None = None
        self._queue: list[int] = []
        self._auto_left = 0
        self._member_stops: list[str] = []  # the speaking member's prompt's stop strings
        self.reply_finished.connect(lambda _stats: QTimer.singleShot(0, self._continue_turn))
        self.error.connect(lambda _msg: self._end_turn())

    # --- which chat -------------------------------------------------------------------
    def open_chat(self, chat_id: int) -> None:
        self._end_turn()
        group_id = self.ctx.store.groups.group_of_chat(chat_id)
        self.group_chat = (
            GroupChat(self.ctx.store, chat_id, self.ctx.settings) if group_id is not None else None
        )
        super().open_chat(chat_id)
        self.group_changed.emit()

    def new_group_chat(self, group_id: int) -> int:
        """A new chat of the group, opening with each member's group greeting in turn."""
        default = self.ctx.store.personas.default()
        user = default.name if default else self.ctx.settings.user_name
        return start_group_chat(self.ctx.store, group_id, user)

    def reload(self) -> None:
        super().reload()
        names = {}
        if self.group_chat is not None:
            names = {m.character_id: m.name for m in self.group_chat.group.members}
            path = self.model.loaded()  # the pages shown, not the whole path
            names = {
                **self.ctx.store.groups.speaker_names({m.speaker_id for m in path if m.speaker_id}),
                **names,
            }
        self.model.speakers = names

    @property
    def is_group(self) -> bool:
        return self.group_chat is not None

    def next_speaker(self) -> int | None:
        """Who the strategy would have answer the chat as it stands (None: nobody)."""
        if self.group_chat is None:
            return None
        order = self.group_chat.plan(auto=True)
        return order[0] if order else None

    # --- actions ----------------------------------------------------------------------
    def send(self, text: str) -> bool:
        if self.group_chat is None:
            return super().send(text)
        self.stop_auto()  # the user typed: auto mode ends
        if not self._ready():
            return False

        def act():
            user_id = self._commit_user_message(text)
            self._queue = self.group_chat.plan(user_input=text)
            self._start_next(user_id)

        return self._guarded(act)

    def let_speak(self, character_id: int, text: str = "") -> bool:
        """This member writes the next reply now, in any mode (SillyTavern's "force talk":
        `Generate('normal', {force_chid})`, which sends what the user typed first)."""
        if self.group_chat is None:
            return False
        self.stop_auto()
        if not self._ready():
            return False
        if self.group_chat.group.member(character_id) is None:
            self.error.emit(self.tr("That character is no longer in the group."))
            return False

        def act():
            parent = (
                self._commit_user_message(text)
                if text.strip()
                else self.ctx.store.messages.active_leaf(self.chat_id)
            )
            self._queue = [character_id]
            self._start_next(parent)

        return self._guarded(act)

    def speak_as(self, character_id: int, text: str) -> bool:
        """Post the user's line as this member's (SillyTavern's `/sendas`); nobody answers
        until asked. False, with the reason said, when it cannot be posted."""
        if self.group_chat is None or self.busy or self.chat_id is None:
            return False
        if not self.commit_delete():
            return False
        try:
            self.group_chat.post_as(character_id, text, self._user_name())
        except (StoreError, ValueError) as exc:
            self.error.emit(str(exc))
            return False
        self.reload()
        self.group_changed.emit()
        return True

    def regenerate(self) -> bool:
        if self.group_chat is not None and not self._choose_for_last():
            return False
        return super().regenerate()

    def continue_reply(self) -> bool:
        if self.group_chat is not None and not self._choose_for_last():
            return False
        return super().continue_reply()

    def _choose_for_last(self) -> bool:
        """The last reply's own speaker (SillyTavern's `activateSwipe`); after a user
        message, the strategy's first pick."""
        last = self._last()
        if last is not None and last.role == "assistant" and last.parent_id is not None:
            speaker = self.group_chat.speaker_of(last.id)
            if speaker is None:
                self.error.emit(
                    self.tr(
                        "The member who wrote this reply has left the group; "
                        "add them back to get another reply from them."
                    )
                )
                return False
            self._speaker = speaker
            return True
        order = self.group_chat.plan()
        self._speaker = order[0] if order else self._speaker
        return self._speaker is not None

    # --- auto mode --------------------------------------------------------------------
    def start_auto(self, turns: int) -> bool:
        if self.group_chat is None or turns <= 0 or self.busy:
            return False
        self._auto_left = turns
        self.auto_changed.emit(True)
        self._continue_turn()
        return True

    def stop_auto(self) -> None:
        """Auto mode ends; the members still queued in its turn do not speak either (the
        reply being written finishes)."""
        if self._auto_left:
            self._auto_left = 0
            self._queue = []
            self.auto_changed.emit(False)

    @property
    def turn_pending(self) -> bool:
        """Members are still to answer in this turn (or auto mode goes on)."""
        return bool(self._queue) or self.auto_running

    @property
    def auto_running(self) -> bool:
        return self._auto_left > 0

    def stop(self) -> None:
        """Stop ends the reply, the rest of the turn and auto mode at once."""
        self._queue = []
        self.stop_auto()
        super().stop()

    def _end_turn(self) -> None:
        self._queue = []
        self.stop_auto()

    def _continue_turn(self) -> None:
        """After a reply: the next member of the turn, else the next auto-mode turn."""
        if self.group_chat is None or self.busy:
            return
        if not self._queue and self.auto_running:
            self._queue = self.group_chat.plan(auto=True)
            if not self._queue:
                self.stop_auto()
        if not self._queue:
            self.group_changed.emit()
            return
        if self.auto_running:
            self._auto_left -= 1
            if not self._auto_left:  # the last auto reply: the rest of its turn is dropped
                self._queue = self._queue[:1]
                self.auto_changed.emit(False)
        if self._ready():
            self._guarded(
                lambda: self._start_next(self.ctx.store.messages.active_leaf(self.chat_id))
            )

    def _start_next(self, parent_id: int) -> None:
        self._speaker = self._queue.pop(0) if self._queue else None
        self.group_changed.emit()
        if self._speaker is not None:
            self._new_reply(parent_id)

    # --- generation -------------------------------------------------------------------
    def _input(self, *, leaf, instruction=None, continue_last=False):
        """As for one character: a stand-in now, the speaker's real input built by the job
        on the worker thread, which reads the path (`_group_reader_for`). Only the speaker's
        card and the members' stop strings are read here."""
        if self.group_chat is None:
            return super()._input(leaf=leaf, instruction=instruction, continue_last=continue_last)
        speaker, self._member_stops = group_speaker(self.ctx.store, self.chat_id, self._speaker)
        self.card = speaker.card
        self._prepare = self._group_reader_for(leaf, instruction, continue_last)
        return prompt_input(self.card, self.ctx.settings, [], persona=self._persona())

    def _group_reader_for(self, leaf: int | None, instruction: str | None, continue_last: bool):
        """The group job's first step, on the worker thread (see `_reader_for`)."""
        store, settings = self.ctx.store, self.ctx.settings
        chat, speaker, reach = self.chat_id, self._speaker, self._history_reach()

        def prepare(_stand_in: PromptInput) -> PromptInput:
            tail = read_tail(store.path, chat, leaf, reach)
            prompt = group_prompt_input(
                store,
                settings,
                chat,
                speaker,
                tail.messages,
                instruction=instruction,
                continue_last=continue_last,
                earlier=earlier_of(tail),
            )
            self._lore_ids = prompt.path_ids
            self._prompt_ids = PromptIds(sent_ids(tail.messages), tail.sent_before)
            return prompt.inp

        return prepare

    def impersonate(self) -> bool:
        if self.group_chat is not None and self._speaker is None:
            self._speaker = self.next_speaker() or self.group_chat.group.members[0].character_id
        return super().impersonate()

    def _new_reply(self, parent_id: int) -> None:
        if self.group_chat is None:
            return super()._new_reply(parent_id)
        reply_id = self.ctx.store.groups.append_reply(self.chat_id, parent_id, self._speaker)
        self.reload()
        self._run(_Target("reply", reply_id), self._input(leaf=parent_id))

    def _job_for(self, inp) -> PromptJob:
        if self.group_chat is None:
            return super()._job_for(inp)
        # the speaker's job: its input is read by `prepare`, every other member's `\nName:` stops
        return GroupPromptJob(
            inp,
            self.info,
            self.ctx.settings,
            self.counter,
            prepare=self._prepare,
            member_stops=list(self._member_stops),
        )
