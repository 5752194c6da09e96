"""A group chat's turns: who answers, the member's reply stored with its speaker, auto mode.

The GUI runs the same steps through its generation worker; `reply` runs them on the calling
thread with any `Engine`, for the command line and tests. A turn follows SillyTavern's
`generateGroupWrapper`: the activation strategy gives the speakers, each writes in turn with
the others' replies already in the history. Regenerate and continue keep the message's own
speaker (`activateSwipe`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from app.core.appdata.settings import Settings
from app.core.chat.groups.cards import group_greetings
from app.core.chat.groups.prompt import GroupPrompt, group_job, group_prompt_input
from app.core.chat.groups.speakers import (
    Candidate,
    LastMessage,
    plan_turn,
    talkativeness,
    turn_rng,
)
from app.core.chat.job import TokenCounter, greetings, sampling_from
from app.core.chat.macro_state import remember_variables
from app.core.chat.world_info import remember_lore_state
from app.core.engine import Engine
from app.core.prompt import MacroContext, expand_macros
from app.core.store import Message, Store
from app.core.store.groups import Group
from app.core.store.world_state import WorldInfoStore


class GroupChat:
    """One group chat over the store; every call reads the group afresh (members and cards
    may change between turns)."""

    def __init__(self, store: Store, chat_id: int, settings: Settings) -> None:
        if store.groups.group_of_chat(chat_id) is None:
            raise ValueError(f"chat {chat_id} is not a group chat")
        self.store, self.chat_id, self.settings = store, chat_id, settings
        self.counter = TokenCounter()

    @property
    def group(self) -> Group:
        return self.store.groups.of_chat(self.chat_id)

    def candidates(self) -> list[Candidate]:
        return [
            Candidate(
                m.character_id,
                m.name,
                talkativeness(self.store.characters.card(m.character_id)),
                m.muted,
            )
            for m in self.group.members
        ]

    def _newest(self) -> Message | None:
        """The active path's last message: one row, whatever the chat's length."""
        leaf = self.store.messages.active_leaf(self.chat_id)
        return self.store.messages.get(leaf) if leaf is not None else None

    def _last(self, m: Message | None) -> LastMessage | None:
        if m is None:
            return None
        names = self.store.groups.speaker_names({m.speaker_id} if m.speaker_id else set())
        name = names.get(m.speaker_id) if m.speaker_id is not None else None
        return LastMessage(m.text, m.role == "user", name, hidden=m.role == "system")

    def plan(self, user_input: str | None = None, *, auto: bool = False) -> list[int]:
        """The members who answer the chat as it stands, in order. When the user has just
        sent `user_input`, it is the activating text (SillyTavern's `isUserInput`)."""
        newest = self._newest()
        group = self.group
        rng = turn_rng(WorldInfoStore(self.store).seed(self.chat_id), newest.id if newest else None)
        return plan_turn(
            group.settings.strategy,
            self.candidates(),
            self._last(newest),
            rng,
            allow_self_responses=group.settings.allow_self_responses,
            user_input=user_input,
            auto=auto,
        )

    def speaker_of(self, message_id: int) -> int | None:
        """Who regenerates or continues this message: its own speaker while a member
        (`activateSwipe`); None when that member has left the group."""
        msg = self.store.messages.get(message_id)
        members = {m.character_id for m in self.group.members}
        return msg.speaker_id if msg.speaker_id in members else None

    def prompt(
        self, speaker_id: int, history: list[Message] | None = None, continue_last: bool = False
    ) -> GroupPrompt:
        history = self.store.messages.active_path(self.chat_id) if history is None else history
        return group_prompt_input(
            self.store,
            self.settings,
            self.chat_id,
            speaker_id,
            history,
            continue_last=continue_last,
        )

    def send(self, text: str, user_name: str | None = None) -> int:
        leaf = self.store.messages.active_leaf(self.chat_id)
        return self.store.messages.append(
            self.chat_id,
            leaf,
            "user",
            text,
            gen_info={"name": user_name or self.settings.user_name},
        )

    def post_as(self, speaker_id: int, text: str, user_name: str | None = None) -> int:
        """The user writes a line in a member's name (SillyTavern's `/sendas`): stored
        under the active leaf as that member's, nothing generated, macros filled in for
        that member. Returns the message id; ValueError for an empty line or a non-member."""
        member = self.group.member(speaker_id)
        if member is None:
            raise ValueError(f"character {speaker_id} is not a member of {self.group.name}")
        text = text.strip()
        if not text:
            raise ValueError("Write the line first, then send it as a member.")
        ctx = MacroContext(char=member.name, user=user_name or self.settings.user_name)
        return self.store.groups.append_reply(
            self.chat_id,
            self.store.messages.active_leaf(self.chat_id),
            speaker_id,
            expand_macros(text, ctx, "the line"),
            "complete",
            {"speaker": member.name, "written_by": "user"},
        )

    def reply(
        self,
        engine: Engine,
        speaker_id: int,
        cancel: threading.Event | None = None,
        *,
        regenerate_of: int | None = None,
    ) -> int:
        """Write `speaker_id`'s reply to the active path (or a new swipe of `regenerate_of`)
        and store it with its speaker; returns the message id."""
        cancel = cancel or threading.Event()
        model = engine.info
        if model is None:
            raise RuntimeError("load a model before asking a member to reply")
        path = self.store.messages.active_path(self.chat_id)
        if regenerate_of is not None:
            ids = [m.id for m in path]
            path = path[: ids.index(regenerate_of)]
        parent = path[-1].id if path else None
        prompt = self.prompt(speaker_id, path)
        job = group_job(prompt, model, self.settings, self.counter)
        built = job(engine.count_tokens)
        # world info's sticky/cooldown state goes on with this branch, as in the window
        remember_lore_state(WorldInfoStore(self.store), prompt.path_ids, built)
        remember_variables(self.store, self.chat_id, built)  # {{setvar}}: once it is sent
        mid = self.store.groups.append_reply(self.chat_id, parent, speaker_id)
        sampling = sampling_from(self.settings, built.stop)
        text = "".join(engine.stream(built.text, sampling, cancel))
        stats = engine.last_stats
        cleaned = job.clean(text)
        info = {
            "speaker": prompt.speaker.name,
            "model": model.name,
            **({"raw_text": cleaned.raw} if cleaned.changed else {}),
        }
        self.store.messages.update(
            mid, cleaned.text, "stopped" if stats and stats.stopped else "complete", info
        )
        return mid


def start_group_chat(store: Store, group_id: int, user_name: str, title: str = "") -> int:
    """A new chat of the group opening with each member's greeting in turn, as SillyTavern's
    `getGroupChat` starts one (muted members greet too; a member without a greeting says
    nothing). A member's greetings are its group-only ones when it has any, else its first
    message and alternate greetings (`getFirstCharacterMessage` draws one of those at
    random); here the first is shown and the others are its swipes, as in a one-character
    chat. Macros are filled in for each member."""
    openers: list[tuple[int, str | list[str]]] = []
    for m in store.groups.get(group_id).members:
        card = store.characters.card(m.character_id)
        texts = group_greetings(card)
        if texts:
            own = {**card, "first_mes": texts[0], "alternate_greetings": texts[1:]}
            openers.append((m.character_id, greetings(own, user_name)))
    return store.groups.new_chat(group_id, openers, title)


@dataclass
class AutoMode:
    """Members answer one another for up to `turns` replies, until stopped or the user
    types (SillyTavern's auto-mode worker, counted instead of timed)."""

    turns: int
    done: int = 0
    stop_event: threading.Event = field(default_factory=threading.Event)

    @property
    def running(self) -> bool:
        return self.done < self.turns and not self.stop_event.is_set()

    def stop(self) -> None:
        self.stop_event.set()

    def count(self) -> None:
        self.done += 1


def run_auto(chat: GroupChat, engine: Engine, auto: AutoMode) -> list[int]:
    """Replies until `auto` ends; each turn's speakers from the strategy (auto: the last
    message activates). Manual mode has nobody to draw, so it ends at once."""
    written: list[int] = []
    while auto.running:
        speakers = chat.plan(auto=True)
        if not speakers:
            break
        for speaker in speakers:
            if not auto.running:
                break
            written.append(chat.reply(engine, speaker, auto.stop_event))
            auto.count()
    return written
