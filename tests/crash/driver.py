"""A workload process for the kill tests: it writes through the real AppContext and Store.

Run as `python -m tests.crash.driver HOME`. It imports everything once, then for each
`run MODE CYCLE` line on stdin forks a worker (cheap: 200 cycles fit in seconds) and answers
`pid N`; `wait N` reaps it. The worker opens AppContext as the app does (so it also does the
start-up recovery), then writes forever until the test SIGKILLs it. After each commit it
appends an acknowledgement line to `acks-CYCLE.jsonl`; a process kill never loses a write()
already made, so every acknowledged item must be found again after the restart.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from app.core.appdata.paths import Paths
from app.core.cards import card_from_bytes, card_to_png_bytes, new_card, placeholder_png
from app.core.chat.context import AppContext

CHAIN = 25  # messages in the chat tree that the delete workload removes


def home_paths(home: Path) -> Paths:
    return Paths(home / "data", home / "config", home / "cache", home / "logs")


class Acks:
    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def __call__(self, kind: str, **fields) -> None:
        os.write(self.fd, (json.dumps({"kind": kind, **fields}) + "\n").encode())


def chat_workload(ctx: AppContext, ack: Acks, cycle: int) -> None:
    """A user message, then a reply streamed token by token and saved every few tokens."""
    store = ctx.store
    cid = store.characters.add({"name": f"C{cycle}"})
    chat = store.chats.new(cid, ["greeting"])
    ack("chat", chat=chat)
    for turn in range(10_000):
        text = f"user {cycle}.{turn}"
        uid = store.messages.append(chat, store.messages.active_leaf(chat), "user", text)
        ack("message", id=uid, text=text)
        rid = store.messages.append(chat, uid, "assistant", "", status="streaming")
        ack("reply", id=rid)
        reply = ""
        for token in range(30):
            reply += f"t{token} "
            if token % 5 == 4:
                store.messages.update(rid, reply)
                ack("partial", id=rid, text=reply)
        store.messages.update(rid, reply, "complete", {"tokens": 30})
        ack("complete", id=rid, text=reply)


def card_workload(ctx: AppContext, ack: Acks, cycle: int) -> None:
    """Import cards as the library does: parse a PNG card, then one insert."""
    for n in range(10_000):
        card = new_card(f"Card {cycle}.{n}")
        card.description = "x" * 2000
        png = card_to_png_bytes(card, placeholder_png(card))
        loaded = card_from_bytes(png, f"card-{n}.png")
        cid = ctx.store.characters.add(loaded.data, loaded.avatar)
        ack("card", id=cid, name=loaded.name)


def delete_workload(ctx: AppContext, ack: Acks, cycle: int) -> None:
    """Build a chat tree, then delete it from its root (one cascading delete)."""
    store = ctx.store
    cid = store.characters.add({"name": f"D{cycle}"})
    for _ in range(10_000):
        chat = store.chats.new(cid, ["root"])
        ids = [store.messages.active_leaf(chat)]
        for i in range(CHAIN - 1):
            ids.append(
                store.messages.append(chat, ids[-1], "user" if i % 2 else "assistant", f"node {i}")
            )
        ack("tree", chat=chat, ids=ids)
        store.messages.delete(ids[0])
        ack("deleted", chat=chat, ids=ids)


def settings_workload(ctx: AppContext, ack: Acks, cycle: int) -> None:
    """Save settings over and over, each save a new counter value."""
    for n in range(1, 1_000_000):
        ctx.settings.max_tokens = n
        ctx.settings.extra = {"counter": n, "cycle": cycle, "padding": "p" * 3000}
        ctx.save_settings()
        ack("settings", counter=n, cycle=cycle)


WORKLOADS = {
    "chat": chat_workload,
    "card": card_workload,
    "delete": delete_workload,
    "settings": settings_workload,
}


def worker(home: Path, mode: str, cycle: int) -> None:
    ack = Acks(home / f"acks-{cycle}.jsonl")
    ctx = AppContext.create(home_paths(home))
    ack("started")
    WORKLOADS[mode](ctx, ack, cycle)


def serve(home: Path) -> None:
    for line in sys.stdin:
        command, *args = line.split()
        if command == "run":
            pid = os.fork()
            if pid == 0:
                try:
                    worker(home, args[0], int(args[1]))
                finally:
                    os._exit(0)
            print(f"pid {pid}", flush=True)
        elif command == "wait":
            _, status = os.waitpid(int(args[0]), 0)
            print(f"status {status}", flush=True)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
