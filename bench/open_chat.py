"""open_long_chat_ms: from asking the window to open a 10,000-message chat to its first paint.

The chat is written straight into a fresh store (one transaction), then the real main
window opens it; the clock stops at the first Paint event of the chat view's viewport
after the request, which is when the user sees the newest messages.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

LINES = (
    '*She laughs and refills the mug.* "You should hear what the fisherman said."',
    "Go on, then. I have all night, and the storm isn't going anywhere.",
)


def _write_chat(ctx, n: int) -> int:
    from app.core.chat.default_character import ensure_default_character
    from app.core.store.nodes import NewNode

    char = ensure_default_character(ctx.store)
    nodes = [
        NewNode(
            i, i - 1 if i else None, "assistant" if i % 2 == 0 else "user", f"{LINES[i % 2]} ({i})"
        )
        for i in range(n)
    ]
    return ctx.store.chats.from_nodes(char, "A very long evening", nodes, leaf_key=n - 1)


def measure(n_messages: int = 10_000, repeats: int = 3) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer

    from app.core.appdata.paths import Paths
    from app.core.chat.context import AppContext
    from app.gui.launch import make_application, open_main_window

    make_application()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ctx = AppContext.create(Paths(root / "d", root / "c", root / "k", root / "l"))
        chat = _write_chat(ctx, n_messages)
        window = open_main_window(ctx)
        window.resize(1100, 760)
        window.show()
        times = []

        class FirstPaint(QObject):
            def eventFilter(self, _obj, event):  # noqa: N802
                if event.type() == QEvent.Type.Paint and self.start is not None:
                    times.append((time.perf_counter() - self.start) * 1000)
                    self.start = None
                    QTimer.singleShot(0, loop.quit)
                return False

        loop = QEventLoop()
        spy = FirstPaint()
        spy.start = None
        window.chat_view.viewport().installEventFilter(spy)
        for _ in range(repeats):
            window.controller.chat_id = None
            window.chat_model.set_messages([])
            QTimer.singleShot(50, loop.quit)
            loop.exec()
            spy.start = time.perf_counter()
            window._open_chat(chat)
            window.chat_view.viewport().update()
            QTimer.singleShot(5000, loop.quit)
            loop.exec()
        window.close()
        ctx.close()
    return {
        "open_long_chat_ms": round(min(times), 1),
        "runs_ms": [round(t, 1) for t in times],
        "messages": n_messages,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure()))
