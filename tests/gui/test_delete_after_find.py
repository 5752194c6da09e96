"""Deleting a message a Find jump showed, far up a long chat: the Undo bar's count comes from
the path the Find listed, with no walk of the messages below it on the GUI thread."""

from __future__ import annotations

from app.core.chat.context import AppContext
from app.core.chat.default_character import ensure_default_character

LINES = 1500


def _long_chat() -> None:
    ctx = AppContext.create()
    char = ensure_default_character(ctx.store)
    chat = ctx.store.chats.new(char, ["Welcome."])
    parent = ctx.store.messages.active_leaf(chat)
    with ctx.store._tx() as c:  # one commit for the lot
        for i in range(LINES):
            parent = c.execute(
                "INSERT INTO messages (chat_id, parent_id, role, text, created_at)"
                " VALUES (?, ?, ?, ?, 0)",
                (chat, parent, ("user", "assistant")[i % 2], f"message number {i}"),
            ).lastrowid
        c.execute("UPDATE chats SET active_leaf_id = ? WHERE id = ?", (parent, chat))
    ctx.close()


def _vm_steps(store, call) -> tuple[int, object]:
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    store._conn.set_progress_handler(step, 1)
    try:
        result = call()
    finally:
        store._conn.set_progress_handler(None, 1)
    return steps, result


def test_deleting_a_message_a_find_jump_showed_counts_without_walking_the_chat(qtbot, make_window):
    _long_chat()
    window = make_window()
    store, model, ops = window.ctx.store, window.chat_model, window.message_ops
    window.find_action.trigger()
    window.find_bar.field.setText("message number 12")
    with qtbot.waitSignal(window.find_bar.searched):  # the store is searched off the GUI thread
        window.find_bar.find(-1)
    while window.find_bar.find(-1) is not None:  # back to the oldest hit
        pass
    shown = window.chat_view.currentIndex().data()
    assert shown == "message number 12" and model.has_later()  # a page far up the chat
    target = model.message_at(window.chat_view.currentIndex().row()).id

    # a walk from the leaf up to it would read the 1,488 messages between
    walk, _ = _vm_steps(store, lambda: store.messages.steps_to(window.controller.chat_id, target))
    steps, hidden = _vm_steps(store, lambda: ops.delete(target))
    assert hidden == LINES - 12
    assert steps < walk / 2, (steps, walk)
    assert ops.undo_bar.isVisible()
    ops.undo()
    assert len(model.messages()) == LINES + 1
    ops.delete(target)
    ops.expire()
    texts = [m.text for m in store.messages.active_path(window.controller.chat_id)]
    assert texts == ["Welcome."] + [f"message number {i}" for i in range(12)]
    qtbot.waitUntil(lambda: not window.controller.purger.busy, timeout=60000)
