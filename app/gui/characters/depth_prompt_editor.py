"""The character's note (SillyTavern's `data.extensions.depth_prompt`: `prompt`, `depth`,
`role`): text put into the chat at a depth, every turn. Written back only when changed."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QFormLayout, QPlainTextEdit, QSpinBox, QWidget

ROLES = ("system", "user", "assistant")
DEFAULT_DEPTH = 4  # SillyTavern's depth_prompt_depth_default


class DepthPromptEditor(QWidget):
    def __init__(self, card_data: dict, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        ext = card_data.get("extensions") if isinstance(card_data.get("extensions"), dict) else {}
        raw = ext.get("depth_prompt") if isinstance(ext.get("depth_prompt"), dict) else {}
        self.text = QPlainTextEdit(str(raw.get("prompt") or ""))
        self.text.setAccessibleName(self.tr("Character's note"))
        self.text.setTabChangesFocus(True)
        self.text.setPlaceholderText(
            self.tr(
                "Put into the chat at the depth below, every turn (SillyTavern's character's note)"
            )
        )
        self.depth = QSpinBox()
        self.depth.setRange(0, 1000)
        self.depth.setAccessibleName(self.tr("Character's note depth"))
        depth = raw.get("depth")
        self.depth.setValue(
            int(depth)
            if isinstance(depth, (int, float)) and not isinstance(depth, bool)
            else DEFAULT_DEPTH
        )
        self.role = QComboBox()
        self.role.setAccessibleName(self.tr("Character's note role"))
        for role in ROLES:
            self.role.addItem(self.tr(role.capitalize()), role)
        role = raw.get("role")
        self.role.setCurrentIndex(ROLES.index(role) if role in ROLES else 0)
        self._shown = self.values()
        form = QFormLayout(self)
        form.addRow(self.tr("Character's note"), self.text)
        form.addRow(self.tr("Depth"), self.depth)
        form.addRow(self.tr("Role"), self.role)

    def values(self) -> dict:
        return {
            "prompt": self.text.toPlainText(),
            "depth": self.depth.value(),
            "role": self.role.currentData(),
        }

    def apply(self, card_data: dict) -> bool:
        """Write the note into `card_data` if the user changed it; True if so."""
        values = self.values()
        if values == self._shown:
            return False
        ext = card_data.setdefault("extensions", {})
        ext["depth_prompt"] = {**(ext.get("depth_prompt") or {}), **values}
        return True
