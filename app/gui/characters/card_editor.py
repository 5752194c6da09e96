"""The card editor: every V2/V3 field of a character, its avatar and its lorebook.

The dialog edits a copy of the Card. A field is written back only when its widget was
changed, so text the widgets would normalise (CRLF, a trailing `\\r`, tags holding commas)
and every field without a widget (extensions, nickname, assets, dates, unknown keys) come
out as they went in.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from app.core.cards import Card, to_v3_json
from app.gui.characters.depth_prompt_editor import DepthPromptEditor
from app.gui.characters.lorebook_editor import LorebookEditor, split_keys
from app.gui.characters.token_counter import TokenCounter, as_counter
from app.gui.window_state import remember_size

# The fields sent with every prompt: what the live token count measures.
PERMANENT_FIELDS = ("description", "personality", "scenario", "mes_example", "system_prompt")
MAX_AVATAR_SIDE = 8192  # larger images are refused before decoding
MAX_AVATAR_MB = 256  # Qt's allocation limit while decoding
STORED_AVATAR_SIDE = 1024  # what is kept: big enough for any card viewer
CHARS_PER_TOKEN = 3.5  # the estimate without a tokenizer


class AvatarError(ValueError):
    """An image that cannot become an avatar; the message names the file and the reason."""


def read_image(source: str | bytes, name: str = "") -> QImage:
    """An image file (or its bytes), refused before decoding when it is huge or not an image.

    Qt reads the header first and caps what decoding may allocate, so a crafted file cannot
    take the window down. Raises AvatarError naming the file."""
    label = name or (source if isinstance(source, str) else "the image")
    if isinstance(source, bytes):
        buffer = QBuffer()
        buffer.setData(QByteArray(source))
        buffer.open(QIODevice.OpenModeFlag.ReadOnly)
        reader = QImageReader(buffer)
    else:
        reader = QImageReader(source)
    reader.setAllocationLimit(MAX_AVATAR_MB)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > MAX_AVATAR_SIDE:
        raise AvatarError(
            f"{label}: the image is {size.width()}×{size.height()} pixels, over "
            f"the {MAX_AVATAR_SIDE}-pixel limit"
        )
    image = reader.read()
    if image.isNull():
        raise AvatarError(f"{label}: not an image Parlor can read ({reader.errorString()})")
    return image


def decode_avatar(source: str | bytes, name: str = "") -> bytes:
    """An image as PNG bytes of at most STORED_AVATAR_SIDE pixels a side."""
    image = read_image(source, name)
    if max(image.width(), image.height()) > STORED_AVATAR_SIDE:
        image = image.scaled(
            STORED_AVATAR_SIDE,
            STORED_AVATAR_SIDE,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    return png_bytes(image)


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data)


class GreetingsEditor(QWidget):
    """Alternate greetings: a list to pick one, a text box to write it."""

    changed = Signal()

    def __init__(self, greetings: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._texts = list(greetings)
        self.list = QListWidget()
        self.list.setAccessibleName(self.tr("Alternate greetings"))
        self.list.setMaximumWidth(200)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText(self.tr("Another first message the user can swipe to"))
        self.text.setAccessibleName(self.tr("Greeting text"))
        add = QPushButton(self.tr("Add"))
        add.setAccessibleName(self.tr("Add a greeting"))
        self.remove = QPushButton(self.tr("Remove"))
        self.remove.setAccessibleName(self.tr("Remove the greeting"))
        add.clicked.connect(self.add)
        self.remove.clicked.connect(self.remove_current)
        side = QVBoxLayout()
        side.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(self.remove)
        side.addLayout(row)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(side)
        layout.addWidget(self.text, 1)
        self.list.currentRowChanged.connect(self._show)
        self.text.textChanged.connect(self._on_text)
        self._refresh(0)

    def greetings(self) -> list[str]:
        return list(self._texts)

    def add(self) -> None:
        self._texts.append("")
        self._refresh(len(self._texts) - 1)
        self.text.setFocus()
        self.changed.emit()

    def remove_current(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            del self._texts[row]
            self._refresh(min(row, len(self._texts) - 1))
            self.changed.emit()

    def _label(self, row: int) -> str:
        first = self._texts[row].strip().splitlines()[0] if self._texts[row].strip() else ""
        return self.tr("{0}. {1}").format(row + 1, first[:40] or self.tr("(empty)"))

    def _refresh(self, select: int) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        self.list.addItems([self._label(i) for i in range(len(self._texts))])
        self.list.blockSignals(False)
        self.list.setCurrentRow(select)
        self._show(self.list.currentRow())

    def _show(self, row: int) -> None:
        self.text.blockSignals(True)
        self.text.setPlainText(self._texts[row] if row >= 0 else "")
        self.text.blockSignals(False)
        self.text.setEnabled(row >= 0)
        self.remove.setEnabled(row >= 0)

    def _on_text(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self._texts[row] = self.text.toPlainText()
            self.list.item(row).setText(self._label(row))
            self.changed.emit()


class CardEditor(QDialog):
    """Edit a character. `card()` and `avatar()` give the result after `accepted`."""

    def __init__(
        self,
        card: Card,
        avatar: bytes | None = None,
        count_tokens: TokenCounter | Callable[[str], int] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """`count_tokens`: a `TokenCounter` (the engine's, answered later) or a plain
        function; None shows the estimate."""
        super().__init__(parent)
        self._card = card.copy()
        self._avatar = avatar
        self._avatar_changed = False
        self.discard_box: QMessageBox | None = None  # the "unsaved changes" question
        self.count_tokens = as_counter(count_tokens)
        self._counting: str | None = None  # the text whose exact count is awaited
        self.fields: dict[str, QLineEdit | QPlainTextEdit] = {}
        self._shown: dict[str, str] = {}
        self.token_label = QLabel()
        self.avatar_label = QLabel()
        self.greetings = GreetingsEditor(self._card.alternate_greetings)
        self.lorebook = LorebookEditor(self._card.character_book)
        self.depth_prompt = DepthPromptEditor(self._card.data)
        self._token_timer = QTimer(self, singleShot=True, interval=250)
        self._token_timer.timeout.connect(self.update_token_count)
        self.setWindowTitle(self.tr("Edit {0}").format(self._card.name or self.tr("character")))
        self.resize(900, 680)
        remember_size(self, "card-editor")
        self._build()
        self._show_avatar()
        self.update_token_count()

    # --- layout -----------------------------------------------------------------------
    def _build(self) -> None:
        tabs = QTabWidget()
        tabs.addTab(self._character_tab(), self.tr("Character"))
        tabs.addTab(
            self._form(
                [
                    ("mes_example", self.tr("Example messages"), True),
                    ("system_prompt", self.tr("System prompt"), True),
                    ("post_history_instructions", self.tr("Post-history instructions"), True),
                ]
            ),
            self.tr("Prompts"),
        )
        tabs.addTab(
            self._form(
                [
                    ("creator", self.tr("Creator"), False),
                    ("character_version", self.tr("Version"), False),
                    ("tags", self.tr("Tags"), False),
                    ("creator_notes", self.tr("Creator notes"), True),
                ]
            ),
            self.tr("About"),
        )
        tabs.addTab(self.lorebook, self.tr("Lorebook"))
        tabs.addTab(self.depth_prompt, self.tr("Character's note"))
        for index in range(tabs.count()):  # tall tabs scroll: the editor fits 800×600
            page, title = tabs.widget(index), tabs.tabText(index)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            tabs.removeTab(index)
            scroll.setWidget(page)
            tabs.insertTab(index, scroll, title)
        tabs.setCurrentIndex(0)
        self.tabs = tabs
        self.fields["tags"].setPlaceholderText(self.tr("Separated by commas"))
        self.fields["system_prompt"].setPlaceholderText(
            self.tr("Empty: the app's system prompt. {{original}} includes it.")
        )
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.token_label, 1)
        bottom.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs, 1)
        layout.addLayout(bottom)
        for key in PERMANENT_FIELDS:
            self.fields[key].textChanged.connect(self._token_timer.start)

    def _character_tab(self) -> QWidget:
        page = QWidget()
        row = QHBoxLayout(page)
        row.addLayout(self._avatar_column(), 0)
        form = self._form(
            [
                ("name", self.tr("Name"), False),
                ("description", self.tr("Description"), True),
                ("personality", self.tr("Personality"), True),
                ("scenario", self.tr("Scenario"), True),
                ("first_mes", self.tr("First message"), True),
            ]
        )
        form.layout().addRow(self.tr("Alternate greetings"), self.greetings)
        row.addWidget(form, 1)
        return page

    def _avatar_column(self) -> QVBoxLayout:
        self.avatar_label.setFixedSize(QSize(160, 160))
        self.avatar_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.avatar_label.setFrameShape(QLabel.Shape.StyledPanel)
        self.avatar_label.setAccessibleName(self.tr("Avatar"))
        choose = QPushButton(self.tr("Choose image…"))
        choose.setAccessibleName(self.tr("Choose an avatar image"))
        choose.clicked.connect(self._choose_avatar)
        col = QVBoxLayout()
        col.addWidget(self.avatar_label)
        col.addWidget(choose)
        col.addStretch(1)
        return col

    def _form(self, rows: list[tuple[str, str, bool]]) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        for key, label, multiline in rows:
            value = ", ".join(self._card.tags) if key == "tags" else getattr(self._card, key)
            widget = QPlainTextEdit(value) if multiline else QLineEdit(value)
            widget.setAccessibleName(label)
            if multiline:
                widget.setTabChangesFocus(True)
            self.fields[key] = widget
            self._shown[key] = self._text(key)
            form.addRow(label, widget)
        return page

    def _text(self, key: str) -> str:
        widget = self.fields[key]
        return widget.toPlainText() if isinstance(widget, QPlainTextEdit) else widget.text()

    # --- avatar -----------------------------------------------------------------------
    def set_avatar_file(self, path: str) -> None:
        """Use an image file as the avatar. Raises AvatarError naming the file."""
        self._avatar = decode_avatar(path)
        self._avatar_changed = True
        self._show_avatar()

    def _choose_avatar(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            self.tr("Choose an avatar"),
            "",
            self.tr("Images (*.png *.jpg *.jpeg *.webp *.gif *.bmp)"),
        )
        if path:
            try:
                self.set_avatar_file(path)
            except AvatarError as exc:
                QMessageBox.warning(self, self.tr("Choose an avatar"), str(exc))

    def _show_avatar(self) -> None:
        pixmap = QPixmap()
        if self._avatar and pixmap.loadFromData(self._avatar):
            self.avatar_label.setPixmap(
                pixmap.scaled(
                    self.avatar_label.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
        else:
            self.avatar_label.setText(self.tr("No image"))

    # --- tokens -----------------------------------------------------------------------
    def permanent_text(self) -> str:
        """The card text sent with every message, as the token count measures it."""
        return "\n".join(t for t in (self._text(k) for k in PERMANENT_FIELDS) if t)

    def update_token_count(self) -> None:
        """The estimate at once; the exact count when the counter answers (the engine's
        answers come later, and only the one for the text still shown is used)."""
        text = self.permanent_text()
        if self.count_tokens is None:
            self._show_count(None, text)
            return
        self._counting = text
        self.count_tokens.request(text, lambda count: self._on_counted(text, count))
        if self._counting == text and not self.token_label.text():
            self._show_count(None, text)  # no answer yet: the estimate until it comes

    def _on_counted(self, text: str, count: int | None) -> None:
        if text == self._counting and isValid(self):
            self._counting = None
            self._show_count(count, text)

    def _show_count(self, exact: int | None, text: str) -> None:
        if exact is not None:
            self.token_label.setText(self.tr("Permanent prompt: {0} tokens").format(f"{exact:,}"))
        else:
            estimate = round(len(text) / CHARS_PER_TOKEN)
            self.token_label.setText(
                self.tr(
                    "Permanent prompt: ≈ {0} tokens (an estimate; load a model for the exact count)"
                ).format(f"{estimate:,}")
            )
        self.token_count = exact if exact is not None else round(len(text) / CHARS_PER_TOKEN)

    # --- the result -------------------------------------------------------------------
    def card(self) -> Card:
        """A copy of the card with the user's changes; untouched fields stay as read."""
        card = self._card.copy()
        for key in self.fields:
            value = self._text(key)
            if value == self._shown[key]:
                continue
            if key == "tags":
                card.tags = split_keys(value)
            else:
                setattr(card, key, value)
        if self.greetings.greetings() != self._card.alternate_greetings:
            card.alternate_greetings = self.greetings.greetings()
        book = self.lorebook.book()
        if book != self._card.character_book:
            card.character_book = book
        self.depth_prompt.apply(card.data)
        return card

    def has_changes(self) -> bool:
        return self._avatar_changed or to_v3_json(self.card()) != to_v3_json(self._card)

    def reject(self) -> None:
        """Esc, Cancel or the window's close button: unsaved edits are not dropped silently."""
        if self.discard_box is not None or not self.has_changes():
            super().reject()
            return
        box = QMessageBox(
            QMessageBox.Icon.Question,
            self.tr("Unsaved changes"),
            self.tr("Save the changes to {0}?").format(
                self._card.name or self.tr("this character")
            ),
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.finished.connect(self._on_discard_answer)
        self.discard_box = box
        box.open()

    def _on_discard_answer(self, answer: int) -> None:
        box, self.discard_box = self.discard_box, None
        button = box.standardButton(box.clickedButton()) if box else None
        if button == QMessageBox.StandardButton.Save:
            self.accept()
        elif button == QMessageBox.StandardButton.Discard:
            self.discard_box = box  # let reject() through this once
            super().reject()
            self.discard_box = None

    def avatar(self) -> bytes | None:
        return self._avatar

    def avatar_changed(self) -> bool:
        return self._avatar_changed
