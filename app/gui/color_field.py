"""A colour setting: a swatch that opens a colour picker, the #rrggbb value beside it (typed
values work too), and a button back to the theme's colour (the empty value)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QToolButton,
    QWidget,
)


class ColorField(QWidget):
    changed = Signal(str)

    def __init__(self, default: str = "#808080", parent=None) -> None:
        super().__init__(parent)
        self.default = default  # shown in the swatch while the value is empty
        self.swatch = QToolButton()
        self.swatch.setAccessibleName(self.tr("Pick a colour"))
        self.swatch.setToolTip(self.tr("Pick a colour"))
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(self.tr("theme's colour"))
        self.edit.setMaxLength(7)
        self.edit.setAccessibleName(self.tr("Colour"))
        self.reset = QPushButton(self.tr("Default"))
        self.reset.setToolTip(self.tr("Use the theme's colour"))
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.swatch)
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.reset)
        self.swatch.clicked.connect(self.pick)
        self.reset.clicked.connect(lambda: self.setText(""))
        self.edit.textChanged.connect(self._on_text)
        self._on_text("")

    def setAccessibleName(self, name: str) -> None:  # noqa: N802 (Qt's name)
        """The dialog names the row; each part is named after it for screen readers."""
        super().setAccessibleName(name)
        self.edit.setAccessibleName(name)
        self.swatch.setAccessibleName(self.tr("Pick the {0}").format(name.lower()))
        self.reset.setAccessibleName(self.tr("{0}: the theme's").format(name))

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, value: str) -> None:  # noqa: N802 (the line edit's API, for the dialog)
        self.edit.setText(value)

    def shown_color(self) -> QColor:
        value = self.text()
        valid = value.startswith("#") and QColor.isValidColorName(value)
        return QColor(value if valid else self.default)

    def pick(self) -> None:
        color = QColorDialog.getColor(self.shown_color(), self, self.tr("Choose a colour"))
        if color.isValid():
            self.setText(color.name())

    def _on_text(self, _text: str) -> None:
        swatch = QPixmap(18, 18)
        swatch.fill(self.shown_color())
        self.swatch.setIcon(QIcon(swatch))
        self.changed.emit(self.text())
