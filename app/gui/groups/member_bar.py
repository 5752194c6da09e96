"""The member list beside a group chat: who is in the scene, who speaks next, and controls.

Each member has its portrait, its name (marked when it speaks next), "Let speak" (the member
answers now, after what is typed in the message box, if anything), "Speak as" (what is typed
goes into the chat as that member's line, SillyTavern's `/sendas`), mute, and up/down to
reorder; below, auto mode with its number of replies and Stop. Every change goes to the store
at once and the list is rebuilt from it, so it always shows the stored group.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.store import StoreError
from app.gui.groups.avatar import member_portraits
from app.gui.groups.controller import GroupChatController

ICON = 32


class MemberRow(QWidget):
    def __init__(
        self, bar: MemberBar, character_id: int, name: str, muted: bool, is_next: bool, pixmap
    ) -> None:
        super().__init__()
        self.character_id = character_id
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        face = QLabel()
        face.setFixedSize(ICON, ICON)
        if pixmap is not None:
            face.setPixmap(pixmap.scaled(ICON, ICON, Qt.AspectRatioMode.KeepAspectRatio))
        self.name = QLabel(("▶ " if is_next else "") + name)
        self.name.setTextFormat(Qt.TextFormat.PlainText)  # card names come from files
        self.name.setToolTip(bar.tr("Speaks next") if is_next else "")
        self.speak = QPushButton(bar.tr("Let speak"))
        self.speak.setAccessibleName(bar.tr("Let {0} speak").format(name))
        self.speak.setToolTip(
            bar.tr("{0} answers now (after what you typed, if anything)").format(name)
        )
        self.speak_as = QPushButton(bar.tr("Speak as"))
        self.speak_as.setAccessibleName(bar.tr("Speak as {0}").format(name))
        self.speak_as.setToolTip(
            bar.tr("What you typed goes into the chat as {0}'s line; nobody answers yet").format(
                name
            )
        )
        self.muted = QCheckBox(bar.tr("Muted"))
        self.muted.setChecked(muted)
        self.up, self.down = QToolButton(text="↑"), QToolButton(text="↓")
        self.up.setAccessibleName(bar.tr("Move {0} up").format(name))
        self.down.setAccessibleName(bar.tr("Move {0} down").format(name))
        for widget in (face, self.name):
            lay.addWidget(widget)
        lay.addStretch(1)
        for widget in (self.speak, self.speak_as, self.muted, self.up, self.down):
            lay.addWidget(widget)
        self.speak.clicked.connect(lambda: bar.let_speak(character_id))
        self.speak_as.clicked.connect(lambda: bar.speak_as(character_id))
        self.muted.toggled.connect(lambda on: bar.set_muted(character_id, on))
        self.up.clicked.connect(lambda: bar.move(character_id, -1))
        self.down.clicked.connect(lambda: bar.move(character_id, +1))


class MemberBar(QWidget):
    """Shown only while a group chat is open."""

    def __init__(self, controller: GroupChatController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.store = controller.ctx.store
        self.rows: list[MemberRow] = []
        self.composer: QPlainTextEdit | None = None  # the message box; the window sets it
        lay = QVBoxLayout(self)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        lay.addWidget(self.title)
        self.list = QVBoxLayout()
        lay.addLayout(self.list)
        lay.addStretch(1)
        auto = QHBoxLayout()
        self.turns = QSpinBox(minimum=1, maximum=200)
        self.turns.setAccessibleName(self.tr("Auto-mode replies"))
        self.auto_button = QPushButton(self.tr("Auto"))
        self.auto_button.setCheckable(True)
        self.auto_button.setToolTip(
            self.tr(
                "Members answer one another for this many replies, until Stop or until you type"
            )
        )
        self.stop_button = QPushButton(self.tr("Stop"))
        for widget in (self.turns, self.auto_button, self.stop_button):
            auto.addWidget(widget)
        lay.addLayout(auto)
        self.auto_button.toggled.connect(self._on_auto)
        self.stop_button.clicked.connect(controller.stop)
        controller.group_changed.connect(self.refresh)
        controller.auto_changed.connect(self._show_auto)
        controller.busy_changed.connect(lambda _busy: self._show_buttons())
        self.refresh()

    def refresh(self) -> None:
        chat = self.controller.group_chat
        self.setVisible(chat is not None)
        for row in self.rows:
            self.list.removeWidget(row)
            row.deleteLater()
        self.rows = []
        if chat is None:
            return
        group = chat.group
        self.title.setText(group.name)
        self.turns.setValue(max(1, group.settings.auto_mode_turns))
        nxt = self.controller.next_speaker() if not self.controller.busy else None
        faces = member_portraits(self.store, group.id)
        for m in group.members:
            row = MemberRow(
                self,
                m.character_id,
                m.name,
                m.muted,
                m.character_id == nxt,
                faces.get(m.character_id),
            )
            self.rows.append(row)
            self.list.addWidget(row)
        self._show_buttons()

    def _show_buttons(self) -> None:
        busy = self.controller.busy
        for row in self.rows:
            row.speak.setEnabled(not busy)
            row.speak_as.setEnabled(not busy)
        self.stop_button.setEnabled(busy or self.controller.auto_running)

    def _typed(self) -> str:
        return self.composer.toPlainText() if self.composer is not None else ""

    def let_speak(self, character_id: int) -> bool:
        """The member answers now; what is typed is sent first as the user's message."""
        text = self._typed()
        done = self.controller.let_speak(character_id, text)
        if done and text and self.composer is not None:
            self.composer.clear()
        return done

    def speak_as(self, character_id: int) -> bool:
        """What is typed becomes the member's line; the message box empties when it is in."""
        text = self._typed()
        if not text.strip():
            self.controller.error.emit(
                self.tr("Type the line in the message box, then press Speak as.")
            )
            return False
        done = self.controller.speak_as(character_id, text)
        if done and self.composer is not None:
            self.composer.clear()
        return done

    def set_muted(self, character_id: int, muted: bool) -> None:
        self._change(lambda gid: self.store.groups.set_muted(gid, character_id, muted))

    def move(self, character_id: int, step: int) -> None:
        self._change(lambda gid: self.store.groups.move_member(gid, character_id, step))

    def _change(self, write) -> None:
        chat = self.controller.group_chat
        if chat is None:
            return
        try:
            write(chat.group.id)
        except (StoreError, ValueError) as exc:
            self.controller.error.emit(str(exc))
        self.refresh()

    def _on_auto(self, on: bool) -> None:
        if on and not self.controller.auto_running:
            if not self.controller.start_auto(self.turns.value()):
                self.auto_button.setChecked(False)
        elif not on:
            self.controller.stop_auto()

    def _show_auto(self, running: bool) -> None:
        self.auto_button.blockSignals(True)
        self.auto_button.setChecked(running)
        self.auto_button.blockSignals(False)
        self._show_buttons()
