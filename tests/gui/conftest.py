"""GUI fixtures: the real main window over a real context and a real engine child."""

from __future__ import annotations

import pytest

from app.core.chat.context import AppContext


@pytest.fixture
def make_window(qtbot):
    """Open main windows on the test's PARLOR_HOME; each is closed at the end."""
    from app.gui.launch import make_application, open_main_window

    make_application()
    opened = []

    def make(max_tokens: int = 24):
        ctx = AppContext.create()
        ctx.settings.max_tokens = max_tokens
        ctx.settings.temperature = 0.8
        window = open_main_window(ctx)
        qtbot.addWidget(window)
        window.show()
        opened.append((window, ctx))
        return window

    yield make
    for window, ctx in opened:
        if not window.worker.thread.isFinished():
            window.close()
        ctx.close()


def load(qtbot, window, path) -> None:
    # model_loaded comes from the window, on the GUI thread, once the model is in use; the
    # worker's own `loaded` can be seen before the window has taken the model.
    with qtbot.waitSignal(window.model_loaded, timeout=60000):
        assert window.models.load(str(path))
