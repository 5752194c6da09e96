"""The main window: characters on the left, the chat in the middle, the composer below."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.core.chat.context import AppContext
from app.core.chat.default_character import ensure_default_character
from app.core.engine import StreamStats
from app.core.prompt import estimate_tokens
from app.core.store import StoreError
from app.gui.characters import CharacterLibrary
from app.gui.chat.budget_bar import BudgetBar
from app.gui.chat.chat_manager_ui import ChatManagerUi
from app.gui.chat.composer import Composer
from app.gui.chat.find_bar import FindBar
from app.gui.chat.header import ChatHeader
from app.gui.chat.inspector import PromptInspector
from app.gui.chat.message_menu import ChatViewActions
from app.gui.chat.window_wiring import wire_chat
from app.gui.groups.controller import GroupChatController
from app.gui.groups.view import GroupChatModel, GroupMessageDelegate
from app.gui.groups.wiring import GroupWiring
from app.gui.icons import set_icon
from app.gui.model_controls import ModelControls
from app.gui.model_session import ModelSession
from app.gui.settings_pages import DataPage
from app.gui.settings_ui import SettingsUi
from app.gui.theme import apply_theme
from app.gui.trash import TrashUi
from app.gui.workers import WorkerThread
from app.gui.worldinfo.authors_note import show_authors_note
from app.gui.worldinfo.manager import show_world_info

if TYPE_CHECKING:
    from app.gui.characters.portrait_panel import PortraitPanel
    from app.gui.chat.background import ChatBackground
    from app.gui.chat.window_wiring import CharacterSwitch, PanelFolder
    from app.gui.first_run import FirstRunDialog
    from app.gui.single_instance import FocusServer
    from app.gui.window_state import WindowState

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """The window and its layout. What it does is in the objects it owns: `session` (the
    engine and loading), `models` (the model controls), `settings_ui`, `chat_actions` (the
    chat view's menu and paging), `chats` (the chat manager and personas), `trash`, `groups`,
    `message_ops` (edit and delete with Undo) and the `controller` (the conversation)."""

    model_loaded = Signal(object)  # ModelInfo, on the GUI thread
    model_failed = Signal(str)

    # Added by `wire_chat` once the first chat is open (they need it to restore their state).
    character_switch: CharacterSwitch
    portrait_panel: PortraitPanel
    chat_background: ChatBackground
    window_state: WindowState
    panel_folder: PanelFolder
    # Added by `launch` after the window shows.
    first_run: FirstRunDialog | None
    focus_server: FocusServer

    def __init__(self, ctx: AppContext, worker: WorkerThread) -> None:
        super().__init__()
        self.ctx, self.worker = ctx, worker
        self.setWindowTitle("Parlor")
        self.resize(1100, 760)
        self.chat_model = GroupChatModel(self)  # a one-character chat is the plain case
        self.controller = GroupChatController(ctx, self.chat_model, worker)
        self.session = ModelSession(worker, ctx.settings, ctx.paths.cache / "sessions", self)
        self.settings_ui = SettingsUi(ctx, self.controller, self.session, self)
        self._build_ui()
        self._build_menus()
        self.models = ModelControls(self)
        self.chat_actions = ChatViewActions(self)
        self.chats = ChatManagerUi(self)
        self.trash = TrashUi(self)  # finishes a removal an exit cut short
        apply_theme(QApplication.instance(), ctx.settings.theme, ctx.settings.font_size)
        self.chat_view.itemDelegate().book = ctx.settings.chat_layout == "book"
        self._connect()
        self.groups = GroupWiring(self)
        self._load_characters()
        self.message_ops = wire_chat(self)  # after the first chat is open: it restores the last
        self.chat_actions.ops = self.message_ops
        self.groups.place()
        self.models.show_model(None)

    # --- layout ------------------------------------------------------------------------
    def _build_ui(self) -> None:
        ensure_default_character(self.ctx.store)
        self.library = CharacterLibrary(self.ctx.store)
        self.chat_view = QListView()
        self.chat_view.setModel(self.chat_model)
        self.chat_view.setItemDelegate(GroupMessageDelegate(self.chat_view))
        self.chat_view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.chat_view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.chat_view.setWordWrap(True)
        self.chat_view.setAccessibleName(self.tr("Chat"))
        self.composer = Composer(enter_sends=self.ctx.settings.enter_sends)
        self.send_button = QPushButton(self.tr("Send"))
        self.stop_button = QPushButton(self.tr("Stop"))
        self.stop_button.setEnabled(False)
        set_icon(self.send_button, "send")
        set_icon(self.stop_button, "stop")
        self.banner = self._no_model_banner()
        self.header = ChatHeader()
        middle = QWidget()
        col = QVBoxLayout(middle)
        col.addWidget(self.banner)
        col.addWidget(self.header)
        col.addWidget(self.chat_view, 1)
        self.find_bar = FindBar(self.chat_model, self.chat_view)
        col.addWidget(self.find_bar)
        row = QHBoxLayout()
        row.addWidget(self.composer, 1)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        row.addWidget(self.stop_button, 0, Qt.AlignmentFlag.AlignBottom)
        col.addLayout(row)
        splitter = QSplitter()
        splitter.addWidget(self.library)
        splitter.addWidget(middle)
        splitter.setSizes([240, 860])
        self.setCentralWidget(splitter)
        self.model_label = QLabel()
        self.composer_label = QLabel()
        self.context_label = QLabel()
        self.speed_label = QLabel()
        self.statusBar().addPermanentWidget(self.model_label, 1)
        self.budget_bar = BudgetBar()
        for label in (self.composer_label, self.budget_bar, self.context_label, self.speed_label):
            self.statusBar().addPermanentWidget(label)
        for label in (self.model_label, self.composer_label, self.context_label, self.speed_label):
            label.setTextFormat(Qt.TextFormat.PlainText)  # model names come from GGUF files

    def _no_model_banner(self) -> QFrame:
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QHBoxLayout(frame)
        self.banner_text = QLabel(
            self.tr(
                "No model is loaded. Open a GGUF file you have, "
                "or download one that fits this computer."
            )
        )
        self.banner_text.setWordWrap(True)
        self.open_button = QPushButton(self.tr("Open a GGUF file…"))
        self.download_button = QPushButton(self.tr("Download a model…"))
        lay.addWidget(self.banner_text, 1)
        lay.addWidget(self.open_button)
        lay.addWidget(self.download_button)
        return frame

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu(self.tr("&File"))
        self.open_action = QAction(
            self.tr("&Open a GGUF file…"), self, shortcut=QKeySequence.StandardKey.Open
        )
        self.download_action = QAction(self.tr("&Download a model…"), self)
        quit_action = QAction(self.tr("&Quit"), self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addActions(
            [self.library.import_action, self.library.new_action, self.library.edit_action]
        )
        self.trash_action = QAction(self.tr("&Trash…"), self)
        file_menu.addAction(self.trash_action)
        file_menu.addSeparator()
        file_menu.addActions([self.open_action, self.download_action])
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        chat_menu = self.menuBar().addMenu(self.tr("&Chat"))
        self.new_chat_action = QAction(self.tr("&New chat"), self, shortcut="Ctrl+N")
        self.stop_action = QAction(self.tr("&Stop"), self, shortcut="Esc")
        self.regenerate_action = QAction(self.tr("&Regenerate"), self, shortcut="Ctrl+Return")
        self.continue_action = QAction(
            self.tr("&Continue the reply"), self, shortcut="Ctrl+Shift+Return"
        )
        self.impersonate_action = QAction(self.tr("&Impersonate"), self, shortcut="Ctrl+Shift+I")
        self.swipe_left_action = QAction(self.tr("Previous swipe"), self, shortcut="Alt+Left")
        self.swipe_right_action = QAction(self.tr("Next swipe"), self, shortcut="Alt+Right")
        self.find_action = QAction(
            self.tr("&Find in chat…"), self, shortcut=QKeySequence.StandardKey.Find
        )
        self.find_action.triggered.connect(lambda: self.find_bar.open())
        self.chats_action = QAction(self.tr("Manage &chats…"), self, shortcut="Ctrl+Shift+O")
        self.personas_action = QAction(self.tr("&Personas…"), self)
        world_action = QAction(self.tr("&World info…"), self)
        world_action.triggered.connect(
            lambda: show_world_info(self, self.ctx.store, self.controller.chat_id)
        )
        note_action = QAction(self.tr("&Author's note…"), self)
        note_action.triggered.connect(lambda: show_authors_note(self))
        chat_menu.addActions([self.chats_action, self.personas_action, world_action, note_action])
        chat_menu.addActions(
            [
                self.new_chat_action,
                self.find_action,
                self.regenerate_action,
                self.continue_action,
                self.impersonate_action,
                self.swipe_left_action,
                self.swipe_right_action,
                self.stop_action,
            ]
        )
        settings_action = QAction(
            self.tr("&Settings…"), self, shortcut=QKeySequence.StandardKey.Preferences
        )
        settings_action.triggered.connect(self.show_settings)
        file_menu.insertAction(quit_action, settings_action)
        help_menu = self.menuBar().addMenu(self.tr("&Help"))
        copy_diag = QAction(self.tr("Copy &diagnostics"), self)
        copy_diag.triggered.connect(lambda: DataPage(self.ctx).copy_diagnostics())
        help_menu.addAction(copy_diag)
        shortcuts = QAction(self.tr("&Keyboard shortcuts"), self)
        shortcuts.triggered.connect(self.show_shortcuts)
        about = QAction(self.tr("&About Parlor"), self)
        about.triggered.connect(self._about)
        help_menu.addActions([shortcuts, about])

    def _connect(self) -> None:
        self.composer.submitted.connect(self.send)
        self.send_button.clicked.connect(self.composer.submit)
        models, actions, chats = self.models, self.chat_actions, self.chats
        self.stop_button.clicked.connect(models.stop_or_cancel)
        self.stop_action.triggered.connect(models.stop_or_cancel)
        models.error.connect(self._show_error)
        models.loaded.connect(self.model_loaded)
        models.failed.connect(self.model_failed)
        self.settings_ui.applied.connect(self._on_settings_applied)
        self.settings_ui.data_replaced.connect(self._on_data_replaced)
        self.settings_ui.model_cleared.connect(lambda: models.show_model(None))
        self.settings_ui.error.connect(self._show_error)
        for trigger in (self.open_button.clicked, self.open_action.triggered):
            trigger.connect(models.choose_file)
        for trigger in (self.download_button.clicked, self.download_action.triggered):
            trigger.connect(models.show_download)
        self.new_chat_action.triggered.connect(self._new_chat)
        self.header.new_chat_requested.connect(self._new_chat)
        self.header.chat_selected.connect(self._open_chat)
        self.header.inspect_requested.connect(self.show_prompt)
        self.chats_action.triggered.connect(chats.show_chats)
        self.personas_action.triggered.connect(chats.show_personas)
        self.trash_action.triggered.connect(self.trash.show)
        chats.open_chat.connect(self._open_chat)
        chats.open_character.connect(self._on_character)
        self.regenerate_action.triggered.connect(self.controller.regenerate)
        self.continue_action.triggered.connect(self.controller.continue_reply)
        self.impersonate_action.triggered.connect(self._impersonate)
        self.swipe_left_action.triggered.connect(lambda: actions.swipe_last(-1))
        self.swipe_right_action.triggered.connect(lambda: actions.swipe_last(+1))
        self.controller.impersonation.connect(self.composer.insertPlainText)
        self.chat_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        actions.branched.connect(self._open_chat)
        actions.error.connect(self._show_error)
        self.composer.edit_last_requested.connect(actions.edit_last_user_message)
        self.library.character_chosen.connect(self._on_character)
        self.library.characters_changed.connect(self._on_characters_changed)
        self.library.status_message.connect(lambda t: self.statusBar().showMessage(t, 10000))
        self.library.drop_filter.install(self, self.composer, self.chat_view)
        self.controller.busy_changed.connect(self._on_busy)
        self.controller.error.connect(self._show_error)
        self.controller.reply_finished.connect(self._on_reply_finished)
        self.worker.worker.stream_rate.connect(self._on_stream_rate)
        self.worker.worker.started.connect(self._on_prompt_built)
        self.composer.textChanged.connect(self._on_composer_changed)
        self._draft_timer = QTimer(self, singleShot=True, interval=800, timeout=self._save_draft)

    def send(self, text: str) -> None:
        if not self.controller.send(text):
            self.composer.setPlainText(text)  # nothing is lost when sending was refused

    def _impersonate(self) -> None:
        self.composer.clear()
        self.controller.impersonate()

    # --- settings ----------------------------------------------------------------------
    def show_settings(self):
        return self.settings_ui.show()

    def _on_settings_applied(self, _changed: set) -> None:
        s = self.ctx.settings
        apply_theme(QApplication.instance(), s.theme, s.font_size)
        self.composer.enter_sends = s.enter_sends
        self.chat_view.itemDelegate().book = s.chat_layout == "book"

    def _on_data_replaced(self) -> None:
        """A backup was restored or an export imported: show what is there now."""
        self.controller.chat_id = None
        self.library.store = self.ctx.store
        self.library.reload()
        self._load_characters()

    # --- characters and chats ----------------------------------------------------------
    def _load_characters(self) -> None:
        """The library chose its first character before we listened; open it now."""
        if self.library.current_id() is not None:
            self._on_character(self.library.current_id())

    def _on_character(self, character_id: int) -> None:
        if self.controller.busy:
            return
        avatar = self.library.avatar_pixmap(character_id)
        self.chat_view.itemDelegate().avatars = {"assistant": avatar} if avatar else {}
        try:
            chats = self.ctx.store.chats.of_character(character_id)
            if chats:
                self._open_chat(chats[0].id)
            else:
                self._open_chat(self.controller.new_chat(character_id))
        except StoreError as exc:  # a damaged row says so; it must not close the window
            self._show_error(str(exc))

    def _on_characters_changed(self) -> None:
        """A card was edited: show its new name and avatar in the open chat."""
        if self.groups.refresh_open_chat():
            return
        if self.controller.chat_id is not None and not self.controller.busy:
            self._on_character(self.ctx.store.chats.character_of(self.controller.chat_id))

    def _open_chat(self, chat_id: int) -> None:
        if self.controller.busy:
            return
        self._save_draft()
        self.controller.open_chat(chat_id)
        self.composer.setPlainText(self.ctx.store.chats.draft(chat_id))
        self.header.show_chats(*self.groups.header_chats(chat_id), chat_id)
        self.chats.show_header_personas()
        self.chat_view.scrollToBottom()
        self.composer.setFocus()

    def _new_chat(self) -> None:
        if self.groups.new_chat():  # a group chat is open: a new chat of the group
            return
        character_id = self.library.current_id()
        if character_id is not None and not self.controller.busy:
            self._open_chat(self.controller.new_chat(character_id))

    def show_prompt(self) -> None:
        prompt, info = self.controller.last_prompt, self.controller.info
        if prompt is None or info is None:
            self.statusBar().showMessage(self.tr("No reply has been written yet."), 5000)
            return
        self._inspector = PromptInspector(prompt, info.n_ctx, self)
        self._inspector.show()

    # --- generation state --------------------------------------------------------------
    def _on_busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        if busy:
            self.speed_label.setText(self.tr("writing…"))
        elif self.speed_label.text().startswith(self.tr("writing…")):
            self.speed_label.clear()  # a reply that failed leaves no "writing…" behind

    def _on_stream_rate(self, tokens: int, rate: float) -> None:
        self.speed_label.setText(
            self.tr("writing… {0} tokens · {1:.1f} tok/s").format(tokens, rate)
        )

    def _on_prompt_built(self, prompt) -> None:
        info = self.controller.info
        if info is not None:
            self.context_label.setText(self.tr("context {0}/{1}").format(prompt.tokens, info.n_ctx))
            self.budget_bar.show_prompt(prompt, info.n_ctx, self.ctx.settings.max_tokens)
            self.context_label.setToolTip(self.budget_bar.toolTip())
            self.chat_model.set_out_of_context(prompt.dropped_messages)
        if prompt.warnings:  # e.g. the model's template failed and a preset stood in
            self.statusBar().showMessage("⚠ " + " ".join(prompt.warnings), 15000)

    def _on_composer_changed(self) -> None:
        text = self.composer.toPlainText()
        self.composer_label.setText(
            self.tr("≈{0} tokens").format(estimate_tokens(text)) if text else ""
        )
        self._draft_timer.start()

    def _save_draft(self) -> None:
        if self.controller.chat_id is not None:
            try:
                self.ctx.store.chats.set_draft(self.controller.chat_id, self.composer.toPlainText())
            except StoreError as exc:
                self.statusBar().showMessage(str(exc), 5000)

    def _on_reply_finished(self, stats: StreamStats) -> None:
        self.speed_label.setText(
            self.tr("{0} tokens · {1:.1f} tok/s").format(stats.tokens, stats.tokens_per_s)
        )

    def _show_error(self, message: str) -> None:
        log.warning("shown to the user: %s", message)
        if self.controller.info is None:
            self.models.show_model(None)
        self.statusBar().showMessage(message.splitlines()[0], 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, "Parlor", message, parent=self)
        box.setModal(False)
        box.show()
        self._last_error_box = box

    def shortcut_list(self) -> list[tuple[str, str]]:
        """Every action with a shortcut, as (keys, what it does), from the menus themselves."""
        rows = [
            ("Enter", self.tr("Send (Shift+Enter: new line)")),
            ("Up", self.tr("Edit your last message (in an empty composer)")),
        ]
        for menu_action in self.menuBar().actions():
            for action in menu_action.menu().actions():
                if not action.shortcut().isEmpty():
                    rows.append(
                        (
                            action.shortcut().toString(QKeySequence.SequenceFormat.NativeText),
                            action.text().replace("&", ""),
                        )
                    )
        return rows

    def show_shortcuts(self) -> None:
        text = "\n".join(f"{keys}\t{what}" for keys, what in self.shortcut_list())
        QMessageBox.information(self, self.tr("Keyboard shortcuts"), text)

    def _about(self) -> None:
        QMessageBox.about(
            self,
            self.tr("About Parlor"),
            self.tr("Parlor {0}\nCharacter roleplay with local language models.").format(
                __version__
            ),
        )

    def closeEvent(self, event) -> None:  # noqa: N802
        self._draft_timer.stop()
        self._save_draft()
        self.controller.commit_delete()  # the Undo offer ends with the window
        self.controller.stop()
        self.worker.shutdown()
        super().closeEvent(event)
