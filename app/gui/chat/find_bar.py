"""Ctrl+F: find text in the open chat, newest match first.

The search runs on a background thread against the store's full-text index (`Reader.
find_in_path`), which also lists the path's ids; stepping through the hits then costs
nothing, and showing one loads only the page around it (`ChatModel.show_around`), so the
oldest message of a 100,000-message chat is reached without laying out the pages between.
"""

from __future__ import annotations

import bisect
import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QListView, QPushButton, QWidget

from app.core.store.reader import PathHits, Reader
from app.gui.chat.model import ChatModel
from app.gui.models.jobs import JobSlot

LOAD_LATER_PX = 40  # this close to the bottom of a window left by a jump, the next page loads


def find_in_chat(path: Path, chat_id: int, needle: str, cancel: threading.Event) -> PathHits:
    with Reader(path) as reader:
        return reader.find_in_path(chat_id, needle, cancel)


class FindBar(QWidget):
    searched = Signal(int)  # a search has finished: how many messages hold the text

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
        self.current: int | None = None  # the hit shown: its position on the path
        self._hits: PathHits | None = None  # None: not searched yet, or the path changed
        self._wanted: int | None = None  # the direction asked for while the search runs
        self._job = JobSlot()
        self.field.returnPressed.connect(lambda: self.find(-1))
        self.field.textChanged.connect(self._restart)
        previous.clicked.connect(lambda: self.find(-1))
        following.clicked.connect(lambda: self.find(+1))
        close.clicked.connect(self.hide)
        model.path_changed.connect(self._forget)
        view.verticalScrollBar().valueChanged.connect(self._maybe_load_later)
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
        self._forget()
        self.result.clear()
        self._mark(None)

    def _forget(self) -> None:
        """The hits described another path (or text): the next Find searches again."""
        self._job.drop()
        self._hits, self.current, self._wanted = None, None, None

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

    # --- searching ----------------------------------------------------------------------
    def find(self, direction: int) -> int | None:
        """Show the next match older (-1) or newer (+1) than the current one; its position
        on the path. The first Find of a text searches in the background and returns None;
        `searched` says when it is done, and the match is shown then."""
        needle = self.field.text()
        if not needle or self.model.chat_id is None or self.model.store_path is None:
            return None
        if self._hits is None or self._hits.needle != needle:
            self._search(needle, direction)
            return None
        return self._step(direction)

    def _search(self, needle: str, direction: int) -> None:
        self._wanted = direction
        self.result.setText(self.tr("searching…"))
        path, chat = self.model.store_path, self.model.chat_id
        self._job.start(
            lambda _report, cancel: find_in_chat(path, chat, needle, cancel),
            on_success=self._on_found,
            on_failure=self.result.setText,
            name="find-in-chat",
        )

    def _on_found(self, hits: PathHits) -> None:
        self._hits, self.current = hits, None
        direction, self._wanted = self._wanted, None
        if direction is not None:
            self._step(direction)
        self.searched.emit(len(hits.hits))

    def _step(self, direction: int) -> int | None:
        hits = self._hits.hits
        if self.current is None:
            start = len(self._hits.path) if direction < 0 else -1
        else:
            start = self.current
        if direction < 0:
            at = bisect.bisect_left(hits, start) - 1
        else:
            at = bisect.bisect_right(hits, start)
        if not 0 <= at < len(hits):
            self.result.setText(
                self.tr("no more matches") if hits else self.tr("no message holds this text")
            )
            return None
        self.current = hits[at]
        self._show(self.current)
        return self.current

    def _show(self, position: int) -> None:
        path = self._hits.path
        message_id = path[position]
        row = self.model.row_of(message_id)
        if row < 0:  # on a page not loaded: load the page around it instead of all between
            row = self.model.show_around(path, position)
        self._mark((message_id, self.field.text()))
        index = self.model.index(row)
        self.view.setCurrentIndex(index)
        self.view.scrollTo(index, QListView.ScrollHint.PositionAtCenter)
        self.result.setText(self.tr("message {0} of {1}").format(position + 1, len(path)))

    def _maybe_load_later(self, value: int) -> None:
        """Below a jump's window: scrolling down brings the next page."""
        bar = self.view.verticalScrollBar()
        if self.model.paging:  # the view moving while a page comes in is not the reader
            return
        if self.model.has_later() and value >= bar.maximum() - LOAD_LATER_PX:
            self.model.load_later()
