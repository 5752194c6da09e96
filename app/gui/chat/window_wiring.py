"""Connects the chat's own pieces to the main window: message actions and Undo, a clean
slate when another chat opens, explanations in the status bar, and switching characters
while a reply streams.

Kept out of `main_window.py` so the window only calls `wire_chat(self)` once its widgets
exist; everything it touches is named here.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
from shiboken6 import isValid

from app.core.store import StoreError
from app.gui.characters.library_view import SortKey, ViewMode
from app.gui.characters.portrait_panel import PortraitPanel
from app.gui.characters.token_counter import EngineTokenCounter
from app.gui.chat.background import ChatBackground, install_background
from app.gui.chat.delegate import chat_colors
from app.gui.chat.message_ops import MessageOps
from app.gui.theme import CHAT_TEXT, apply_chat_font
from app.gui.window_state import WindowState

NOTICE_MS = 12_000
LIBRARY_MIN_W = 180  # a long name in the chat header must not squeeze the library away
WIDE_WINDOW, PANEL_W = 1150, 280  # the portrait pane shows from this width of the panes


class CharacterSwitch(QObject):
    """A character clicked while a reply streams: stop the reply (it is kept, marked
    stopped) and open the character once the reply has ended."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.pending: int | None = None
        window.library.character_chosen.connect(self._on_chosen)
        window.controller.busy_changed.connect(self._on_busy)

    def _on_chosen(self, character_id: int) -> None:
        if self.window.controller.busy:
            self.pending = character_id
            self.window.controller.stop()

    def _on_busy(self, busy: bool) -> None:
        if not busy and self.pending is not None:
            character, self.pending = self.pending, None
            if self.window.library.current_id() == character:
                self.window._on_character(character)


def reset_chat_status(window) -> None:
    """The context and speed labels and the budget bar described the previous chat."""
    window.context_label.clear()
    window.context_label.setToolTip("")
    window.speed_label.clear()
    window.budget_bar.segments, window.budget_bar.n_ctx = [], 0
    window.budget_bar.setToolTip("")
    window.budget_bar.update()


def wire_chat(window) -> MessageOps:
    ops = MessageOps(
        window.chat_view,
        window.chat_model,
        window.controller,
        branch=window.chat_actions.branch_here,
        notify=lambda text: window.statusBar().showMessage(text, NOTICE_MS),
    )
    column = window.chat_view.parentWidget().layout()
    column.insertWidget(column.indexOf(window.chat_view) + 1, ops.undo_bar)
    window.controller.chat_opened.connect(lambda _chat: reset_chat_status(window))
    window.controller.notice.connect(ops.notify)
    window.character_switch = CharacterSwitch(window)
    window.chat_view.itemDelegate().colors = lambda: chat_colors(
        window.ctx.settings.speech_color,
        window.ctx.settings.action_color,
        window.ctx.settings.thought_color,
    )
    for widget in (window.chat_view, window.composer):
        widget.setProperty(CHAT_TEXT, True)
    apply_chat_font(QApplication.instance(), window.ctx.settings.font_size)
    window.library.setMinimumWidth(LIBRARY_MIN_W)
    window.centralWidget().setChildrenCollapsible(False)
    window.model_loaded.connect(lambda info: _count_with(window, info.path))
    window.portrait_panel = _portrait_panel(window)
    window.chat_background = _background(window)
    _remember_state(window)
    return ops


def _remember_state(window) -> None:
    """Geometry, splitter and the chat that was open come back; they are kept on close."""
    state = WindowState(window.ctx.paths.config, window)
    window.window_state = state
    state.restore_window(window, window.centralWidget())
    character, chat = state.last_chat()
    if character is not None and window.library.select(character) and chat is not None:
        try:
            if (
                window.ctx.store.chats.character_of(chat) == character
                and window.ctx.store.chats.info(chat).deleted_at is None
            ):
                window._open_chat(chat)
        except (StoreError, TypeError, IndexError):
            pass  # the chat is gone: its character's newest chat is open instead
    window.controller.chat_opened.connect(
        lambda chat_id: state.set_last_chat(window.ctx.store.chats.character_of(chat_id), chat_id)
    )
    if window.controller.chat_id is not None:
        state.set_last_chat(
            window.ctx.store.chats.character_of(window.controller.chat_id),
            window.controller.chat_id,
        )
    window.installEventFilter(_SaveOnClose(state, window))
    _remember_library_view(state, window.library)


