"""gui_scale: how long the GUI thread is blocked by each step in a very long chat.

A real store holds one 10,000- or 100,000-message chat (written with executemany, as an
import would); the real main window runs offscreen with a real engine child on a small
generated model. Each round: open the chat, send a message (until the reply is written),
swipe back to the previous reply, Find the oldest message (until it is shown, highlighted),
and search all chats (until the last hit is listed).

The GUI-thread figure is measured, not inferred: a 2 ms precise QTimer ticks on the GUI
thread throughout, and `blocked_ms` is the longest gap between two ticks, less the 2 ms,
while the step runs. It includes everything the GUI thread does for the step (the click's
own slot, store reads and writes, model updates, layout, painting, queued results of
background work). On a shared machine a gap also holds time the thread waited for a CPU, so
`blocked_cpu_ms` is the same longest stretch counted in the GUI thread's own CPU time
(`time.thread_time` at each tick). `call_ms` is the wall time of the call itself and
`total_ms` the time until the step is done (background work included, which is not GUI
time).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

TICK_MS = 2
OLDEST = "The first evening at the Gull and Lantern."
LINES = (
    '*She laughs and refills the mug.* "You should hear what the fisherman said."',
    "Go on, then. I have all night, and the storm isn't going anywhere.",
)


def write_long_chat(store, character_id: int, n: int, title: str = "A very long evening") -> int:
    """A chat of `n` messages on one path, written in one transaction with executemany (a
    100,000-message chat takes a few seconds, mostly the full-text index); its id."""
    now = time.time()
    with store._tx() as c:
        chat = c.execute(
            "INSERT INTO chats (character_id, title, created_at, last_used_at) VALUES (?, ?, ?, ?)",
            (character_id, title, now, now),
        ).lastrowid
        base = (c.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]) + 1
        rows = (
            (
                base + i,
                chat,
                base + i - 1 if i else None,
                "assistant" if i % 2 == 0 else "user",
                OLDEST if i == 0 else f"{LINES[i % 2]} (entry {i})",
                base + i + 1 if i < n - 1 else None,
                now - (n - i),
            )
            for i in range(n)
        )
        c.executemany(
            "INSERT INTO messages (id, chat_id, parent_id, role, text, active_child_id,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        c.execute("UPDATE chats SET active_leaf_id = ? WHERE id = ?", (base + n - 1, chat))
    return chat


class Heartbeat:
    """Ticks on the GUI thread; `worst_ms` is the longest the event loop went without a tick."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer(interval=TICK_MS, timerType=Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.worst_ms = 0.0
        self.worst_cpu_ms = 0.0
        self._last = time.perf_counter()
        self._last_cpu = time.thread_time()

    def start(self) -> None:
        self.reset()
        self.timer.start()

    def reset(self) -> None:
        self._last, self.worst_ms = time.perf_counter(), 0.0
        self._last_cpu, self.worst_cpu_ms = time.thread_time(), 0.0

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.worst_ms = max(self.worst_ms, (now - self._last) * 1000 - TICK_MS)
        self.worst_cpu_ms = max(self.worst_cpu_ms, (cpu - self._last_cpu) * 1000)
        self._last, self._last_cpu = now, cpu


def _spin(ms: int) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _step(beat: Heartbeat, act, done=None, timeout_s: float = 300.0, settle_ms: int = 150) -> dict:
    """Run `act` from the event loop, wait until `done()` is true, let the window settle
    (layout and paint), and return the GUI thread's longest block meanwhile."""
    from PySide6.QtCore import QEventLoop, QTimer

    out: dict = {}
    loop = QEventLoop()

    def run() -> None:
        beat.reset()
        start = time.perf_counter()
        out["result"] = act()
        out["call_ms"] = (time.perf_counter() - start) * 1000
        out["start"] = start
        loop.quit()

    QTimer.singleShot(0, run)
    loop.exec()
    deadline = time.monotonic() + timeout_s
    while done is not None and not done():
        if time.monotonic() > deadline:
            raise TimeoutError("a gui_scale step did not finish")
        _spin(5)
    total = (time.perf_counter() - out["start"]) * 1000
    _spin(settle_ms)
    return {
        "blocked_ms": round(beat.worst_ms, 1),
        "blocked_cpu_ms": round(beat.worst_cpu_ms, 1),
        "call_ms": round(out["call_ms"], 1),
        "total_ms": round(total, 1),
        "result": out["result"],
    }


