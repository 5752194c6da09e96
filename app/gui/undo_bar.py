"""A quiet bar that says what was just deleted and offers Undo, instead of a confirmation."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton


def make_undo_bar(owner, on_undo: Callable[[], object]) -> QFrame:
    """Build the bar on `owner` as `undo_bar`, `undo_label` and `undo_button` (hidden)."""
    owner.undo_bar = QFrame()
    owner.undo_bar.setFrameShape(QFrame.Shape.StyledPanel)
    owner.undo_label = QLabel()
    owner.undo_label.setTextFormat(Qt.TextFormat.PlainText)  # names are untrusted text
    owner.undo_button = QPushButton(owner.tr("Undo"))
    owner.undo_button.setAccessibleName(owner.tr("Undo delete"))
    owner.undo_button.clicked.connect(on_undo)
    bar = QHBoxLayout(owner.undo_bar)
    bar.setContentsMargins(6, 2, 6, 2)
    bar.addWidget(owner.undo_label, 1)
    bar.addWidget(owner.undo_button)
    owner.undo_bar.hide()
    return owner.undo_bar
