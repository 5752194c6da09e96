"""What the window looked like last time: its geometry, the splitter, the open character
and chat, and each dialog's size — Qt's own `saveGeometry`/`saveState` bytes, kept in
`window-state.ini` in the settings folder (not in settings.json: they are not choices)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter, QWidget

STATE_FILE = "window-state.ini"


class WindowState(QObject):
    def __init__(self, config_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = Path(config_dir) / STATE_FILE
        self.qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    # --- raw values -------------------------------------------------------------------
    def _bytes(self, key: str) -> QByteArray | None:
        value = self.qs.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def _int(self, key: str) -> int | None:
        try:
            return int(self.qs.value(key))
        except (TypeError, ValueError):
            return None

    # --- the main window --------------------------------------------------------------
    def restore_window(self, window: QMainWindow, splitter: QSplitter) -> None:
        geometry, layout = self._bytes("main/geometry"), self._bytes("main/splitter")
        if geometry is not None:
            window.restoreGeometry(geometry)
        if layout is not None:
            splitter.restoreState(layout)

    def save_window(self, window: QMainWindow, splitter: QSplitter) -> None:
        self.qs.setValue("main/geometry", window.saveGeometry())
        self.qs.setValue("main/splitter", splitter.saveState())
        self.qs.sync()

    def last_chat(self) -> tuple[int | None, int | None]:
        """(character id, chat id) open when Parlor last closed."""
        return self._int("last/character"), self._int("last/chat")

    def set_last_chat(self, character_id: int, chat_id: int) -> None:
        self.qs.setValue("last/character", character_id)
        self.qs.setValue("last/chat", chat_id)

    # --- dialogs ----------------------------------------------------------------------
    def remember(self, dialog: QWidget, name: str) -> None:
        """Give `dialog` its last size back now, and keep its size when it closes."""
        geometry = self._bytes(f"dialogs/{name}")
        if geometry is not None:
            dialog.restoreGeometry(geometry)
        dialog.installEventFilter(_DialogWatcher(self, name, dialog))

    def save_dialog(self, dialog: QWidget, name: str) -> None:
        self.qs.setValue(f"dialogs/{name}", dialog.saveGeometry())
        self.qs.sync()


class _DialogWatcher(QObject):
    def __init__(self, state: WindowState, name: str, dialog: QWidget) -> None:
        super().__init__(dialog)
        self.state, self.name = state, name

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Hide:
            self.state.save_dialog(obj, self.name)
        return False


def remember_size(dialog: QWidget, name: str) -> None:
    """For a dialog of the main window (or of a widget in it): keep its size across runs.
    A dialog made without the window (a test, a tool) is left alone."""
    parent = dialog.parentWidget()
    state = getattr(parent.window(), "window_state", None) if parent is not None else None
    if isinstance(state, WindowState):
        state.remember(dialog, name)
