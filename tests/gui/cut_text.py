"""Wrapped labels that show fewer lines than their text needs: what a user sees cut off.

Qt lays a dialog out for the text it opened with; a label that grows later (an answer from
a background probe) keeps the old height unless the dialog is fitted again.
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget


def cut_labels(root: QWidget) -> list[str]:
    """The start of each visible word-wrapped label under `root` shorter than its text."""
    return [
        label.text()[:40]
        for label in root.findChildren(QLabel)
        if label.wordWrap()
        and label.isVisibleTo(root)
        and label.height() < label.heightForWidth(label.width())
    ]
