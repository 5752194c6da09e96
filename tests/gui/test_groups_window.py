"""Group chats in the real window, with the real engine on the tiny model."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt

from app.core.store.groups import GroupSettings, Strategy
from app.core.store.path_pages import UNBOUNDED
from app.gui.chat.model import PAGE, Roles
from app.gui.groups.editor import GroupEditor
from tests.gui.conftest import load


def _group(window, strategy=Strategy.LIST):
    store = window.ctx.store
    ids = [
        store.characters.add({"name": n, "first_mes": f"{n} waves."}) for n in ("Ann", "Bob", "Cid")
    ]
    gid = store.groups.create("Inn", ids, GroupSettings(strategy=strategy, auto_mode_turns=3))
    window.groups.panel.refresh()
    window.groups.open_group(gid)
    return gid, ids


def _shown(window):
    model = window.chat_model
    return [
        (model.data(model.index(r), Roles.NAME), model.data(model.index(r), Roles.ROLE))
        for r in range(model.rowCount())
    ]


def _wait_idle(qtbot, window, replies: int):
    """Until `replies` assistant messages follow the last user message and all is quiet."""

    def done():
        msgs = window.chat_model.messages()
        users = [i for i, m in enumerate(msgs) if m.role == "user"]
        after = msgs[users[-1] + 1 :] if users else msgs
        return (
            not window.controller.busy
            and not window.controller.turn_pending
            and len(after) >= replies
            and all(m.status == "complete" for m in after)
        )

    qtbot.waitUntil(done, timeout=60000)


def test_a_group_chat_opens_with_every_greeting_under_its_speaker(qtbot, make_window):
    window = make_window()
    gid, ids = _group(window)
    assert _shown(window) == [("Ann", "assistant"), ("Bob", "assistant"), ("Cid", "assistant")]
    assert window.groups.bar.isVisible() and len(window.groups.bar.rows) == 3
    assert window.header.title.text() == "Inn"
    assert [
        window.groups.panel.model.item(r).text()
        for r in range(window.groups.panel.model.rowCount())
    ] == ["Inn"]
    # list order after Cid's greeting: Ann speaks next, and the bar says so
    assert window.groups.bar.rows[0].name.text() == "▶ Ann"


def test_swiping_a_members_greeting_keeps_the_others_greetings(qtbot, make_window):
    """A new group chat: each member's alternate greetings are swipes of its greeting, and
    the members after it greet under every swipe (group-chats.js `getGroupChat`)."""
    window = make_window()
    store = window.ctx.store
    ids = [
        store.characters.add({"name": "Ann", "first_mes": "Ann waves."}),
        store.characters.add(
            {"name": "Bob", "first_mes": "Bob nods.", "alternate_greetings": ["Bob sings."]}
        ),
        store.characters.add({"name": "Cid", "first_mes": "Cid yawns."}),
    ]
    gid = store.groups.create("Inn", ids)
    window.groups.panel.refresh()
    window.groups.open_group(gid)
    bob = window.chat_model.messages()[1]
    assert (bob.text, bob.sibling_count) == ("Bob nods.", 2)
    window.controller.swipe(bob.id, +1)
    shown = window.chat_model.messages()
    assert [(m.text, m.speaker_id) for m in shown] == [
        ("Ann waves.", ids[0]),
        ("Bob sings.", ids[1]),
        ("Cid yawns.", ids[2]),
    ]
    assert [n for n, _ in _shown(window)] == ["Ann", "Bob", "Cid"]


def test_list_mode_replies_in_order_and_regenerate_keeps_the_speaker(
    qtbot, make_window, tiny_llama_path
):
    window = make_window()
    load(qtbot, window, tiny_llama_path)
    gid, ids = _group(window)
    qtbot.keyClicks(window.composer, "Hello all")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    _wait_idle(qtbot, window, 3)
    assert [n for n, _ in _shown(window)[-3:]] == ["Ann", "Bob", "Cid"]
    assert [m.speaker_id for m in window.chat_model.messages()[-3:]] == ids
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        window.regenerate_action.trigger()
    last = window.chat_model.messages()[-1]
    assert last.speaker_id == ids[2] and last.sibling_count == 2


def test_mute_reorder_and_let_speak_from_the_member_bar(qtbot, make_window, tiny_llama_path):
    window = make_window()
    load(qtbot, window, tiny_llama_path)
    gid, ids = _group(window, Strategy.MANUAL)
    bar = window.groups.bar
    bar.rows[1].muted.setChecked(True)
    assert window.ctx.store.groups.get(gid).members[1].muted
    bar.rows[2].up.click()
    assert [m.name for m in window.ctx.store.groups.get(gid).members] == ["Ann", "Cid", "Bob"]
    qtbot.keyClicks(window.composer, "Anyone?")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    qtbot.wait(200)
    assert _shown(window)[-1][1] == "user" and not window.controller.busy  # nobody picked
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        bar.rows[1].speak.click()  # Cid, now second
    assert window.chat_model.messages()[-1].speaker_id == ids[2]


def test_speak_as_posts_the_typed_line_as_the_member_and_let_speak_sends_it_first(
    qtbot, make_window, tiny_llama_path
):
    """SillyTavern's `/sendas` (`sendMessageAs`: the text becomes a line of that character,
    macros filled in, nothing generated) and the member list's "speak" action
    (`Generate('normal', {force_chid})`: what is typed is sent as the user's message, then
    that member answers, whatever the activation strategy)."""
    window = make_window()
    load(qtbot, window, tiny_llama_path)
    gid, ids = _group(window, Strategy.MANUAL)
    bar = window.groups.bar
    before = len(window.chat_model.messages())
    errors = []
    window.controller.error.connect(errors.append)
    bar.rows[1].speak_as.click()  # nothing typed yet
    assert errors and "Type the line" in errors[-1]
    assert len(window.chat_model.messages()) == before  # nothing posted
    qtbot.keyClicks(window.composer, "Ahoy, {{user}}! I am {{char}}.")
    bar.rows[1].speak_as.click()
    user = window.controller._user_name()
    last = window.chat_model.messages()[-1]
    assert (last.role, last.speaker_id, last.text) == (
        "assistant",
        ids[1],
        f"Ahoy, {user}! I am Bob.",
    )
    assert _shown(window)[-1] == ("Bob", "assistant")
    assert window.composer.toPlainText() == "" and not window.controller.busy  # nobody answers
    qtbot.keyClicks(window.composer, "Cid, your turn.")
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        bar.rows[2].speak.click()
    asked, answer = window.chat_model.messages()[-2:]
    assert (asked.role, asked.text) == ("user", "Cid, your turn.")
    assert (answer.speaker_id, answer.parent_id) == (ids[2], asked.id)
    assert window.composer.toPlainText() == ""
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        bar.rows[0].speak.click()  # nothing typed: Ann answers Cid at once
    ann = window.chat_model.messages()[-1]
    assert (ann.speaker_id, ann.parent_id) == (ids[0], answer.id)
    store = window.ctx.store
    store.groups.remove_member(gid, ids[1])  # Bob leaves: his posted line stays his
    window.groups.refresh_open_chat()
    assert store.messages.get(last.id).speaker_id == ids[1]
    assert ("Bob", "assistant") in _shown(window)


def test_auto_mode_runs_its_replies_and_stop_ends_it(qtbot, make_window, tiny_llama_path):
    window = make_window()
    load(qtbot, window, tiny_llama_path)
    gid, ids = _group(window, Strategy.NATURAL)
    bar = window.groups.bar
    before = len(window.chat_model.messages())
    bar.auto_button.click()
    qtbot.waitUntil(
        lambda: (
            not window.controller.auto_running
            and not window.controller.busy
            and len(window.chat_model.messages()) == before + 3
        ),
        timeout=60000,
    )
    assert not bar.auto_button.isChecked()
    bar.turns.setValue(50)
    bar.auto_button.click()
    qtbot.waitUntil(lambda: window.controller.busy, timeout=10000)
    bar.stop_button.click()
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=30000)
    qtbot.wait(100)
    assert not window.controller.auto_running and not window.controller.busy
    assert len(window.chat_model.messages()) == before + 3 + 1  # only the one being written


def test_typing_ends_auto_mode(qtbot, make_window, tiny_llama_path):
    window = make_window()
    load(qtbot, window, tiny_llama_path)
    _group(window, Strategy.LIST)
    window.groups.bar.turns.setValue(50)
    window.groups.bar.auto_button.click()
    assert window.controller.auto_running
    qtbot.keyClicks(window.composer, "w")
    assert not window.controller.auto_running and not window.controller.turn_pending
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=60000)
    qtbot.wait(100)
    assert not window.controller.busy  # nobody else started


def test_the_editor_creates_and_edits_a_group(qtbot, make_window):
    window = make_window()
    store = window.ctx.store
    a = store.characters.add({"name": "Ann"})
    b = store.characters.add({"name": "Bob"})
    editor = GroupEditor(store)
    qtbot.addWidget(editor)
    editor.save()
    assert "at least one member" in editor.problem.text() and store.groups.all() == []
    for i in range(editor.members.count()):
        item = editor.members.item(i)
        if item.data(Qt.ItemDataRole.UserRole) in (a, b):
            item.setCheckState(Qt.CheckState.Checked)
    editor.name.setText("Pair")
    editor.strategy.setCurrentIndex(1)
    editor.save()
    group = store.groups.get(editor.group_id)
    assert (group.name, [m.name for m in group.members], group.settings.strategy) == (
        "Pair",
        ["Ann", "Bob"],
        Strategy.LIST,
    )
    again = GroupEditor(store, group.id)
    qtbot.addWidget(again)
    for i in range(again.members.count()):
        if again.members.item(i).data(Qt.ItemDataRole.UserRole) == a:
            again.members.item(i).setCheckState(Qt.CheckState.Unchecked)
    again.save()
    assert [m.name for m in store.groups.get(group.id).members] == ["Bob"]


def test_a_card_rename_shows_in_the_open_group_chat(qtbot, make_window):
    window = make_window()
    gid, ids = _group(window)
    window.ctx.store.characters.update(ids[1], {"name": "Robert"})
    window.library.characters_changed.emit()
    assert [n for n, _ in _shown(window)] == ["Ann", "Robert", "Cid"]


def test_export_and_import_from_the_group_list(qtbot, make_window, tmp_path):
    window = make_window()
    gid, ids = _group(window)
    panel = window.groups.panel
    panel.select(gid)
    files = panel.export_to(str(tmp_path / "st"))
    assert {f.parent.name for f in files} == {"groups", "group chats"}
    messages = []
    panel.status_message.connect(messages.append)
    new_gid = panel.import_file(str(files[0]))
    assert new_gid != gid and "Imported Inn with 1 chat(s)." in messages[-1]
    assert window.controller.group_chat.group.id == new_gid  # opened at once
    assert [n for n, _ in _shown(window)] == ["Ann", "Bob", "Cid"]
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert panel.import_file(str(bad)) is None and "not a SillyTavern group" in messages[-1]


def test_deleting_a_group_closes_its_chat_and_undo_restores_it(qtbot, make_window):
    window = make_window()
    gid, ids = _group(window)
    panel = window.groups.panel
    panel.select(gid)
    panel.delete_current()
    assert panel.model.rowCount() == 0 and window.controller.group_chat is None
    assert not panel.undo_button.isHidden()
    panel.undo_delete()
    assert panel.model.rowCount() == 1 and panel.undo_button.isHidden()


def test_each_reply_shows_its_speakers_own_portrait_or_initial(qtbot, make_window):
    window = make_window()
    wren = window.ctx.store.characters.by_builtin("parlor:wren")
    store = window.ctx.store
    ann = store.characters.add({"name": "Ann", "first_mes": "Hi."})  # no portrait
    gid = store.groups.create("Pair", [ann, wren])
    window.groups.panel.refresh()
    window.groups.open_group(gid)
    delegate = window.chat_view.itemDelegate()
    assert set(delegate.speaker_avatars) == {"Wren"}  # Ann gets her initial, not Wren's face
    assert not window.portrait_panel.isVisible()
    window._on_character(wren)  # back to a one-character chat
    assert delegate.speaker_avatars is None and window.portrait_panel.isVisible()


def test_the_editor_sets_a_group_picture_and_goes_back_to_the_collage(qtbot, make_window, tmp_path):
    from PySide6.QtGui import QColor, QImage

    window = make_window()
    store = window.ctx.store
    gid = store.groups.create("Solo", [store.characters.add({"name": "Ann"})])
    picture = tmp_path / "inn.png"
    image = QImage(64, 64, QImage.Format.Format_RGB32)
    image.fill(QColor("red"))
    image.save(str(picture))
    editor = GroupEditor(store, gid)
    qtbot.addWidget(editor)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert not editor.set_picture_file(str(tmp_path / "junk.png"))
    assert editor.problem.text()  # said why, nothing changed
    assert editor.set_picture_file(str(picture))
    editor.save()
    assert store.groups.avatar(gid)[:8] == b"\x89PNG\r\n\x1a\n"
    again = GroupEditor(store, gid)
    qtbot.addWidget(again)
    again.collage_button.click()
    again.save()
    assert store.groups.avatar(gid) is None


def test_a_long_group_chats_replies_read_its_path_off_the_gui_thread(
    qtbot, make_window, tiny_llama_path
):
    """Send (a whole turn), regenerate, continue and impersonate in a long group chat: the
    speaker's prompt holds the chat's history, but the GUI thread never walks the whole path
    (the active path's query, or a walk up without a bound); the worker reads it."""
    window = make_window()
    load(qtbot, window, tiny_llama_path)
    gid, ids = _group(window)
    store, chat = window.ctx.store, window.controller.chat_id
    parent = store.messages.active_leaf(chat)
    for i in range(3 * PAGE):
        parent = (
            store.messages.append(chat, parent, "user", f"old line {i}")
            if i % 2 == 0
            else store.groups.append_reply(chat, parent, ids[i % 3], f"old line {i}", "complete")
        )
    window.controller.open_chat(chat)
    whole_path = (str(UNBOUNDED), "WITH RECURSIVE path(")
    on_gui_thread: list[str] = []

    def trace(sql: str) -> None:
        if threading.current_thread() is threading.main_thread():
            on_gui_thread.append(sql)

    store._conn.set_trace_callback(trace)
    try:
        qtbot.keyClicks(window.composer, "Hello all")
        qtbot.keyClick(window.composer, Qt.Key.Key_Return)
        # waiting reads no more than the newest rows (`_wait_idle` reads the whole path)
        qtbot.waitUntil(
            lambda: (
                not window.controller.busy
                and not window.controller.turn_pending
                and [m.role for m in store.messages.tail(chat, 4)][0] == "user"
            ),
            timeout=60000,
        )
        assert f"old line {3 * PAGE - 1}" in window.controller.last_prompt.text
        with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
            window.regenerate_action.trigger()
        with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
            assert window.controller.continue_reply()
        with qtbot.waitSignal(window.controller.impersonation_finished, timeout=60000):
            assert window.controller.impersonate()
    finally:
        store._conn.set_trace_callback(None)
    assert "Hello all" in window.controller.last_prompt.text
    assert on_gui_thread  # the trace saw the GUI thread's own reads and writes
    assert [s for s in on_gui_thread if any(w in s for w in whole_path)] == []
    last = window.chat_model.messages()[-1]
    assert last.speaker_id == ids[2] and last.sibling_count == 2  # Cid's turn, regenerated
