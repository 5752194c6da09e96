"""The mouse wheel scrolls a form; it changes a spin box or a combo box only once the
user has clicked into it (wheeling past min-p must not set it to 0.00)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QSlider,
    QWidget,
)

GUARDED = (QAbstractSpinBox, QComboBox, QSlider)  # not scroll bars: they scroll


class WheelGuard(QObject):
    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Wheel and isinstance(obj, GUARDED) and not obj.hasFocus():
            # Hand the wheel to the page's scroll bar ourselves: Qt propagates only real
            # (spontaneous) wheel events to parents, not synthesized ones.
            area = _scroll_area_of(obj)
            if area is not None:
                QApplication.sendEvent(area.verticalScrollBar(), event)
            return True
        return False


def _scroll_area_of(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QAbstractScrollArea):
        parent = parent.parentWidget()
    return parent


def guard_wheel(root: QWidget) -> None:
    """Guard every spin box, combo box and slider under `root` (call again after adding)."""
    guard = root.findChild(WheelGuard) or WheelGuard(root)
    for widget in root.findChildren(QWidget):
        if isinstance(widget, GUARDED) and not widget.property("wheel_guarded"):
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # no focus by wheeling
            widget.installEventFilter(guard)
            widget.setProperty("wheel_guarded", True)
