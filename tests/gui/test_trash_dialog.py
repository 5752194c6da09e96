"""The trash dialog in the real window over a real store: opened from the File menu, restore
(seen back in the chat manager), delete forever and empty the trash through their questions,
the removal on a pool thread, the removal an exit cut short finished when the window opens,
and store errors that say so and change nothing."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.core.appdata.paths import default_paths
from app.core.chat.context import AppContext
from app.core.store import Store, StoreError
from app.core.store import purge as purging
from tests.core.store.store_helpers import append_chain

LONG = 1500  # past SQLite's cascade depth: only the stepwise purge removes it


def _chat(store: Store, character: int, title: str, lines: int = 2) -> int:
    chat = store.chats.new(character, ["Hello."], title=title)
    append_chain(store, chat, store.messages.active_leaf(chat), lines, title.lower())
    return chat


def _menu_action(window, text: str):
    for menu in window.menuBar().actions():
        for action in menu.menu().actions():
            if action.text().replace("&", "") == text:
                return action
    raise AssertionError(f"no menu action {text!r}")


def _open_trash(window):
    _menu_action(window, "Trash…").trigger()
    dialog = window.trash.dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def _rows(dialog) -> list[list[str]]:
    tree = dialog.list
    return [
        [tree.topLevelItem(i).text(c) for c in range(4)][:3]
        for i in range(tree.topLevelItemCount())
    ]


def _walk_in_the_trash(make_window):
    """A window whose trash holds one chat of the current character; and the trash open."""
    window = make_window()
    store = window.ctx.store
    walk = _chat(store, window.library.current_id(), "Harbour walk")
    store.chats.delete(walk)
    return window, store, walk, _open_trash(window)


def _answer_delete(box: QMessageBox) -> None:
    (button,) = [b for b in box.buttons() if box.buttonRole(b) == QMessageBox.DestructiveRole]
    button.click()


@pytest.fixture
def purge_threads(monkeypatch) -> set[int]:
    """The threads that ran a purge step (the real one runs after the note is taken)."""
    seen: set[int] = set()
    real = purging.purge_step

    def step(c, limit=purging.BATCH):
        seen.add(threading.get_ident())
        return real(c, limit)

    monkeypatch.setattr(purging, "purge_step", step)
    return seen


def test_an_empty_trash_says_so(make_window):
    window = make_window()
    dialog = _open_trash(window)
    assert dialog.pages.currentWidget() is dialog.empty_label
    assert dialog.empty_label.text() == "The trash is empty."
    assert not dialog.restore_button.isEnabled() and not dialog.empty_button.isEnabled()
    assert not dialog.busy_bar.isVisible()


def test_a_restored_chat_is_back_in_the_chat_manager(qtbot, make_window):
    window = make_window()
    store = window.ctx.store
    wren = window.library.current_id()
    walk = _chat(store, wren, "Harbour walk", lines=4)
    chats = window.chats.show_chats()
    chats.reload()
    chats.delete(walk)  # the chat manager's own Delete: to the trash, with Undo
    assert walk not in chats.chat_ids()
    dialog = _open_trash(window)
    assert _rows(dialog) == [["Harbour walk", "Chat with Wren", "5 messages"]]
    assert dialog.select(walk)
    qtbot.mouseClick(dialog.restore_button, Qt.MouseButton.LeftButton)
    assert walk in chats.chat_ids()  # the open chat manager shows it again
    assert walk in [window.header.chats.itemData(i) for i in range(window.header.chats.count())]
    assert dialog.pages.currentWidget() is dialog.empty_label
    assert "is back" in dialog.status.text()


def test_restoring_a_chat_of_a_deleted_character_brings_the_character_back(make_window):
    window = make_window()
    store = window.ctx.store
    mira = store.characters.add({"name": "Mira", "first_mes": "Hi."})
    kept, trashed = _chat(store, mira, "Kept"), _chat(store, mira, "Trashed")
    store.chats.delete(trashed)
    window.library.reload()
    window.library.delete(mira)
    dialog = _open_trash(window)
    assert _rows(dialog) == [
        ["Mira", "Character", "1 chat"],
        ["Trashed", "Chat with Mira", "3 messages"],
    ]
    assert dialog.list.topLevelItem(0).font(0).bold()
    dialog.select(trashed)
    assert dialog.restore_selected()
    assert dialog.status.text() == "“Trashed” is back, and Mira with it."
    assert mira in window.library.ids()
    assert {c.id for c in store.chats.of_character(mira)} == {kept, trashed}


def test_delete_forever_asks_and_removes_a_character_with_its_chats_off_the_gui_thread(
    qtbot, make_window, purge_threads
):
    window = make_window()
    store = window.ctx.store
    mira = store.characters.add({"name": "Mira", "first_mes": "Hi."})
    chats = [_chat(store, mira, f"Chat {i}") for i in range(2)]
    lone = _chat(store, mira, "Lone")  # in the trash on its own row; it goes with Mira
    store.chats.delete(lone)
    chats.append(lone)
    walk = _chat(store, window.library.current_id(), "Harbour walk")
    store.chats.delete(walk)
    window.library.reload()
    window.library.delete(mira)
    dialog = _open_trash(window)
    assert dialog.select(mira, is_character=True)
    box = dialog.ask_delete_selected()
    assert box.text() == "Delete “Mira” and its 3 chats for good?"
    assert "cannot be undone" in box.informativeText()
    assert not window.library.undo_bar.isHidden()  # the library's Undo offer, still up
    with qtbot.waitSignal(window.trash.removed, timeout=10000) as removed:
        _answer_delete(box)
        assert [i.name for i in dialog.items()] == ["Harbour walk"]  # gone from the list at once
        assert dialog.busy_bar.isVisible() and "Deleting for good" in dialog.busy_label.text()
    assert removed.args == [1]
    assert window.library.undo_bar.isHidden()  # its Undo could only fail now
    for chat in chats:
        with pytest.raises(StoreError):
            store.chats.info(chat)
    with pytest.raises(StoreError):
        store.characters.card(mira)
    assert purge_threads and threading.get_ident() not in purge_threads
    assert (
        not dialog.busy_bar.isVisible() and dialog.status.text() == "“Mira” was deleted for good."
    )


def test_emptying_the_trash_removes_a_long_chat_in_the_background(
    qtbot, make_window, purge_threads
):
    window = make_window()
    store = window.ctx.store
    wren = window.library.current_id()
    long_chat, short = _chat(store, wren, "Long", lines=LONG), _chat(store, wren, "Short")
    kept = _chat(store, wren, "Kept")
    for chat in (long_chat, short):
        store.chats.delete(chat)
    dialog = _open_trash(window)
    box = dialog.ask_empty()
    assert box.text() == "Delete all 2 items in the trash for good?"
    progress: list[int] = []
    window.trash.progress.connect(progress.append)
    with qtbot.waitSignal(window.trash.removed, timeout=30000) as removed:
        _answer_delete(box)
        assert dialog.pages.currentWidget() is dialog.empty_label
        assert dialog.busy_bar.isVisible()  # the result comes as a queued signal
    assert removed.args == [2]
    assert progress and progress == sorted(progress)  # messages removed so far, throttled
    assert threading.get_ident() not in purge_threads
    assert (
        store._query("SELECT count(*) FROM messages WHERE chat_id IN (?, ?)", (long_chat, short))[
            0
        ][0]
        == 0
    )
    assert kept in [c.id for c in store.chats.of_character(wren)]
    assert not store.chats.removal_pending()


def test_cancel_deletes_nothing(make_window):
    window, store, walk, dialog = _walk_in_the_trash(make_window)
    box = dialog.ask_empty()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert not window.trash.busy
    assert [r.id for r in store.chats.trash()] == [walk]


def test_a_removal_an_exit_cut_short_is_finished_when_the_window_opens(qtbot, make_window):
    ctx = AppContext.create()  # the last run: it recorded the removal, then ended
    store = ctx.store
    mira = store.characters.add({"name": "Mira", "first_mes": "Hi."})
    going, staying = _chat(store, mira, "Going", lines=LONG), _chat(store, mira, "Staying")
    store.chats.delete(going)
    store.chats.delete(staying)
    store.chats.delete_forever(chats=[going])
    ctx.close()
    window = make_window()
    qtbot.waitUntil(lambda: not window.trash.busy, timeout=30000)
    store = window.ctx.store
    assert not store.chats.removal_pending()
    with pytest.raises(StoreError):
        store.chats.info(going)
    assert [r.id for r in store.chats.trash()] == [staying]  # not asked for: it stays


def test_closing_the_window_during_a_removal_is_safe_and_the_next_one_finishes_it(
    qtbot, make_window
):
    window = make_window()
    store = window.ctx.store
    going = _chat(store, window.library.current_id(), "Going", lines=3 * LONG)
    store.chats.delete(going)
    _open_trash(window).empty()
    assert window.trash.busy
    window.close()  # stops the removal between two batches (or after it ended)
    assert not window.trash.busy
    again = make_window()
    qtbot.waitUntil(lambda: not again.trash.busy, timeout=30000)
    assert not again.ctx.store.chats.removal_pending()
    with pytest.raises(StoreError):
        again.ctx.store.chats.info(going)


def test_a_restore_refused_by_the_store_says_why_and_changes_nothing(make_window):
    window, store, walk, dialog = _walk_in_the_trash(make_window)
    store.chats.delete_forever(chats=[walk])  # meanwhile, as from another window
    assert not dialog.restore_selected()
    assert "being deleted for good" in dialog.last_box.text()
    assert "being deleted for good" in dialog.status.text()
    assert dialog.pages.currentWidget() is dialog.empty_label  # the list shows the truth


def test_a_locked_database_keeps_the_trash_as_it_was(make_window):
    window, store, walk, dialog = _walk_in_the_trash(make_window)
    store._conn.execute("PRAGMA busy_timeout = 200")
    other = sqlite3.connect(default_paths().database, timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    try:
        assert not dialog.empty()
    finally:
        other.rollback()
        other.close()
    assert "locked" in dialog.last_box.text()
    assert dialog.last_box.informativeText() == "Nothing was changed."
    assert [i.entry.id for i in dialog.items()] == [walk]
    assert not window.trash.busy and not store.chats.removal_pending()
    assert len(store.messages.active_path(walk)) == 3


def test_an_undo_offer_of_a_chat_deleted_for_good_since_says_so_and_the_rest_undo(
    qtbot, make_window
):
    """The chat manager keeps an Undo for each delete; one deleted for good in the trash
    meanwhile cannot come back, and the offers before it still work."""
    window = make_window()
    store = window.ctx.store
    wren = window.library.current_id()
    first, gone, last = (_chat(store, wren, t) for t in ("First", "Gone", "Last"))
    chats = window.chats.show_chats()
    chats.reload()
    chats.delete(first)
    chats.delete(gone)
    dialog = _open_trash(window)
    assert dialog.select(gone)
    with qtbot.waitSignal(window.trash.removed, timeout=10000):
        _answer_delete(dialog.ask_delete_selected())
    chats.delete(last)
    assert chats.undo_delete() == last
    assert chats.undo_delete() is None  # "Gone": deleted for good
    assert chats.status.text() == "“Gone” cannot come back: it was deleted for good"
    assert chats.undo_delete() == first
    assert {first, last} <= set(chats.chat_ids()) and gone not in chats.chat_ids()


def test_an_undo_offer_of_a_character_deleted_for_good_since_says_so(qtbot, make_window):
    window = make_window()
    store, library = window.ctx.store, window.library
    ada, bo = (store.characters.add({"name": n, "first_mes": "Hi."}) for n in ("Ada", "Bo"))
    library.reload()
    library.delete(ada)
    library.delete(bo)
    dialog = _open_trash(window)
    assert dialog.select(bo, is_character=True)
    with qtbot.waitSignal(window.trash.removed, timeout=10000):
        _answer_delete(dialog.ask_delete_selected())
    said: list[str] = []
    library.status_message.connect(said.append)
    assert library.undo_delete() is None
    assert said == ["“Bo” cannot come back: it was deleted for good"]
    assert library.undo_delete() == ada and ada in library.ids()
