"""The character you are talking to, beside the chat: a large portrait (the card's whole
image), name, creator, version, tags and the creator's notes as safe Markdown. Clicking the
portrait shows the image at full size."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QPixmap, QTextDocument
from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.cards import Card
from app.gui.plain_text import refused_resource

PORTRAIT_W = 240


class SafeNotes(QTextBrowser):
    """Markdown without raw HTML, links that open nothing and no resource loading at all:
    creator notes are untrusted text (an <img src="http://…"> would phone home)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QTextBrowser.Shape.NoFrame)
        self.setAccessibleName(self.tr("Creator notes"))

    def set_markdown(self, text: str) -> None:
        features = QTextDocument.MarkdownFeature(
            QTextDocument.MarkdownFeature.MarkdownDialectGitHub.value
            | QTextDocument.MarkdownFeature.MarkdownNoHTML.value
        )
        self.document().setMarkdown(text, features)

    def loadResource(self, kind: int, name: QUrl):  # noqa: N802
        # No images, style sheets or anything else, local or remote: None alone would let
        # Qt read an image's path itself.
        return refused_resource(kind)


class ClickableLabel(QLabel):
    clicked = Signal()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mouseReleaseEvent(event)


class PortraitPanel(QScrollArea):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setAccessibleName(self.tr("Character"))
        self._pixmap = QPixmap()
        self.portrait = ClickableLabel()
        self.portrait.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.portrait.setCursor(Qt.CursorShape.PointingHandCursor)
        self.portrait.setToolTip(self.tr("Show the whole image"))
        self.portrait.setAccessibleName(self.tr("Portrait"))
        self.portrait.clicked.connect(self.show_full_image)
        self.name = self._label(bold=True, scale=1.4)
        self.byline = self._label()
        self.tags = self._label()
        self.notes = SafeNotes()
        self.notes.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        body = QWidget()
        lay = QVBoxLayout(body)
        for widget in (self.portrait, self.name, self.byline, self.tags):
            lay.addWidget(widget)
        lay.addWidget(self.notes, 1)
        self.setWidget(body)
        self.viewer: QDialog | None = None

    def _label(self, bold: bool = False, scale: float = 1.0) -> QLabel:
        label = QLabel()
        label.setTextFormat(Qt.TextFormat.PlainText)  # card text is untrusted
        label.setWordWrap(True)
        font = label.font()
        font.setBold(bold)
        font.setPointSizeF(font.pointSizeF() * scale)
        label.setFont(font)
        return label

    def show_card(self, card: Card, avatar: bytes | None) -> None:
        self._pixmap = QPixmap()
        if avatar:
            self._pixmap.loadFromData(avatar)
        self.name.setText(card.name)
        by = [
            self.tr("by {0}").format(card.creator) if card.creator else "",
            self.tr("version {0}").format(card.character_version) if card.character_version else "",
        ]
        self.byline.setText(" · ".join(t for t in by if t))
        self.byline.setVisible(any(by))
        self.tags.setText("  ".join(f"#{t}" for t in card.tags if str(t).strip()))
        self.tags.setVisible(bool(card.tags))
        self.notes.set_markdown(card.creator_notes or "")
        self.notes.setVisible(bool(card.creator_notes))
        self._fit_portrait()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(0, 0)  # folds away entirely on a small window (the splitter's choice)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit_portrait()

    def _fit_portrait(self) -> None:
        if self._pixmap.isNull():
            self.portrait.clear()
            self.portrait.hide()
            return
        width = max(120, min(self.viewport().width() - 20, 480))
        self.portrait.setPixmap(
            self._pixmap.scaled(
                QSize(width, width * 3 // 2),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
        self.portrait.show()

    def show_full_image(self) -> QDialog | None:
        if self._pixmap.isNull():
            return None
        dialog = QDialog(self.window())
        dialog.setWindowTitle(self.name.text())
        image = QLabel()
        screen = self.screen().availableGeometry().size() * 0.9
        image.setPixmap(
            self._pixmap
            if self._pixmap.width() <= screen.width() and self._pixmap.height() <= screen.height()
            else self._pixmap.scaled(
                screen,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
        QVBoxLayout(dialog).addWidget(image)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.viewer = dialog
        return dialog
