"""Create or edit a group: its name, members (from the library), and how it talks.

Members keep their order: a new member joins at the end (reorder them in the member list
beside the chat); unticking one removes it from the group, its past lines stay in the chats.
Nothing is written until Save, and a refused value (no name) is said and keeps the dialog.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.store import Store, StoreError
from app.core.store.groups import CardMode, GroupSettings, Strategy
from app.gui.characters.card_editor import AvatarError, decode_avatar

STRATEGY_LABELS = {
    Strategy.NATURAL: "Natural (mentions, then talkativeness)",
    Strategy.LIST: "List (everyone in order)",
    Strategy.MANUAL: "Manual (you pick who speaks)",
}
MODE_LABELS = {
    CardMode.SWAP: "Swap cards (only the speaker's)",
    CardMode.JOIN: "Join cards (every member's, muted left out)",
    CardMode.JOIN_MUTED: "Join cards (every member's, muted too)",
}


class GroupEditor(QDialog):
    def __init__(
        self, store: Store, group_id: int | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.store, self.group_id = store, group_id
        self.setWindowTitle(self.tr("Edit group") if group_id else self.tr("New group"))
        group = store.groups.get(group_id) if group_id is not None else None
        settings = group.settings if group else GroupSettings()
        self.name = QLineEdit(group.name if group else "")
        self.members = QListWidget()
        self.members.setAccessibleName(self.tr("Members"))
        current = [m.character_id for m in group.members] if group else []
        for row in store.characters.list():
            item = QListWidgetItem(row.name)
            item.setData(Qt.ItemDataRole.UserRole, row.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if row.id in current else Qt.CheckState.Unchecked
            )
            self.members.addItem(item)
        self.strategy = self._combo(STRATEGY_LABELS, settings.strategy)
        self.mode = self._combo(MODE_LABELS, settings.card_mode)
        self.prefix = QLineEdit(settings.join_prefix)
        self.prefix.setPlaceholderText("[<FIELDNAME> of {{char}}]")
        self.suffix = QLineEdit(settings.join_suffix)
        self.self_responses = QCheckBox(self.tr("A member may answer its own message"))
        self.self_responses.setChecked(settings.allow_self_responses)
        self.turns = QSpinBox(minimum=1, maximum=200, value=max(1, settings.auto_mode_turns))
        self.scenario = QPlainTextEdit(settings.scenario)
        self.scenario.setPlaceholderText(self.tr("Empty: each member's own scenario"))
        self.problem = QLabel()
        self.problem.setTextFormat(Qt.TextFormat.PlainText)
        # None: unchanged; b"": back to the members' collage; else the new picture (PNG)
        self.picture: bytes | None = None
        self.picture_button = QPushButton(self.tr("Picture…"))
        self.collage_button = QPushButton(self.tr("Members' collage"))
        self.picture_button.clicked.connect(self._choose_picture)
        self.collage_button.clicked.connect(lambda: self._set_picture(b""))
        self._layout()

    def _combo(self, labels: dict, chosen) -> QComboBox:
        box = QComboBox()
        for value, label in labels.items():
            box.addItem(self.tr(label), value)
        box.setCurrentIndex(list(labels).index(chosen))
        return box

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow(self.tr("Name"), self.name)
        pictures = QHBoxLayout()
        pictures.addWidget(self.picture_button)
        pictures.addWidget(self.collage_button)
        form.addRow(self.tr("Group picture"), pictures)
        form.addRow(self.tr("Members"), self.members)
        form.addRow(self.tr("Who speaks next"), self.strategy)
        form.addRow(self.tr("Cards in the prompt"), self.mode)
        form.addRow(self.tr("Joined field prefix"), self.prefix)
        form.addRow(self.tr("Joined field suffix"), self.suffix)
        form.addRow("", self.self_responses)
        form.addRow(self.tr("Auto-mode replies"), self.turns)
        form.addRow(self.tr("Group scenario"), self.scenario)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.problem)
        lay.addWidget(buttons)

    def _choose_picture(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Group picture"), "", self.tr("Images (*.png *.jpg *.jpeg *.webp)")
        )
        if path:
            self.set_picture_file(path)

    def set_picture_file(self, path: str) -> bool:
        try:
            self._set_picture(decode_avatar(path))
        except AvatarError as exc:
            self.problem.setText(str(exc))
            return False
        return True

    def _set_picture(self, data: bytes) -> None:
        self.picture = data
        self.problem.setText(
            self.tr("The members' collage will be shown.")
            if not data
            else self.tr("The new picture is used when you save.")
        )

    def chosen_members(self) -> list[int]:
        return [
            self.members.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.members.count())
            if self.members.item(i).checkState() == Qt.CheckState.Checked
        ]

    def settings(self) -> GroupSettings:
        # Qt hands a str-valued enum back as its plain string
        return GroupSettings(
            strategy=Strategy(self.strategy.currentData()),
            card_mode=CardMode(self.mode.currentData()),
            join_prefix=self.prefix.text(),
            join_suffix=self.suffix.text(),
            allow_self_responses=self.self_responses.isChecked(),
            auto_mode_turns=self.turns.value(),
            scenario=self.scenario.toPlainText(),
        )

    def save(self) -> None:
        try:
            self._write()
        except (StoreError, ValueError) as exc:
            self.problem.setText(str(exc))
            return
        self.accept()

    def _write(self) -> None:
        chosen = self.chosen_members()
        if not chosen:
            raise ValueError(self.tr("Tick at least one member."))
        groups = self.store.groups
        if self.group_id is None:
            self.group_id = groups.create(
                self.name.text(), chosen, self.settings(), avatar=self.picture or None
            )
            return
        if self.picture is not None:
            groups.set_avatar(self.group_id, self.picture or None)
        groups.rename(self.group_id, self.name.text())
        groups.set_settings(self.group_id, self.settings())
        old = [m.character_id for m in groups.get(self.group_id).members]
        for cid in chosen:
            if cid not in old:
                groups.add_member(self.group_id, cid)
        for cid in old:
            if cid not in chosen:
                groups.remove_member(self.group_id, cid)
