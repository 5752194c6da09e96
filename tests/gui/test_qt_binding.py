"""The Qt binding survives a long stream of signals (PySide6 6.12.0 did not: each
Signal.emit dropped a reference to True and the process aborted after a few hundred)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from PySide6.QtCore import QCoreApplication, QObject, Signal
app = QCoreApplication([])
class Emitter(QObject):
    text = Signal(str)
emitter, got = Emitter(), []
emitter.text.connect(got.append)
for _ in range(20000):
    emitter.text.emit("token")
print(len(got))
"""


def test_twenty_thousand_signals_do_not_crash_the_process():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "20000"