def _remember_library_view(state: WindowState, library) -> None:
    """List or grid and the sort order are kept like the window's size."""
    controls = library.controls
    mode, key = state.qs.value("library/mode"), state.qs.value("library/sort")
    if mode in {m.value for m in ViewMode}:
        controls.set_mode(ViewMode(mode))
    if key in {k.value for k in SortKey}:
        controls.set_sort_key(SortKey(key))

    def save() -> None:
        state.qs.setValue("library/mode", controls.mode().value)
        state.qs.setValue("library/sort", controls.sort_key().value)

    controls.changed.connect(save)


class PanelFolder(QObject):
    """Folds the portrait pane away when the window gets narrow (the chat needs the room)
    and brings it back when the window is wide again, unless the user folded it (by
    dragging the splitter)."""

    def __init__(self, splitter, panel, window) -> None:
        super().__init__(window)
        self.splitter, self.panel, self.user_folded = splitter, panel, False
        splitter.installEventFilter(self)
        splitter.splitterMoved.connect(self._on_moved)

    def _on_moved(self, *_args) -> None:
        self.user_folded = self._pane_size() == 0

    def _pane_size(self) -> int:
        return self.splitter.sizes()[self.splitter.indexOf(self.panel)]

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Resize:
            # after the splitter has shared out the new width itself
            QTimer.singleShot(0, self.fit)
        return False

    def fit(self) -> None:
        if not isValid(self.splitter):
            return
        sizes, at = self.splitter.sizes(), self.splitter.indexOf(self.panel)
        wide = self.splitter.width() >= WIDE_WINDOW
        middle = at - 1  # the chat column, left of the pane
        if not wide and sizes[at] > 0:
            sizes[middle], sizes[at] = sizes[middle] + sizes[at], 0
        elif wide and sizes[at] == 0 and not self.user_folded:
            sizes[middle], sizes[at] = max(0, sizes[middle] - PANEL_W), PANEL_W
        else:
            return
        self.splitter.setSizes(sizes)


class _SaveOnClose(QObject):
    def __init__(self, state: WindowState, window) -> None:
        super().__init__(window)
        self.state = state

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Close:
            self.state.save_window(obj, obj.centralWidget())
        return False


def _portrait_panel(window) -> PortraitPanel:
    """The character's portrait and notes as a third pane, folded away on small windows."""
    panel = PortraitPanel()
    splitter = window.centralWidget()
    splitter.addWidget(panel)
    splitter.setCollapsible(splitter.indexOf(panel), True)
    for index, stretch in enumerate((0, 1, 0)):  # a bigger window widens the chat
        splitter.setStretchFactor(index, stretch)
    left, middle = splitter.sizes()[:2]
    splitter.setSizes([left, middle - PANEL_W, PANEL_W])
    window.panel_folder = PanelFolder(splitter, panel, window)

    def show(*_args) -> None:
        chat = window.controller.chat_id
        if chat is not None:
            card = window.library.card(window.ctx.store.chats.character_of(chat))
            panel.show_card(card, card.avatar)

    window.controller.chat_opened.connect(show)
    window.library.characters_changed.connect(show)
    show()
    return panel


def _background(window) -> ChatBackground:
    """A picture behind the chat, per chat (Chat menu) or per character (library menu)."""
    return install_background(window)


def _count_with(window, _model_path: str) -> None:
    """The card editor counts with the loaded model's tokenizer, through the engine (its
    child process holds llama.cpp); until a model is loaded it shows its estimate."""
    if not isinstance(window.library.count_tokens, EngineTokenCounter):
        window.library.count_tokens = EngineTokenCounter(window.worker.worker, window)
