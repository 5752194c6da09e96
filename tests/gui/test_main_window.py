"""The first slice, driven through the real window: open, load, chat, stop, reopen."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStyleOptionViewItem

from app.core.engine import EngineError
from tests.gui.conftest import load


def _texts(window) -> list[str]:
    return [m.text for m in window.chat_model.messages()]


def test_first_run_shows_the_default_character_and_her_greeting(make_window):
    window = make_window()
    ids = window.library.ids()
    assert len(ids) == 1
    assert window.library.card(ids[0]).name == "Wren"
    assert not window.library.avatar_pixmap(ids[0]).isNull()
    assert window.header.title.text() == "Wren"
    assert "Gull & Lantern" in _texts(window)[0]
    assert window.banner.isVisible()  # no model yet: the window says so and offers a way


def test_enter_sends_and_the_reply_streams_in(qtbot, make_window, tiny_llama_path):
    window = make_window()
    load(qtbot, window, tiny_llama_path)
    assert not window.banner.isVisible()
    assert "context 4096" in window.model_label.text()
    batches = []
    window.worker.worker.token_batch.connect(batches.append)
    qtbot.keyClicks(window.composer, "Hello Wren")
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    texts = _texts(window)
    assert texts[-2] == "Hello Wren"
    assert texts[-1].strip() and "".join(batches) == texts[-1]
    assert window.chat_model.messages()[-1].status == "complete"
    assert "tok/s" in window.speed_label.text()
    assert window.composer.toPlainText() == ""


def test_shift_enter_is_a_new_line(qtbot, make_window):
    window = make_window()
    qtbot.keyClicks(window.composer, "one")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(window.composer, "two")
    assert window.composer.toPlainText() == "one\ntwo"


def test_stop_ends_the_reply_and_keeps_what_was_written(qtbot, make_window, tiny_llama_path):
    window = make_window(max_tokens=2000)
    load(qtbot, window, tiny_llama_path)
    # dataChanged comes on the GUI thread when streamed text reaches the view (a lambda on
    # the worker's own signal would run on the worker's thread and touch widgets from there)
    window.chat_model.dataChanged.connect(lambda *_: window.stop_button.click())
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000) as blocker:
        window.send("Tell me everything.")
    assert blocker.args[0].stopped
    reply = window.chat_model.messages()[-1]
    assert reply.status == "stopped" and reply.text
    stored = window.ctx.store.messages.get(reply.id)
    assert (stored.text, stored.status) == (reply.text, "stopped")
    assert window.send_button.isEnabled() and not window.stop_button.isEnabled()


def test_reopening_shows_the_same_chat(qtbot, make_window, tiny_llama_path):
    window = make_window()
    load(qtbot, window, tiny_llama_path)
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        window.send("Remember me?")
    before = _texts(window)
    window.close()
    again = make_window()
    assert _texts(again) == before
    assert again.ctx.settings.model_path == str(tiny_llama_path)


def test_a_file_that_is_not_gguf_is_refused_with_its_name(qtbot, make_window, tmp_path):
    bad = tmp_path / "holiday-photo.gguf"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    window = make_window()
    assert not window.models.load(str(bad))
    assert "holiday-photo.gguf" in window._last_error_box.text()
    assert window.banner.isVisible() and window.open_button.isEnabled()


def test_a_truncated_model_is_refused_before_llama_cpp_sees_it(
    qtbot, make_window, tiny_llama_path, tmp_path
):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_llama_path.read_bytes()[:-5000])
    window = make_window()
    assert not window.models.load(str(cut))
    assert "cut.gguf" in window._last_error_box.text()


def test_sending_without_a_model_keeps_the_text(qtbot, make_window):
    window = make_window()
    window.composer.setPlainText("Hi there")
    window.composer.submit()
    assert window.composer.toPlainText() == "Hi there"
    assert len(_texts(window)) == 1


def _reply_once(qtbot, window, text="Hello"):
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        window.send(text)


def test_regenerate_adds_a_swipe_and_arrows_move_between_them(qtbot, make_window, tiny_llama_path):
    window = make_window()
    load(qtbot, window, tiny_llama_path)
    _reply_once(qtbot, window)
    first = window.chat_model.messages()[-1]
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        window.regenerate_action.trigger()
    second = window.chat_model.messages()[-1]
    assert second.id != first.id and second.parent_id == first.parent_id
    assert (second.sibling_index, second.sibling_count) == (1, 2)
    window.swipe_left_action.trigger()
    assert window.chat_model.messages()[-1].id == first.id
    # past the last swipe, a swipe right writes a new reply, as in SillyTavern
    window.swipe_right_action.trigger()
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        window.swipe_right_action.trigger()
    assert window.chat_model.messages()[-1].sibling_count == 3


def test_clicking_the_swipe_arrows_on_the_greeting(qtbot, make_window):
    window = make_window()
    view = window.chat_view
    index = window.chat_model.index(0)
    delegate = view.itemDelegate()
    qtbot.waitUntil(lambda: view.visualRect(index).height() > 0)
    rect = view.visualRect(index)
    opt = QStyleOptionViewItem()
    view.initViewItemOption(opt)
    opt.rect = rect
    right = delegate.header(opt, index).swipe_right
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=right.center().toPoint())
    assert window.chat_model.messages()[0].sibling_index == 1
    assert "barrel" in window.chat_model.messages()[0].text


def test_continue_extends_the_last_reply_in_place(qtbot, make_window, tiny_llama_path):
    window = make_window(max_tokens=8)
    load(qtbot, window, tiny_llama_path)
    _reply_once(qtbot, window)
    before = window.chat_model.messages()[-1]
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60000):
        window.continue_action.trigger()
    after = window.chat_model.messages()[-1]
    assert after.id == before.id and after.text.startswith(before.text)
    assert len(after.text) > len(before.text)
    assert window.ctx.store.messages.get(after.id).text == after.text


def test_impersonate_writes_into_the_composer_not_the_chat(qtbot, make_window, tiny_llama_path):
    window = make_window(max_tokens=8)
    load(qtbot, window, tiny_llama_path)
    count = len(window.chat_model.messages())
    with qtbot.waitSignal(window.controller.impersonation_finished, timeout=60000):
        window.impersonate_action.trigger()
    assert window.composer.toPlainText().strip()
    assert len(window.chat_model.messages()) == count


def test_edit_and_delete_messages(qtbot, make_window, tiny_llama_path):
    window = make_window(max_tokens=4)
    load(qtbot, window, tiny_llama_path)
    _reply_once(qtbot, window, "A typo herre")
    user = window.chat_model.messages()[-2]
    window.controller.edit(user.id, "No typo here")
    assert window.chat_model.messages()[-2].text == "No typo here"
    assert window.ctx.store.messages.get(user.id).text == "No typo here"
    window.controller.delete(user.id)
    assert [m.role for m in window.chat_model.messages()] == ["assistant"]


def test_the_draft_survives_a_restart(qtbot, make_window):
    window = make_window()
    window.composer.setPlainText("half a thought")
    window.close()
    again = make_window()
    assert again.composer.toPlainText() == "half a thought"


def test_new_chat_and_switching_between_chats(qtbot, make_window):
    window = make_window()
    first_chat = window.controller.chat_id
    window.new_chat_action.trigger()
    assert window.controller.chat_id != first_chat
    assert window.header.chats.count() == 2
    window.header.chat_selected.emit(first_chat)
    assert window.controller.chat_id == first_chat


def test_prompt_inspector_shows_the_exact_prompt(qtbot, make_window, tiny_llama_path):
    window = make_window(max_tokens=4)
    load(qtbot, window, tiny_llama_path)
    _reply_once(qtbot, window, "Inspect me")
    window.header.inspect_button.click()
    text = window._inspector.text.toPlainText()
    assert text == window.controller.last_prompt.text
    assert "Inspect me" in text and "Gull & Lantern" in text
    assert "context" in window.context_label.text()


def test_an_imported_card_gets_its_own_chat_with_its_greeting(qtbot, make_window):
    from pathlib import Path

    card = Path(__file__).parents[1] / "fixtures" / "cards" / "v2_full.json"
    window = make_window()
    ids, errors = window.library.import_files([str(card)])
    assert ids and not errors
    window.library.select(ids[0])
    name = window.library.card(ids[0]).name
    assert window.header.title.text() == name
    greeting = window.chat_model.messages()[0]
    assert greeting.role == "assistant" and greeting.text
    assert "{{char}}" not in greeting.text and "{{user}}" not in greeting.text


def test_open_gguf_goes_through_the_layout_check_and_loads(qtbot, make_window, tiny_llama_path):
    window = make_window()
    with qtbot.waitSignal(window.model_loaded, timeout=60000):
        window.models.open_file(str(tiny_llama_path))
    assert window.controller.info.path == str(tiny_llama_path)


def test_download_offer_loads_with_the_estimated_gpu_layers(
    qtbot, make_window, tiny_llama_path, monkeypatch
):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: no traffic
    window = make_window()
    dialog = window.models.show_download()
    assert dialog.isVisible()
    box = window.models.offer_load(str(tiny_llama_path), 0)
    with qtbot.waitSignal(window.model_loaded, timeout=60000):
        box.button(box.StandardButton.Yes).click()
    assert window.ctx.settings.n_gpu_layers == 0


def test_branch_here_starts_a_new_chat_with_the_path_so_far(qtbot, make_window, tiny_llama_path):
    window = make_window(max_tokens=4)
    load(qtbot, window, tiny_llama_path)
    _reply_once(qtbot, window, "first")
    _reply_once(qtbot, window, "second")
    original = window.controller.chat_id
    first_user = [m for m in window.chat_model.messages() if m.text == "first"][0]
    with qtbot.waitSignal(window.chat_actions.branched):  # written on a background thread
        window.chat_actions.branch_here(first_user.id)
    assert window.controller.chat_id != original
    assert [m.text for m in window.chat_model.messages()][-1] == "first"
    assert window.header.chats.count() == 2


def test_budget_bar_and_messages_that_no_longer_fit(qtbot, make_window, tiny_llama_path):
    from app.gui.chat.model import Roles

    window = make_window(max_tokens=4)
    window.ctx.settings.n_ctx = 2048  # the card alone is ~1,500 tokens of the tiny vocab
    load(qtbot, window, tiny_llama_path)
    for n in range(6):
        _reply_once(qtbot, window, "a rather long message to fill the context " * 4 + str(n))
    prompt = window.controller.last_prompt
    assert prompt.dropped_messages > 0
    labels = {label: tokens for label, tokens, _c in window.budget_bar.segments}
    assert labels["card"] > 0 and labels["history"] > 0 and labels["reply"] == 4
    assert "no longer fit" in window.budget_bar.toolTip()
    model = window.chat_model
    assert model.index(0).data(Roles.OUT_OF_CONTEXT)
    assert not model.index(model.rowCount() - 1).data(Roles.OUT_OF_CONTEXT)


def test_gpu_offload_that_fails_falls_back_to_the_cpu(
    qtbot, make_window, tiny_llama_path, monkeypatch
):
    """A GPU build without its runtime: the load with GPU layers fails, the CPU one works."""
    from app.core.engine.local import LocalEngine

    real_load = LocalEngine.load

    def gpu_missing(self, params, cancel=None, progress=None):
        if params.n_gpu_layers:
            raise EngineError(
                "ggml_cuda_init: failed to initialize CUDA: no CUDA-capable device is detected"
            )
        return real_load(self, params, cancel, progress)

    monkeypatch.setattr(LocalEngine, "load", gpu_missing)
    window = make_window()
    window.ctx.settings.n_gpu_layers = -1
    with qtbot.waitSignal(window.model_loaded, timeout=60000) as loaded:
        window.models.load(str(tiny_llama_path))
    assert loaded.args[0].n_gpu_layers == 0
    assert "CPU instead" in window._last_error_box.text()


def test_the_chats_persona_reaches_the_prompt_and_the_bubbles(qtbot, make_window, tiny_llama_path):
    window = make_window(max_tokens=4)
    load(qtbot, window, tiny_llama_path)
    persona = window.ctx.store.personas.add("Captain Vale", "A retired sea captain.")
    window._open_chat(window.controller.chat_id)  # refreshes the header's persona list
    window.header.persona_chosen.emit(persona)
    _reply_once(qtbot, window, "Evening.")
    prompt = window.controller.last_prompt.text
    assert "A retired sea captain." in prompt and "Captain Vale" in prompt
    assert window.chat_model.names["user"] == "Captain Vale"
    dialog = window.chats.show_chats()
    assert dialog is not None and dialog.isVisible()


def test_loading_shows_progress_and_stop_cancels_it(qtbot, make_window, tiny_llama_path):
    window = make_window()
    fractions = []
    window.worker.worker.load_progress.connect(fractions.append)
    load(qtbot, window, tiny_llama_path)
    assert fractions and max(fractions) == 1.0
    # a second load, cancelled at once with Stop: the window says so and stays usable
    with qtbot.waitSignal(window.model_failed, timeout=60000) as failed:
        window.models.load(str(tiny_llama_path))
        assert window.stop_button.isEnabled()
        window.stop_button.click()
    assert "cancel" in failed.args[0].lower()
    assert window.open_button.isEnabled() and window.banner.isVisible()


def test_opening_a_model_says_what_it_is_and_what_it_needs(qtbot, make_window, tiny_moe_path):
    window = make_window()
    load(qtbot, window, tiny_moe_path)
    summary = window.model_label.toolTip()
    assert "llama, 2 layers" in summary and "2 of 4 experts" in summary
    assert "MB with a 4096-token context" in summary


def test_the_download_dialog_uses_the_stored_token_and_mirror(qtbot, make_window, monkeypatch):
    window = make_window()
    window.ctx.secrets.set("hub_token", "hf_storedtoken")
    window.ctx.settings.hf_endpoint = "http://127.0.0.1:9"  # nothing listens: no traffic
    dialog = window.models.show_download()
    assert dialog.hub.token == "hf_storedtoken"
    assert dialog.hub.base_url == "http://127.0.0.1:9"


def test_a_broken_model_template_falls_back_with_a_visible_warning(qtbot, make_window, tmp_path):
    from tests.tiny_models import write_tiny_llama

    model = write_tiny_llama(
        tmp_path / "bad-template.gguf",
        chat_template="{% for m in messages %}{{ m.content.nope() }}{% endfor %}",
    )
    window = make_window(max_tokens=4)
    load(qtbot, window, model)
    _reply_once(qtbot, window, "Hello")
    assert window.controller.last_prompt.warnings
    assert "⚠" in window.statusBar().currentMessage()
    assert window.chat_model.messages()[-1].status == "complete"
