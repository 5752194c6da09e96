"""Benchmarks 1 and 4: a reply through the app's whole path, and the GUI's worst stall.

The path is the one a click takes: the engine child process → GenerationWorker on its
QThread (batches of about 50 ms) → queued signals → ChatModel → a QListView painting the
message with the app's MessageDelegate. A QTimer on the GUI thread ticks every TICK_MS and
records how late each tick is; the worst lateness while streaming is the stall. The
MainWindow itself (menus, store writes every 2 s, auto-scroll) is not part of this path.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

TICK_MS = 2


@dataclass
class _Prompt:
    text: str
    stop: list[str]
    permanent_chars: int = 0  # a plain prompt: nothing marked permanent (see BuiltPrompt)


def _message(role: str, text: str, status: str = "complete"):
    from app.core.store import Message

    return Message(
        id=0, chat_id=0, parent_id=None, role=role, text=text, status=status, created_at=time.time()
    )


class _StallMeter:
    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer(interval=TICK_MS, timerType=Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.worst_ms = 0.0
        self.ticks = 0
        self._last = None

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst_ms = max(self.worst_ms, (now - self._last) * 1000 - TICK_MS)
        self._last = now
        self.ticks += 1


def _view(model):
    from PySide6.QtWidgets import QAbstractItemView, QListView

    from app.gui.chat.delegate import MessageDelegate

    view = QListView()
    view.setModel(model)
    view.setItemDelegate(MessageDelegate(view))
    view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    view.setWordWrap(True)
    view.resize(800, 700)
    view.show()
    return view


def stream_through_app(engine, prompt: str, sampling) -> dict:
    """Stream one reply along the app's path; tokens/s as the GUI sees them, worst stall."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QObject, Signal
    from PySide6.QtWidgets import QApplication

    from app.gui.chat.model import ChatModel
    from app.gui.workers import GenerationWorker, WorkerThread

    app = QApplication.instance() or QApplication([])

    class Sender(QObject):
        generate = Signal(object, object)

    model = ChatModel()
    model.append(_message("user", "Tell me about the harbour."))
    model.append(_message("assistant", "", "streaming"))
    view = _view(model)
    worker = GenerationWorker(engine)
    thread = WorkerThread(worker)
    sender = Sender()
    sender.generate.connect(worker.generate)
    out: dict = {"batches": 0, "chars": 0}
    loop = QEventLoop()

    def on_batch(text: str) -> None:
        model.append_text(text)
        out["batches"] += 1
        out["chars"] += len(text)

    worker.token_batch.connect(on_batch)
    worker.finished.connect(lambda stats: out.update(stats=stats) or loop.quit())
    worker.failed.connect(lambda msg, _crashed: out.update(error=msg) or loop.quit())
    meter = _StallMeter()
    app.processEvents()
    meter.start()
    start = time.perf_counter()
    sender.generate.emit(lambda _count: _Prompt(prompt, []), sampling)
    loop.exec()
    elapsed = time.perf_counter() - start
    meter.stop()
    thread.thread.quit()
    thread.thread.wait()
    view.close()
    if "error" in out:
        raise RuntimeError(out["error"])
    stats = out["stats"]
    return {
        "tokens": stats.tokens,
        "seconds": elapsed,
        "tokens_per_s": stats.tokens / elapsed,
        "child_tokens_per_s": stats.tokens_per_s,
        "batches": out["batches"],
        "max_stall_ms": meter.worst_ms,
        "ticks": meter.ticks,
    }
