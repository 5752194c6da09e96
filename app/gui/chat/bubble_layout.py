"""Where each piece of a message bubble's header goes, measured, so nothing overlaps.

The header holds the speaker's name, the time and status, the action buttons (on hover or
focus) and the swipe arrows. Right-hand pieces have fixed widths; the name and the status
share what is left, each elided rather than painted over its neighbour.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QFont, QFontMetricsF

MARGIN, PAD, HEADER, AVATAR, ARROW_W = 8, 10, 22, 36, 28
BUTTON_W, GAP = 22, 8
ICON = 16  # the hover buttons' icons; the last reply's swipe chevrons are bigger
FOOTER = 34  # below a failed reply's text: its Retry button
STATUS_NOTES = {
    "stopped": "stopped",
    "interrupted": "interrupted — the app closed while writing",
    "error": "failed",
    "streaming": "writing…",
}
OUT_OF_CONTEXT = "not in the model's context any more"


@dataclass
class HeaderLayout:
    name: QRectF
    name_text: str
    meta: QRectF
    meta_text: str
    actions: dict[str, QRectF] = field(default_factory=dict)
    swipe_left: QRectF | None = None
    swipe_count: QRectF | None = None
    swipe_right: QRectF | None = None

    def rects(self) -> list[QRectF]:
        """Every piece that paints something (for the overlap check)."""
        pieces = [r for r in (self.name, self.meta) if r.width() > 0]
        pieces += list(self.actions.values())
        pieces += [r for r in (self.swipe_left, self.swipe_count, self.swipe_right) if r]
        return pieces


def meta_text(msg, status: str | None, out_of_context: bool, swipe) -> str:
    stamp = time.strftime("%H:%M", time.localtime(msg.created_at)) if msg else ""
    note = OUT_OF_CONTEXT if out_of_context else STATUS_NOTES.get(status or "", "")
    return "  ·  ".join(t for t in (stamp, note) if t)


def failure_text(msg) -> str:
    """Why a reply failed (the engine's message, kept in its info), or "" if it did not."""
    if msg is None or msg.role != "assistant" or msg.status not in ("error", "interrupted"):
        return ""
    cause = str((msg.gen_info or {}).get("error") or "")
    return cause or ("The reply failed." if msg.status == "error" else "")


def retry_rect(font: QFont, bubble: QRectF) -> QRectF:
    """The Retry button, at the bottom left of a failed reply's bubble."""
    width = QFontMetricsF(font).horizontalAdvance("Retry") + ICON + 3 * PAD
    return QRectF(bubble.left() + PAD, bubble.bottom() - PAD - FOOTER + 6, width, FOOTER - 6)


def action_names(role: str, is_last: bool) -> list[str]:
    """The buttons a message offers: regenerate and continue only on the last reply."""
    names = ["edit", "copy"]
    if is_last and role == "assistant":
        names += ["regenerate", "continue"]
    return names + ["branch", "delete"]


META_SCALE = 0.88  # the type scale: time and status a step below the text, names bold


def meta_font(font: QFont) -> QFont:
    small = QFont(font)
    small.setPointSizeF(max(6.0, font.pointSizeF() * META_SCALE))
    return small


def _bold(font: QFont) -> QFont:
    bold = QFont(font)
    bold.setBold(True)
    return bold


def _count_width(font: QFont) -> float:
    return QFontMetricsF(font).horizontalAdvance("888/888") + 4


def _right_width(font: QFont, actions: list[str], swipes: bool) -> float:
    width = len(actions) * BUTTON_W
    if swipes:
        width += 2 * ARROW_W + _count_width(font)
    return width + (GAP if width else 0)


def header_width(font: QFont, texts: tuple[str, str], actions: list[str], swipes: bool) -> float:
    """The bubble width the header needs to show everything unelided."""
    name, meta = texts
    name_w = QFontMetricsF(_bold(font)).horizontalAdvance(name)
    meta_w = QFontMetricsF(meta_font(font)).horizontalAdvance(meta)
    return (
        2 * PAD + name_w + (GAP + meta_w if meta else 0) + _right_width(font, actions, swipes) + 2
    )


def header_layout(
    font: QFont, bubble: QRectF, texts: tuple[str, str], actions: list[str], swipes: bool
) -> HeaderLayout:
    top, left, right = bubble.top() + PAD / 2, bubble.left() + PAD, bubble.right() - PAD
    out = HeaderLayout(QRectF(), "", QRectF(), "")
    x = right
    if swipes:
        out.swipe_right = QRectF(x - ARROW_W, top, ARROW_W, HEADER)
        count_w = _count_width(font)
        out.swipe_count = QRectF(x - ARROW_W - count_w, top, count_w, HEADER)
        x -= 2 * ARROW_W + count_w
        out.swipe_left = QRectF(x, top, ARROW_W, HEADER)
    for name in reversed(actions):
        x -= BUTTON_W
        out.actions[name] = QRectF(x, top, BUTTON_W, HEADER)
    if x < right:
        x -= GAP
    _place_texts(out, font, texts, QRectF(left, top, max(0.0, x - left), HEADER))
    return out


def _place_texts(out: HeaderLayout, font: QFont, texts: tuple[str, str], room: QRectF) -> None:
    """The name gets up to two thirds of the room when both must be cut; the status the rest."""
    name, meta = texts
    bold, plain = QFontMetricsF(_bold(font)), QFontMetricsF(meta_font(font))
    name_w, meta_w = bold.horizontalAdvance(name), plain.horizontalAdvance(meta) if meta else 0
    avail = room.width()
    if name_w + (GAP + meta_w if meta else 0) > avail:
        name_w = min(name_w, avail if not meta else max(avail - GAP - meta_w, avail * 2 / 3))
    out.name_text = bold.elidedText(name, Qt.TextElideMode.ElideRight, name_w)
    name_w = bold.horizontalAdvance(out.name_text) if out.name_text else 0
    out.name = QRectF(room.left(), room.top(), name_w, HEADER)
    meta_x = room.left() + name_w + GAP
    meta_room = max(0.0, room.right() - meta_x)
    out.meta_text = plain.elidedText(meta, Qt.TextElideMode.ElideRight, meta_room) if meta else ""
    width = plain.horizontalAdvance(out.meta_text) if out.meta_text else 0
    out.meta = QRectF(meta_x, room.top(), min(width, meta_room), HEADER)
