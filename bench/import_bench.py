"""imports: how long the GUI thread is blocked while a big SillyTavern chat is imported.

A 20,000-message chat (about 10 MB of `.jsonl`) is imported into a real store through the
real Chats dialog, offscreen, twice per round: once with the dialog's own `import_file`
on the GUI thread (what the window did before the import moved off it) and once through
`start_chat_import` (read and write in a background job, progress dialog after 0.3 s).

Measured, not inferred: a 2 ms precise QTimer ticks on the GUI thread throughout, and
`blocked_ms` is the longest gap between two ticks, less the 2 ms, from the request until
the import has been reported. `total_ms` is the wall time until then.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

TICK_MS = 2


def write_chat(path: Path, n: int) -> Path:
    rows: list[dict] = [{"user_name": "Ann", "character_name": "Wren", "create_date": "2024-1-1"}]
    rows += [
        {
            "name": "Ann" if i % 2 == 0 else "Wren",
            "is_user": i % 2 == 0,
            "mes": f"Line {i}: " + "the storm rattles the shutters of the inn " * 10,
            "send_date": "2024-01-01T20:00:00Z",
        }
        for i in range(n)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


class _Beat:
    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer(interval=TICK_MS)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.last = time.perf_counter()
        self.worst = 0.0
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last)
        self.last = now

    def reset(self) -> None:
        self.last, self.worst = time.perf_counter(), 0.0


def _import_once(dialog, path: Path, background: bool) -> dict:
    from PySide6.QtCore import QEventLoop, QTimer

    from app.gui.chat.chat_import_job import start_chat_import

    loop = QEventLoop()
    beat = _Beat()
    before = len(dialog.chat_ids())
    start = time.perf_counter()
    beat.reset()
    if background:
        job = start_chat_import(dialog, str(path), accept_all=True)
        job.finished.connect(lambda _outcome: QTimer.singleShot(0, loop.quit))
        QTimer.singleShot(300_000, loop.quit)
        loop.exec()
    else:
        QTimer.singleShot(0, lambda: (dialog.import_file(str(path), lambda _p: True), loop.quit()))
        loop.exec()
    total = time.perf_counter() - start
    beat._tick()
    beat.timer.stop()
    assert len(dialog.chat_ids()) == before + 1, dialog.status.text()
    return {
        "blocked_ms": round(max(0.0, beat.worst * 1000 - TICK_MS), 1),
        "total_ms": round(total * 1000, 1),
    }


def measure(n_messages: int = 20_000, rounds: int = 3) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.core.store import Store
    from app.gui.chat.chats_dialog import ChatsDialog
    from app.gui.launch import make_application

    make_application()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = write_chat(root / "long evening.jsonl", n_messages)
        size_mb = path.stat().st_size / 1e6
        store = Store(root / "parlor.sqlite3")
        wren = store.characters.add({"name": "Wren", "first_mes": "Welcome in."})
        dialog = ChatsDialog(store, wren)
        dialog.show()
        runs: dict[str, list[dict]] = {"gui_thread": [], "background": []}
        for _ in range(rounds):
            for kind in runs:
                runs[kind].append(_import_once(dialog, path, kind == "background"))
        dialog.close()
        store.close()
    out: dict = {"messages": n_messages, "file_mb": round(size_mb, 1)}
    for kind, rows in runs.items():
        blocked = [r["blocked_ms"] for r in rows]
        out[kind] = {
            "blocked_ms": statistics.median(blocked),
            "blocked_runs_ms": blocked,
            "total_ms": statistics.median(r["total_ms"] for r in rows),
        }
    return out


def run(quick: bool = False) -> dict:
    return measure(2_000 if quick else 20_000, rounds=1 if quick else 3)


if __name__ == "__main__":
    print(json.dumps(run()))
