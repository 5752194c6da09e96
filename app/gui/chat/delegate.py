"""Paints each message as a bubble: avatar, header (name, time, status, actions, swipes)
and the formatted text; edits a message in place, in an editor the bubble's width."""

from __future__ import annotations

import html

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QColor,
    QPainter,
    QPainterPath,
    QPalette,
    QPixmap,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionButton,
    QStyleOptionViewItem,
    QToolTip,
    QWidget,
)

from app.core.chat.display import DEFAULT_COLORS, to_html
from app.gui.chat.bubble_layout import (
    AVATAR,
    FOOTER,
    HEADER,
    ICON,
    MARGIN,
    PAD,
    HeaderLayout,
    action_names,
    failure_text,
    header_layout,
    header_width,
    meta_font,
    meta_text,
    retry_rect,
)
from app.gui.chat.find_marks import mark_matches
from app.gui.chat.message_editor import MessageEditor
from app.gui.chat.model import Roles
from app.gui.icons import paint_icon
from app.gui.plain_text import SafeDocument

FAILURE_COLOR = "#c0392b"


def chat_colors(speech: str, action: str, thought: str = "") -> dict[str, str]:
    """The user's colours where they are valid #rrggbb values, else the defaults."""
    chosen = {"speech": speech, "action": action, "thought": thought}
    return {
        k: v
        if QColor.isValidColorName(v or "") and (v or "").startswith("#")
        else DEFAULT_COLORS[k]
        for k, v in chosen.items()
    }


# Qt's default lists and quotes sit in wide empty margins; a chat wants them close.
BLOCK_STYLE = (
    "ul, ol { margin-top: 2px; margin-bottom: 2px; margin-left: -16px; }"
    " blockquote { margin: 4px 0px 4px 12px; background-color: rgba(128, 128, 128, 0.18); }"
    " pre { margin-top: 4px; margin-bottom: 4px; }"
    # the type scale: headings a step or two above the text, never Qt's xx-large
    " h1, h2, h3, h4, h5, h6 { margin-top: 6px; margin-bottom: 2px; font-size: medium; }"
    " h1 { font-size: x-large; } h2 { font-size: large; }"
)
TIPS = {
    "edit": "Edit",
    "copy": "Copy",
    "regenerate": "Regenerate",
    "continue": "Continue",
    "branch": "Branch here",
    "delete": "Delete (and what follows)",
}


