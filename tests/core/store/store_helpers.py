"""What several store tests share: counting SQLite's work, and writing a long chain fast."""

from __future__ import annotations

from collections.abc import Callable

from app.core.store import Store


def vm_steps(store: Store, call: Callable[[], object]) -> int:
    """How many SQLite virtual-machine steps `call` takes on the store's connection."""
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    store._conn.set_progress_handler(step, 1)
    try:
        call()
    finally:
        store._conn.set_progress_handler(None, 1)
    return steps


def append_chain(
    store: Store,
    chat: int,
    parent: int,
    n: int,
    word: str = "line",
    row: Callable[[int], tuple[str, str]] | None = None,
) -> list[int]:
    """n messages below `parent`, user and assistant in turn (or `row(i)`'s role and text),
    in one commit; the last becomes the chat's active leaf. Their ids, oldest first."""
    ids = []
    row = row or (lambda i: ("user" if i % 2 == 0 else "assistant", f"{word} {i}"))
    with store._tx() as c:
        for i in range(n):
            parent = c.execute(
                "INSERT INTO messages (chat_id, parent_id, role, text, created_at)"
                " VALUES (?, ?, ?, ?, 0)",
                (chat, parent, *row(i)),
            ).lastrowid
            ids.append(parent)
        c.execute("UPDATE chats SET active_leaf_id = ? WHERE id = ?", (parent, chat))
    return ids
