"""The groups, listed under the characters of the library: open, create, edit, delete.

Each group shows its picture (the members' collage by default) and its members' names.
Deleting moves the group and its chats to the trash; Undo in the status message brings them
back (the members stay in the library either way).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.chat_io.errors import ChatIOError
from app.core.chat_io.st_group import export_st_group, import_st_group
from app.core.store import Store, StoreError
from app.gui.groups.avatar import group_avatar
from app.gui.groups.editor import GroupEditor

ICON = 40
ID_ROLE = Qt.ItemDataRole.UserRole + 1


class GroupPanel(QWidget):
    group_chosen = Signal(int)
    groups_changed = Signal()
    status_message = Signal(str)

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.model = QStandardItemModel(self)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setIconSize(QSize(ICON, ICON))
        self.view.setAccessibleName(self.tr("Groups"))
        self.view.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.new_button = QPushButton(self.tr("New group…"))
        self.edit_button = QPushButton(self.tr("Edit…"))
        self.delete_button = QPushButton(self.tr("Delete"))
        self.undo_button = QPushButton(self.tr("Undo delete"))
        self.undo_button.hide()
        self.import_button = QPushButton(self.tr("Import…"))
        self.import_button.setToolTip(
            self.tr(
                "A SillyTavern group (groups/*.json) with its chats from the group chats folder"
            )
        )
        self.export_button = QPushButton(self.tr("Export…"))
        self.export_button.setToolTip(
            self.tr("The group and its chats, in SillyTavern's groups/ and group chats/ folders")
        )
        self._last_deleted: int | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel(self.tr("Groups")))
        lay.addWidget(self.view, 1)
        for pair in (
            (self.new_button, self.edit_button),  # short rows: the library
            (self.import_button, self.export_button),  # column stays narrow
            (self.delete_button, self.undo_button),
        ):
            row = QHBoxLayout()
            for button in pair:
                row.addWidget(button)
            lay.addLayout(row)
        self.view.activated.connect(self._on_activated)
        self.view.clicked.connect(self._on_activated)
        self.new_button.clicked.connect(lambda: self.edit(None))
        self.edit_button.clicked.connect(lambda: self.edit(self.current_id()))
        self.delete_button.clicked.connect(self.delete_current)
        self.undo_button.clicked.connect(self.undo_delete)
        self.import_button.clicked.connect(self._choose_import)
        self.export_button.clicked.connect(self._choose_export)
        self.refresh()

    def refresh(self) -> None:
        current = self.current_id()
        self.model.clear()
        for group in self.store.groups.all():
            item = QStandardItem(QIcon(group_avatar(self.store, group.id, ICON)), group.name)
            item.setData(group.id, ID_ROLE)
            item.setToolTip(", ".join(m.name for m in group.members) or self.tr("No members"))
            self.model.appendRow(item)
            if group.id == current:
                self.view.setCurrentIndex(item.index())
        has = self.model.rowCount() > 0
        for button in (self.edit_button, self.delete_button, self.export_button):
            button.setEnabled(has)

    def current_id(self) -> int | None:
        index = self.view.currentIndex()
        return index.data(ID_ROLE) if index.isValid() else None

    def select(self, group_id: int) -> None:
        for row in range(self.model.rowCount()):
            if self.model.item(row).data(ID_ROLE) == group_id:
                self.view.setCurrentIndex(self.model.index(row, 0))

    def _on_activated(self, index) -> None:
        if index.isValid():
            self.group_chosen.emit(index.data(ID_ROLE))

    def edit(self, group_id: int | None) -> int | None:
        """Open the editor; returns the group's id when it was saved."""
        dialog = GroupEditor(self.store, group_id, self)
        if dialog.exec() != GroupEditor.DialogCode.Accepted:
            return None
        self.refresh()
        self.select(dialog.group_id)
        self.groups_changed.emit()
        if group_id is None:
            self.group_chosen.emit(dialog.group_id)
        return dialog.group_id

    def delete_current(self) -> None:
        gid = self.current_id()
        if gid is None:
            return
        name = self.store.groups.get(gid).name
        self.store.groups.delete(gid)
        self._last_deleted = gid
        self.refresh()
        self.undo_button.show()
        self.groups_changed.emit()
        self.status_message.emit(self.tr("{0} and its chats went to the trash.").format(name))

    def undo_delete(self) -> None:
        if self._last_deleted is not None:
            self.store.groups.restore(self._last_deleted)
            self._last_deleted = None
            self.undo_button.hide()
            self.refresh()
            self.groups_changed.emit()

    # --- SillyTavern files ------------------------------------------------------------
    def _choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Import a SillyTavern group"), "", self.tr("SillyTavern group (*.json)")
        )
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> int | None:
        """Import the group and its chats; what went wrong or needs saying goes to the
        status line. Returns the new group's id."""
        try:
            result = import_st_group(self.store, path)
        except (ChatIOError, StoreError, ValueError) as exc:
            self.status_message.emit(str(exc))
            return None
        self.refresh()
        self.select(result.group_id)
        self.groups_changed.emit()
        chats = self.tr("{0} chat(s)").format(len(result.chat_ids))
        self.status_message.emit(
            " ".join(
                [
                    self.tr("Imported {0} with {1}.").format(
                        self.store.groups.get(result.group_id).name, chats
                    ),
                    *result.warnings,
                ]
            )
        )
        self.group_chosen.emit(result.group_id)
        return result.group_id

    def _choose_export(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Export to a folder"))
        if folder:
            self.export_to(folder)

    def export_to(self, folder: str) -> list:
        gid = self.current_id()
        if gid is None:
            return []
        try:
            files = export_st_group(self.store, gid, folder)
        except (OSError, StoreError) as exc:
            self.status_message.emit(self.tr("Could not export: {0}").format(exc))
            return []
        self.status_message.emit(self.tr("Exported {0} file(s) to {1}.").format(len(files), folder))
        return files
