"""The persona manager: who the user is in a chat (a name for {{user}} and a description
the prompt carries). Several personas, one default; each chat may choose its own.

Edits are saved as the user types (after a short pause) and when another persona is
chosen or the dialog closes, so there is no Save button to forget.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.undo_bar import make_undo_bar
from app.gui.window_state import remember_size

ID_ROLE = Qt.ItemDataRole.UserRole


class PersonasDialog(QDialog):
    """Add, edit, delete (with undo) and choose the default persona.

    `personas_changed` fires after every change, so the chat header's persona combo and
    the open chat's prompt can follow."""

    personas_changed = Signal()

    def __init__(self, store, parent=None) -> None:
        super().__init__(parent)
        self.store = store
        self._editing: int | None = None
        self._deleted: list[tuple[str, str, bool, list[int]]] = []
        self.setWindowTitle(self.tr("Personas"))
        self.resize(600, 380)
        remember_size(self, "personas")
        self._build()
        self._save_timer = QTimer(self, singleShot=True, interval=600, timeout=self.save)
        self.name_edit.textEdited.connect(lambda _t: self._save_timer.start())
        self.description_edit.textChanged.connect(self._on_description_changed)
        self.list.currentItemChanged.connect(self._on_current)
        self.reload()

    # --- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        self.list = QListWidget()
        self.list.setAccessibleName(self.tr("Personas"))
        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName(self.tr("Persona name"))
        self.name_edit.setPlaceholderText(self.tr("The name {{user}} stands for"))
        self.description_edit = QPlainTextEdit()
        self.description_edit.setAccessibleName(self.tr("Persona description"))
        self.description_edit.setPlaceholderText(
            self.tr(
                "Who you are in the story: looks, background, manner. The model reads "
                "this with the character's card."
            )
        )
        self.default_label = QLabel()
        self.default_label.setTextFormat(Qt.TextFormat.PlainText)  # persona names: imported
        form = QFormLayout()
        form.addRow(self.tr("&Name:"), self.name_edit)
        form.addRow(self.tr("&Description:"), self.description_edit)
        form.addRow("", self.default_label)
        self.editor = QWidget()
        self.editor.setLayout(form)
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        left.addLayout(self._list_buttons())
        top = QHBoxLayout()
        top.addLayout(left, 2)
        top.addWidget(self.editor, 3)
        lay = QVBoxLayout(self)
        lay.addLayout(top, 1)
        lay.addWidget(self._undo_bar())
        close = QPushButton(self.tr("Close"))
        close.setAutoDefault(False)
        close.clicked.connect(self.close)
        lay.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)

    def _list_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.add_button = QPushButton(self.tr("Add"))
        self.delete_button = QPushButton(self.tr("Delete"))
        self.default_button = QPushButton(self.tr("Make default"))
        self.default_button.setToolTip(
            self.tr("Chats that have not chosen a persona use the default one")
        )
        for button, slot in (
            (self.add_button, self._add_clicked),
            (self.delete_button, self._delete_clicked),
            (self.default_button, self._default_clicked),
        ):
            button.setAutoDefault(False)
            button.clicked.connect(slot)
            row.addWidget(button)
        return row

    def _undo_bar(self) -> QFrame:
        return make_undo_bar(self, self.undo_delete)

    # --- the list ----------------------------------------------------------------------
    def reload(self, select: int | None = None) -> None:
        keep = select if select is not None else self._editing
        self.list.blockSignals(True)
        self.list.clear()
        for row in self.store.personas.list():
            label = row.name or self.tr("(no name)")
            if row.is_default:
                label = self.tr("{0}  (default)").format(label)
            item = QListWidgetItem(label)
            item.setData(ID_ROLE, row.id)
            self.list.addItem(item)
            if row.id == keep:
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)
        self.list.blockSignals(False)
        self._show(self.selected_id())

    def ids(self) -> list[int]:
        return [self.list.item(i).data(ID_ROLE) for i in range(self.list.count())]

    def selected_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item is not None else None

    def select(self, persona_id: int) -> None:
        self.reload(select=persona_id)

    def _show(self, persona_id: int | None) -> None:
        """Fill the editor with `persona_id` (or empty and disabled when there is none)."""
        self._editing = None  # filling the fields is not an edit
        row = self.store.personas.get(persona_id) if persona_id is not None else None
        self.name_edit.setText(row.name if row else "")
        self.description_edit.setPlainText(row.description if row else "")
        self.default_label.setText(
            self.tr("This is the default persona.") if row and row.is_default else ""
        )
        self.editor.setEnabled(row is not None)
        self.delete_button.setEnabled(row is not None)
        self.default_button.setEnabled(row is not None and not row.is_default)
        self._editing = persona_id

    def _on_current(self, current, _previous) -> None:
        self.save()
        self._show(current.data(ID_ROLE) if current is not None else None)

    def _on_description_changed(self) -> None:
        if self._editing is not None:
            self._save_timer.start()

    # --- actions -----------------------------------------------------------------------
    def save(self) -> bool:
        """Write the editor's fields to the persona being edited, if they changed."""
        self._save_timer.stop()
        if self._editing is None:
            return False
        row = self.store.personas.get(self._editing)
        name = self.name_edit.text().strip() or row.name  # a persona keeps a name
        description = self.description_edit.toPlainText()
        if (name, description) == (row.name, row.description):
            return False
        self.store.personas.update(self._editing, name=name, description=description)
        if name != row.name:
            self._relabel(self._editing, name, bool(row.is_default))
        self.personas_changed.emit()
        return True

    def _relabel(self, persona_id: int, name: str, is_default: bool) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(ID_ROLE) == persona_id:
                self.list.item(i).setText(
                    self.tr("{0}  (default)").format(name) if is_default else name
                )

    def add(self, name: str, description: str = "") -> int:
        self.save()
        persona_id = self.store.personas.add(name, description)
        self.reload(select=persona_id)
        self.personas_changed.emit()
        return persona_id

    def _add_clicked(self) -> None:
        self.add(self.tr("New persona"))
        self.name_edit.selectAll()
        self.name_edit.setFocus()

    def make_default(self, persona_id: int) -> None:
        self.save()
        self.store.personas.set_default(persona_id)
        self.reload(select=persona_id)
        self.personas_changed.emit()

    def _default_clicked(self) -> None:
        if (persona_id := self.selected_id()) is not None:
            self.make_default(persona_id)

    def delete(self, persona_id: int) -> None:
        """Delete (chats that chose it fall back to the default); Undo brings back its
        name, description, default flag and the chats that had chosen it."""
        self.save()
        row = self.store.personas.get(persona_id)
        chats = [c.id for c in self.store.chats.all() if c.persona_id == persona_id]
        self.store.personas.delete(persona_id)
        self._deleted.append((row.name, row.description, bool(row.is_default), chats))
        self._editing = None
        self.reload()
        self.personas_changed.emit()
        self.undo_label.setText(self.tr("Deleted “{0}”.").format(row.name))
        self.undo_bar.show()

    def _delete_clicked(self) -> None:
        if (persona_id := self.selected_id()) is not None:
            self.delete(persona_id)

    def undo_delete(self) -> int | None:
        if not self._deleted:
            return None
        name, description, was_default, chats = self._deleted.pop()
        persona_id = self.add(name, description)
        for chat_id in chats:
            self.store.personas.set_for_chat(chat_id, persona_id)
        if was_default:
            self.make_default(persona_id)
        if not self._deleted:
            self.undo_bar.hide()
        return persona_id

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.save()
        super().closeEvent(event)

    def done(self, result: int) -> None:  # Escape closes through done(), not closeEvent
        self.save()
        super().done(result)