class MessageDelegate(QStyledItemDelegate):
    swipe_clicked = Signal(int, int)  # row, step (-1 or +1)
    action_clicked = Signal(int, str)  # row, one of TIPS' keys (or "retry")
    edit_committed = Signal(int, str)  # message id, new text

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._docs: dict[tuple, QTextDocument] = {}
        self.avatars: dict[str, QPixmap] = {}
        self.book = False  # book-like layout: every message full width, on the left
        self.max_width = 900  # the reading column: long lines tire the eye
        self.hover_row = -1
        self.editing_row = -1
        self.editor: MessageEditor | None = None
        self.find_mark: tuple[int, str] | None = None  # (message id, text) to highlight
        self.colors = lambda: dict(DEFAULT_COLORS)  # the user's choice, read at each layout

    # --- layout ------------------------------------------------------------------------
    def _document(
        self, text: str, width: int, font, mark: str = "", failure: str = ""
    ) -> QTextDocument:
        colors = self.colors()
        key = (text, width, font.pointSizeF(), mark, tuple(colors.items()), failure)
        doc = self._docs.get(key)
        if doc is None:
            if len(self._docs) > 2000:
                self._docs.clear()
            doc = SafeDocument()  # loads no resource, whatever the HTML names
            doc.setDefaultFont(font)
            doc.setDocumentMargin(0)
            doc.setDefaultStyleSheet(BLOCK_STYLE)
            doc.setHtml(to_html(text, colors) + _failure_html(text, failure))
            if mark:
                mark_matches(doc, mark)
            doc.setTextWidth(width)
            # measured with the layout, not while painting (Qt walks every line for it)
            doc.setProperty("ideal_width", doc.idealWidth())
            self._docs[key] = doc
        return doc

    def document_for(self, option: QStyleOptionViewItem, index) -> QTextDocument:
        msg = index.data(Roles.MESSAGE)
        mark = self.find_mark[1] if self.find_mark and msg and msg.id == self.find_mark[0] else ""
        return self._document(
            index.data() or "", self._text_width(option), option.font, mark, failure_text(msg)
        )

    def retry_shown(self, index) -> bool:
        """A failed last reply offers Retry (a new reply in its place, one swipe on)."""
        last = index.row() == index.model().rowCount() - 1
        return last and bool(failure_text(index.data(Roles.MESSAGE)))

    def retry_button(self, option: QStyleOptionViewItem, index) -> QRectF | None:
        if not self.retry_shown(index):
            return None
        return retry_rect(option.font, self.bubble_rect(option, index))

    def _column(self, option: QStyleOptionViewItem) -> tuple[float, float]:
        """Left edge and width of the reading column, centred in the view."""
        width = min(option.rect.width(), self.max_width)
        return option.rect.left() + (option.rect.width() - width) / 2, width

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:  # noqa: N802
        doc = self.document_for(option, index)
        height = doc.size().height()
        if index.row() == self.editing_row and self.editor is not None:
            height = max(height, self.editor.wanted_height())
        if self.retry_shown(index):
            height += FOOTER
        return QSize(option.rect.width(), max(int(height) + HEADER + 2 * PAD, AVATAR) + MARGIN)

    def _text_width(self, option: QStyleOptionViewItem) -> int:
        usable = self._column(option)[1] - AVATAR - 3 * MARGIN
        return max(120, int(usable if self.book else usable * 0.86) - 2 * PAD)

    def _is_right(self, index) -> bool:
        return not self.book and index.data(Roles.ROLE) == "user"

    def _actions(self, index, shown_only: bool = True) -> list[str]:
        """The hover buttons; `shown_only=False` for the room they take, kept whether or
        not they show, so moving the mouse never moves the swipe arrows."""
        if shown_only and (index.row() != self.hover_row or index.row() == self.editing_row):
            return []
        last = index.row() == index.model().rowCount() - 1
        return action_names(index.data(Roles.ROLE), last)

    def _swipes_shown(self, index) -> bool:
        _current, count = index.data(Roles.SWIPE)
        return count > 1 or index.data(Roles.ROLE) == "assistant"

    def bubble_rect(self, option: QStyleOptionViewItem, index) -> QRectF:
        doc = self.document_for(option, index)
        left, column = self._column(option)
        width = column - AVATAR - 3 * MARGIN
        if not self.book and index.row() != self.editing_row:
            need = header_width(
                option.font,
                self._header_texts(index),
                self._actions(index, shown_only=False),
                self._swipes_shown(index),
            )
            width = min(width, max(_ideal_width(doc) + 2 * PAD, need, 160))
        if self._is_right(index):
            x = left + column - 2 * MARGIN - AVATAR - width
        else:
            x = left + 2 * MARGIN + AVATAR
        return QRectF(x, option.rect.top() + MARGIN / 2, width, option.rect.height() - MARGIN)

    def _header_texts(self, index) -> tuple[str, str]:
        if index.row() == self.editing_row:
            return index.data(Roles.NAME) or "", self.tr(
                "editing · Enter saves · Esc cancels · Shift+Enter: new line"
            )
        return index.data(Roles.NAME) or "", meta_text(
            index.data(Roles.MESSAGE),
            index.data(Roles.STATUS),
            bool(index.data(Roles.OUT_OF_CONTEXT)),
            index.data(Roles.SWIPE),
        )

    def header(self, option: QStyleOptionViewItem, index) -> HeaderLayout:
        """Where the name, time/status, action buttons and swipe arrows go in the bubble."""
        return header_layout(
            option.font,
            self.bubble_rect(option, index),
            self._header_texts(index),
            self._actions(index),
            self._swipes_shown(index),
        )

    # --- painting ----------------------------------------------------------------------
    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        doc = self.document_for(option, index)
        bubble = self.bubble_rect(option, index)
        is_user = index.data(Roles.ROLE) == "user"
        self._paint_avatar(
            painter, option, bubble, is_user, self._is_right(index), index.data(Roles.NAME) or "?"
        )
        self._paint_bubble(painter, option, bubble, is_user)
        self._paint_header(painter, option, index, self.header(option, index))
        if index.row() != self.editing_row:
            painter.translate(bubble.left() + PAD, bubble.top() + PAD + HEADER)
            shown = QRectF(0, 0, bubble.width() - 2 * PAD + 1, doc.size().height())
            # only the lines in sight (the row's rectangle, the part of the view being
            # painted): a 1 MB message is thousands of lines
            origin = (-bubble.left() - PAD, -bubble.top() - PAD - HEADER)
            shown = shown.intersected(QRectF(option.rect).translated(*origin))
            if isinstance(option.widget, QAbstractScrollArea):  # the view's visible part
                visible = QRectF(option.widget.viewport().rect()).translated(*origin)
                shown = shown.intersected(visible)
            if painter.hasClipping():
                shown = shown.intersected(painter.clipBoundingRect())
            painter.setClipRect(shown)
            ctx = QAbstractTextDocumentLayout.PaintContext()
            ctx.clip = shown
            ctx.palette.setColor(
                QPalette.ColorRole.Text, option.palette.color(QPalette.ColorRole.Text)
            )
            doc.documentLayout().draw(painter, ctx)
        painter.restore()
        retry = self.retry_button(option, index)
        if retry is not None:
            self._paint_retry(painter, option, retry)

    @staticmethod
    def _paint_retry(painter: QPainter, option, rect: QRectF) -> None:
        button = QStyleOptionButton()
        button.rect = rect.toRect()
        button.text = QApplication.translate("MessageDelegate", "Retry")
        button.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Raised
        button.palette = option.palette
        button.fontMetrics = option.fontMetrics
        style = option.widget.style() if option.widget is not None else QApplication.style()
        painter.save()
        style.drawControl(QStyle.ControlElement.CE_PushButtonBevel, button, painter, option.widget)
        color = option.palette.color(QPalette.ColorRole.ButtonText)
        icon_rect = QRectF(rect.left() + PAD, rect.center().y() - ICON / 2, ICON, ICON)
        paint_icon(painter, icon_rect, "retry", color)
        painter.setPen(color)
        painter.setFont(option.font)
        text_rect = rect.adjusted(PAD + ICON + PAD / 2, 0, 0, 0)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter, button.text)
        painter.restore()

    def _paint_avatar(
        self, painter, option, bubble: QRectF, is_user: bool, right: bool, name: str
    ) -> None:
        x = bubble.right() + MARGIN if right else bubble.left() - MARGIN - AVATAR
        rect = QRectF(x, bubble.top(), AVATAR, AVATAR)
        clip = QPainterPath()
        clip.addEllipse(rect)
        painter.save()
        painter.setClipPath(clip)
        pix = self.avatars.get("user" if is_user else "assistant")
        if pix is not None and not pix.isNull():
            painter.drawPixmap(rect.toRect(), pix)
        else:
            painter.fillRect(rect, option.palette.color(QPalette.ColorRole.Mid))
            painter.setPen(option.palette.color(QPalette.ColorRole.Base))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, name[:1].upper())
        painter.restore()

    @staticmethod
    def _paint_bubble(painter, option, rect: QRectF, is_user: bool) -> None:
        accent = option.palette.color(QPalette.ColorRole.Highlight)
        fill = (
            QColor(accent)
            if is_user
            else QColor(option.palette.color(QPalette.ColorRole.AlternateBase))
        )
        if is_user:
            fill.setAlpha(45)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, 10, 10)
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(accent)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect, 10, 10)

    def _paint_header(self, painter, option, index, head: HeaderLayout) -> None:
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(option.palette.color(QPalette.ColorRole.Text))
        painter.drawText(head.name, align, head.name_text)
        font.setBold(False)
        painter.setFont(meta_font(font))
        painter.setPen(option.palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(head.meta, align, head.meta_text)
        painter.setFont(font)
        center = Qt.AlignmentFlag.AlignCenter
        soft = option.palette.color(QPalette.ColorRole.PlaceholderText)
        for name, rect in head.actions.items():
            paint_icon(painter, _centred(rect, ICON), name, soft)
        if head.swipe_left is not None:
            current, count = index.data(Roles.SWIPE)
            text = option.palette.color(QPalette.ColorRole.Text)
            # SillyTavern-size chevrons on the last reply, where swiping writes a new one
            last = index.row() == index.model().rowCount() - 1
            side = HEADER if last else ICON
            chevrons = ((head.swipe_left, "chevron-left"), (head.swipe_right, "chevron-right"))
            for rect, name in chevrons:
                paint_icon(painter, _centred(rect, side), name, text)
            painter.setPen(text)
            painter.drawText(head.swipe_count, center, f"{current}/{count}")

    # --- clicks: swipe arrows and action buttons --------------------------------------
    def editorEvent(self, event, model, option, index) -> bool:  # noqa: N802
        if event.type() != QEvent.Type.MouseButtonRelease:
            return False
        head = self.header(option, index)
        pos = event.position()
        retry = self.retry_button(option, index)
        if retry is not None and retry.contains(pos):
            self.action_clicked.emit(index.row(), "retry")
            return True
        for name, rect in head.actions.items():
            if rect.contains(pos):
                self.action_clicked.emit(index.row(), name)
                return True
        if head.swipe_left is None:
            return False
        for rect, step in ((head.swipe_left, -1), (head.swipe_right, +1)):
            if rect.adjusted(-4, -4, 4, 4).contains(pos):
                self.swipe_clicked.emit(index.row(), step)
                return True
        return False

    def helpEvent(self, event, view, option, index) -> bool:  # noqa: N802
        """Tooltips for the action buttons, which are painted icons, not widgets."""
        if event.type() == QEvent.Type.ToolTip and index.isValid():
            for name, rect in self.header(option, index).actions.items():
                if rect.contains(event.pos()):
                    QToolTip.showText(event.globalPos(), self.tr(TIPS[name]), view)
                    return True
        return super().helpEvent(event, view, option, index)

    # --- editing in place -------------------------------------------------------------
    def createEditor(self, parent: QWidget, option, index) -> QWidget:  # noqa: N802
        self.editing_row = index.row()
        editor = MessageEditor(parent, index.data(Roles.MESSAGE).id)
        editor.setFont(option.font)
        editor.save.connect(lambda e=editor: self._finish_edit(e, save=True))
        editor.cancel.connect(lambda e=editor: self._finish_edit(e, save=False))
        row = QPersistentModelIndex(index)
        editor.grew.connect(lambda: self.sizeHintChanged.emit(QModelIndex(row)))
        self.editor = editor
        return editor

    def setEditorData(self, editor: MessageEditor, index) -> None:  # noqa: N802
        if not editor.started:
            editor.start(index.data() or "")

    def setModelData(self, editor: MessageEditor, model, index) -> None:  # noqa: N802
        """Focus moving elsewhere saves too: what was typed is never lost."""
        self._save(editor)

    def updateEditorGeometry(self, editor: QWidget, option, index) -> None:  # noqa: N802
        bubble = self.bubble_rect(option, index)
        editor.setGeometry(bubble.adjusted(PAD - 4, PAD + HEADER - 4, 4 - PAD, 4 - PAD).toRect())

    def destroyEditor(self, editor: QWidget, index) -> None:  # noqa: N802
        if editor is self.editor:
            self.editor = None
            self.editing_row = -1
            self.sizeHintChanged.emit(index)
        super().destroyEditor(editor, index)

    def _save(self, editor: MessageEditor) -> None:
        if editor.started and not editor.done and editor.changed():
            editor.done = True
            self.edit_committed.emit(editor.message_id, editor.toPlainText())
        editor.done = True

    def _finish_edit(self, editor: MessageEditor, save: bool) -> None:
        if save:
            self._save(editor)
        else:
            editor.done = True
        hint = QStyledItemDelegate.EndEditHint.NoHint
        self.closeEditor.emit(editor, hint)


def _ideal_width(doc: QTextDocument) -> float:
    """The document's widest line, measured once (Qt walks every line for it)."""
    ideal = doc.property("ideal_width")
    if ideal is None:
        ideal = doc.idealWidth()
        doc.setProperty("ideal_width", ideal)
    return float(ideal)


def _centred(rect: QRectF, side: float) -> QRectF:
    return QRectF(rect.center().x() - side / 2, rect.center().y() - side / 2, side, side)


def _failure_html(text: str, failure: str) -> str:
    """A failed reply says why in its bubble, in the failure colour, escaped like all text."""
    if not failure:
        return ""
    gap = "<br>" if text else ""
    cause = html.escape(failure).replace("\n", "<br>")
    return f'{gap}<span style="color:{FAILURE_COLOR}">{cause}</span>'
