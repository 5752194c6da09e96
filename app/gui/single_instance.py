"""The Qt half of "one instance per data folder": a second start brings the first to the front.

The first instance listens on a QLocalServer (a Unix socket or a Windows named pipe, never a
network port) named for its data folder; a second start that finds the folder locked sends
"focus" there and exits.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QWidget

from app.core.appdata.single_instance import InstanceLock, server_name

FOCUS = b"focus\n"
TIMEOUT_MS = 1000


class FocusServer(QObject):
    """Listens for later starts and raises `window` when one asks."""

    focus_requested = Signal()

    def __init__(self, data_dir: Path, window: QWidget | None = None):
        super().__init__(window)
        self.window = window
        self.name = server_name(data_dir)
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        # We hold the data folder's lock, so a socket left by a crashed instance is stale.
        QLocalServer.removeServer(self.name)
        if not self.server.listen(self.name):
            raise OSError(f"Cannot listen on {self.name}: {self.server.errorString()}")
        self.server.newConnection.connect(self._on_connection)

    def _on_connection(self) -> None:
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            socket.readyRead.connect(lambda s=socket: self._on_ready(s))
            socket.disconnected.connect(socket.deleteLater)

    def _on_ready(self, socket: QLocalSocket) -> None:
        if bytes(socket.readAll().data()).startswith(FOCUS.strip()):
            self.raise_window()
            self.focus_requested.emit()
        socket.disconnectFromServer()

    def raise_window(self) -> None:
        if self.window is None:
            return
        state = self.window.windowState() & ~Qt.WindowState.WindowMinimized
        self.window.setWindowState(state | Qt.WindowState.WindowActive)
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def close(self) -> None:
        self.server.close()


def ask_running_instance_to_focus(data_dir: Path) -> bool:
    """Tell the instance holding `data_dir` to come to the front; False if none answered."""
    socket = QLocalSocket()
    socket.connectToServer(server_name(data_dir))
    if not socket.waitForConnected(TIMEOUT_MS):
        return False
    socket.write(FOCUS)
    ok = socket.waitForBytesWritten(TIMEOUT_MS)
    socket.disconnectFromServer()
    return ok


def claim_data_folder(data_dir: Path) -> InstanceLock | None:
    """At start: the lock if this is the first instance; None if another one was focused.

    Raises AlreadyRunning when another instance holds the folder but did not answer
    (show the message and exit).
    """
    lock = InstanceLock(data_dir)
    if lock.acquire():
        return lock
    if ask_running_instance_to_focus(data_dir):
        return None
    return lock.acquire_or_raise()
