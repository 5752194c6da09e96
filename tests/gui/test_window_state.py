"""The window comes back as it was left: size, splitter, character and chat, dialog sizes."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication


def test_geometry_splitter_and_the_open_chat_come_back(qtbot, make_window):
    window = make_window()
    other = window.ctx.store.characters.add({"name": "Other", "first_mes": "Hi."})
    window.library.reload()
    window.library.select(other)
    first_chat = window.controller.chat_id
    window.new_chat_action.trigger()  # a second chat with Other...
    window.header.chat_selected.emit(first_chat)  # ...but the first one is open at the end
    window.resize(760, 560)
    splitter = window.centralWidget()
    splitter.setSizes([300, 460, 0])
    QApplication.processEvents()
    sizes = splitter.sizes()
    window.close()
    again = make_window()
    QApplication.processEvents()
    # (the offscreen screen is 800 px wide: a wider window is not restored wider)
    assert (again.width(), again.height()) == (max(760, again.minimumSizeHint().width()), 560)
    assert again.centralWidget().sizes() == sizes
    assert again.library.current_id() == other
    assert again.controller.chat_id == first_chat


def test_a_deleted_last_chat_falls_back_to_the_newest(qtbot, make_window):
    window = make_window()
    chat = window.controller.chat_id
    window.new_chat_action.trigger()
    newest = window.controller.chat_id
    window.header.chat_selected.emit(chat)
    window.close()
    window.ctx.store.chats.delete(chat)
    again = make_window()
    assert again.controller.chat_id == newest


def test_dialogs_keep_their_size(qtbot, make_window):
    window = make_window()
    dialog = window.show_settings()
    dialog.resize(760, 540)
    dialog.close()
    window.close()
    again = make_window()
    dialog = again.show_settings()
    assert (dialog.width(), dialog.height()) == (760, 540)


def test_the_window_fits_800_by_600(qtbot, make_window):
    window = make_window()
    hint = window.minimumSizeHint()
    assert hint.width() <= 800 and hint.height() <= 600
    window.resize(800, 600)
    QApplication.processEvents()
    assert window.library.width() >= 150 and window.chat_view.width() >= 400


def test_the_library_view_comes_back(qtbot, make_window):
    from app.gui.characters.library_view import SortKey, ViewMode

    window = make_window()
    window.library.controls.set_mode(ViewMode.GRID)
    window.library.controls.set_sort_key(SortKey.RECENT)
    window.close()
    again = make_window()
    assert again.library.controls.mode() == ViewMode.GRID
    assert again.library.controls.sort_key() == SortKey.RECENT
    assert again.library.view.itemDelegate() is again.library.grid_delegate
