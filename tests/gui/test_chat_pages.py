"""The chat model's pages over a real store: whatever way the window moves (up from the end,
a jump to a Find hit, down again, a swipe that restores a branch), the rows it shows are the
active path's messages, in order, and a streamed reply never lands on a row it does not own."""

from __future__ import annotations

from app.gui.chat.model import PAGE, ChatModel


def _chat(store, n: int) -> int:
    char = store.characters.add({"name": "Mara", "first_mes": "Welcome."})
    chat = store.chats.new(char, ["Welcome."])
    parent = store.messages.active_leaf(chat)
    for i in range(n):
        parent = store.messages.append(chat, parent, ("user", "assistant")[i % 2], f"line {i}")
    return chat


def _model(store, chat: int) -> ChatModel:
    model = ChatModel()
    model.source = store.messages
    model.show_end(chat, store.messages.active_leaf(chat))
    return model


def _ids(model: ChatModel) -> list[int]:
    return [m.id for m in model.loaded()]


def test_pages_up_from_the_end_follow_the_path(store):
    chat = _chat(store, 3 * PAGE)
    path = [m.id for m in store.messages.active_path(chat)]
    model = _model(store, chat)
    assert _ids(model) == path[-PAGE:] and model.has_earlier() and not model.has_later()
    while model.load_earlier():
        pass
    assert _ids(model) == path and model.messages() == store.messages.active_path(chat)


def test_a_jump_shows_the_page_around_the_hit_and_pages_down_to_the_end(store):
    chat = _chat(store, 3 * PAGE)
    path = [m.id for m in store.messages.active_path(chat)]
    model = _model(store, chat)
    row = model.show_around(path, 5)
    assert model.message_at(row).id == path[5] and model.has_later()
    before = [m.text for m in model.loaded()]
    model.update_last(text="a streamed piece")  # the reply's row is not on this page
    assert [m.text for m in model.loaded()] == before
    while model.load_later():
        pass
    assert _ids(model) == path[: len(_ids(model))] and _ids(model)[-1] == path[-1]
    assert not model.has_later()


def test_below_a_swipe_the_restored_branch_pages_in(store):
    chat = _chat(store, 2 * PAGE)
    first = store.messages.active_path(chat)[3]  # a reply early in the chat
    store.messages.regenerate(first.id, "another take", "complete")
    # back to the first take: the long branch below it comes back
    leaf = store.messages.show_branch(chat, first.id)
    assert leaf == store.messages.active_path(chat)[-1].id
    below = store.messages.after(first.id, PAGE)
    assert [m.id for m in below] == [m.id for m in store.messages.active_path(chat)[4 : 4 + PAGE]]
    assert store.messages.placed([first.id])[0].sibling_count == 2
