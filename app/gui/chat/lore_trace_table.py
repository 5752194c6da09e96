"""The inspector's lore table: every world-info entry, whether it fired, and why.

Entry names and reasons come from cards and books, so every cell is plain text.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from app.gui.plain_text import plain_tip

COLUMNS = ("Entry", "Fired", "Position", "Tokens", "Why")


class LoreTraceTable(QTableWidget):
    def __init__(self, trace, parent=None) -> None:
        super().__init__(len(trace), len(COLUMNS), parent)
        self.setAccessibleName(self.tr("Lore entries and why they fired"))
        self.setHorizontalHeaderLabels([self.tr(c) for c in COLUMNS])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # fired entries first, each group in book order, so the answer is at the top
        rows = sorted(trace, key=lambda t: not t.fired)
        for row, item in enumerate(rows):
            cells = (
                item.entry,
                self.tr("yes") if item.fired else self.tr("no"),
                item.position,
                str(item.tokens) if item.fired else "",
                item.reason,
            )
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setToolTip(plain_tip(text))  # entry names come from the card
                if column == 3:
                    cell.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.setItem(row, column, cell)
        header = self.horizontalHeader()
        for column in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.verticalHeader().setVisible(False)
        self.setMaximumHeight(30 + 26 * min(len(rows), 8))

    def rows(self) -> list[tuple[str, ...]]:
        """The table as text, row by row (for tests and copying)."""
        return [
            tuple(self.item(r, c).text() for c in range(self.columnCount()))
            for r in range(self.rowCount())
        ]