def _round(window, chat: int, beat: Heartbeat, n: int) -> dict:
    from app.gui.chat.chats_dialog import ChatsDialog

    ctrl, model, bar = window.controller, window.chat_model, window.find_bar
    ctrl.chat_id = None
    model.set_messages([])
    _spin(50)
    steps = {"open": _step(beat, lambda: window._open_chat(chat))}
    assert model.rowCount() and model.has_earlier() is (n > 60)
    steps["send"] = _step(beat, lambda: ctrl.send("Tell me more."), lambda: not ctrl.busy)
    assert steps["send"]["result"], "the send was refused"
    # past the last reply's last swipe a new one is written; then back to the first
    last = model.newest()
    steps["regenerate"] = _step(beat, lambda: ctrl.swipe(last.id, +1), lambda: not ctrl.busy)
    steps["swipe"] = _step(beat, lambda: ctrl.swipe(model.newest().id, -1))
    window.find_action.trigger()
    bar.field.setText("Gull and Lantern")
    searched: list[int] = []
    bar.searched.connect(searched.append)
    steps["find_oldest"] = _step(beat, lambda: bar.find(-1), lambda: bool(searched))
    bar.searched.disconnect(searched.append)
    assert window.chat_view.currentIndex().data() == OLDEST, "Find did not reach the oldest"
    bar.hide()
    dialog = ChatsDialog(window.ctx.store, window.ctx.store.chats.character_of(chat), chat, window)
    dialog.show()
    found: list[int] = []
    dialog.searched.connect(found.append)
    steps["global_search"] = _step(beat, lambda: dialog.search("fisherman"), lambda: bool(found))
    steps["global_search"]["hits"] = found[0]
    dialog.close()
    dialog.deleteLater()
    for s in steps.values():
        s.pop("result", None)
    return steps


def _summary(rounds: list[dict]) -> dict:
    out = {}
    for name in rounds[0]:
        blocked = [r[name]["blocked_ms"] for r in rounds]
        cpu = [r[name]["blocked_cpu_ms"] for r in rounds]
        total = [r[name]["total_ms"] for r in rounds]
        out[name] = {
            "blocked_ms": round(statistics.median(blocked), 1),
            "blocked_min_ms": min(blocked),
            "blocked_max_ms": max(blocked),
            "blocked_cpu_ms": round(statistics.median(cpu), 1),
            "blocked_cpu_max_ms": max(cpu),
            "call_ms": round(statistics.median(r[name]["call_ms"] for r in rounds), 1),
            "total_ms": round(statistics.median(total), 1),
            "total_max_ms": max(total),
        }
    out["worst_blocked_ms"] = max(v["blocked_max_ms"] for v in out.values())
    out["worst_blocked_cpu_ms"] = max(
        v["blocked_cpu_max_ms"] for k, v in out.items() if isinstance(v, dict)
    )
    return out


def measure(n_messages: int, rounds: int, model_path: Path) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.core.appdata.paths import Paths
    from app.core.chat.context import AppContext
    from app.core.chat.default_character import ensure_default_character
    from app.gui.launch import make_application, open_main_window

    make_application()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ctx = AppContext.create(Paths(root / "d", root / "c", root / "k", root / "l"))
        ctx.settings.max_tokens, ctx.settings.n_ctx = 8, 2048
        start = time.perf_counter()
        chat = write_long_chat(ctx.store, ensure_default_character(ctx.store), n_messages)
        written_s = time.perf_counter() - start
        window = open_main_window(ctx)
        window.resize(1100, 760)
        window.show()
        loaded: list = []
        window.model_loaded.connect(loaded.append)
        window.models.load(str(model_path))
        deadline = time.monotonic() + 120
        while not loaded:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{model_path} did not load (see parlor.log)")
            _spin(20)
        beat = Heartbeat()
        beat.start()
        results = [_round(window, chat, beat, n_messages) for _ in range(rounds)]
        beat.timer.stop()
        window.close()
        ctx.close()
    summary = _summary(results)
    summary.update(messages=n_messages, rounds=rounds, store_written_s=round(written_s, 1))
    return summary


def run(quick: bool = False, rounds: int | None = None) -> dict:
    from bench.bench_model import QUICK, write_bench_model

    sizes = (1_000,) if quick else (10_000, 100_000)
    rounds = rounds or (2 if quick else 5)
    with tempfile.TemporaryDirectory() as tmp:
        model = write_bench_model(Path(tmp) / "gui-scale.gguf", QUICK)
        return {str(n): measure(n, rounds, model) for n in sizes}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
