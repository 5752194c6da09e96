"""The chat's author's note and scenario (SillyTavern's `chat_metadata` keys `note_prompt`,
`note_interval`, `note_position`, `note_depth`, `note_role` and `scenario`), with a default
for chats that have no note of their own (the app's settings)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QMessageBox,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.appdata.settings import Settings
from app.core.chat.world_info import default_note, save_authors_note, save_scenario
from app.core.prompt.worldinfo import AuthorsNote, NotePosition, Role
from app.core.prompt.worldinfo.notes import NOTE_KEYS
from app.core.store import Store, StoreError
from app.core.store.world_state import WorldInfoStore

POSITIONS = (
    ("After the system block", NotePosition.IN_PROMPT),
    ("In the chat at a depth", NotePosition.IN_CHAT),
    ("Before the system block", NotePosition.BEFORE_PROMPT),
)
ROLES = (("System", Role.SYSTEM), ("User", Role.USER), ("Assistant", Role.ASSISTANT))


class AuthorsNoteDialog(QDialog):
    def __init__(
        self,
        store: Store,
        chat_id: int,
        settings: Settings,
        save_settings=None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Author's note"))
        self.wi, self.chat_id = WorldInfoStore(store), chat_id
        self.settings, self.save_settings = settings, save_settings
        meta = self.wi.chat_metadata(chat_id)
        has_own = any(key in meta for key in NOTE_KEYS)
        note = AuthorsNote.from_chat_metadata(meta) if has_own else default_note(settings)
        self.text = QPlainTextEdit(note.text)
        self.position, self.role = QComboBox(), QComboBox()
        self.depth, self.interval = QSpinBox(), QSpinBox()
        self.scenario = QPlainTextEdit(str(meta.get("scenario") or ""))
        self.as_default = QCheckBox(self.tr("Use for chats without a note of their own"))
        self._build(note)

    def _build(self, note: AuthorsNote) -> None:
        tr = self.tr
        for box, items, value in (
            (self.position, POSITIONS, note.position),
            (self.role, ROLES, note.role),
        ):
            for label, member in items:
                box.addItem(tr(label), member)
            box.setCurrentIndex(box.findData(value))
        self.depth.setRange(0, 1000)
        self.depth.setValue(note.depth)
        self.interval.setRange(0, 1000)
        self.interval.setValue(note.interval)
        self.interval.setToolTip(tr("Every N user messages; 1: always; 0: off"))
        self.scenario.setPlaceholderText(tr("Empty: the card's scenario"))
        for widget, name in (
            (self.text, "Author's note"),
            (self.position, "Note position"),
            (self.depth, "Note depth"),
            (self.role, "Note role"),
            (self.interval, "Note interval"),
            (self.scenario, "Scenario for this chat"),
        ):
            widget.setAccessibleName(tr(name))
        form = QFormLayout()
        form.addRow(tr("Author's note"), self.text)
        form.addRow(tr("Position"), self.position)
        form.addRow(tr("Depth"), self.depth)
        form.addRow(tr("Role"), self.role)
        form.addRow(tr("Every"), self.interval)
        form.addRow(self.as_default)
        form.addRow(tr("Scenario for this chat"), self.scenario)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def note(self) -> AuthorsNote:
        return AuthorsNote(
            self.text.toPlainText(),
            self.interval.value(),
            self.position.currentData(),
            self.depth.value(),
            self.role.currentData(),
        )

    def accept(self) -> None:
        note = self.note()
        try:
            save_authors_note(self.wi, self.chat_id, note)
            save_scenario(self.wi, self.chat_id, self.scenario.toPlainText().strip())
        except StoreError as exc:
            QMessageBox.warning(self, self.tr("Author's note"), str(exc))
            return
        if self.as_default.isChecked():
            s = self.settings
            s.note_default_text, s.note_default_interval = note.text, note.interval
            s.note_default_position, s.note_default_depth = int(note.position), note.depth
            s.note_default_role = int(note.role)
            if self.save_settings is not None:
                self.save_settings()
        super().accept()


def show_authors_note(window) -> AuthorsNoteDialog | None:
    """Open the note of the chat on screen in `window` (a MainWindow); None without one."""
    chat_id = window.controller.chat_id
    if chat_id is None:
        return None
    dialog = AuthorsNoteDialog(
        window.ctx.store, chat_id, window.ctx.settings, window.ctx.save_settings, window
    )
    dialog.finished.connect(dialog.deleteLater)
    dialog.show()
    return dialog
