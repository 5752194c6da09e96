"""Ctrl+F: find text in the open chat, newest match first, loading earlier pages as needed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QListView, QPushButton, QWidget

from app.gui.chat.model import ChatModel


class FindBar(QWidget):
    def __init__(self, model: ChatModel, view: QListView, parent=None) -> None:
        super().__init__(parent)
        self.model, self.view = model, view
        self.field = QLineEdit()
        self.field.setPlaceholderText(self.tr("Find in this chat"))
        self.field.setAccessibleName(self.tr("Find in this chat"))
        self.result = QLabel()
        previous = QPushButton(self.tr("Older"))
        following = QPushButton(self.tr("Newer"))
        close = QPushButton(self.tr("Close"))
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.field, self.result, previous, following, close):
            lay.addWidget(w)
        self._current: int | None = None  # index into model.messages()
        self.field.returnPressed.connect(lambda: self.find(-1))
        self.field.textChanged.connect(self._restart)
        previous.clicked.connect(lambda: self.find(-1))
        following.clicked.connect(lambda: self.find(+1))
        close.clicked.connect(self.hide)
        QShortcut(
            QKeySequence(Qt.Key.Key_Escape),
            self,
            self.hide,
            context=Qt.ShortcutContext.WidgetWithChildrenShortcut,
        )
        self.hide()

    def open(self) -> None:
        self.show()
        self.field.setFocus()
        self.field.selectAll()

    def _restart(self) -> None:
        self._current = None
        self.result.clear()
        self._mark(None)

    def hideEvent(self, event) -> None:  # noqa: N802
        self._mark(None)
        super().hideEvent(event)

    def _mark(self, mark: tuple[int, str] | None) -> None:
        """Tell the bubbles which message's matches to paint highlighted."""
        delegate = self.view.itemDelegate()
        if getattr(delegate, "find_mark", None) != mark:
            delegate.find_mark = mark
            self.view.doItemsLayout()  # the marked document is a different one
            self.view.viewport().update()

    def find(self, direction: int) -> int | None:
        """Select the next match older (-1) or newer (+1) than the current one."""
        needle = self.field.text().casefold()
        messages = self.model.messages()
        if not needle or not messages:
            return None
        start = len(messages) if self._current is None else self._current
        order = range(start - 1, -1, -1) if direction < 0 else range(start + 1, len(messages))
        hit = next((i for i in order if needle in messages[i].text.casefold()), None)
        if hit is None:
            self.result.setText(self.tr("no more matches"))
            return None
        self._current = hit
        self._mark((messages[hit].id, self.field.text()))
        self._show(hit, len(messages))
        return hit

    def _show(self, hit: int, total: int) -> None:
        while total - self.model.rowCount() > hit:  # the match is on a page not loaded yet
            self.model.load_earlier()
        row = hit - (total - self.model.rowCount())
        index = self.model.index(row)
        self.view.setCurrentIndex(index)
        self.view.scrollTo(index)
        self.result.setText(self.tr("message {0} of {1}").format(hit + 1, total))
