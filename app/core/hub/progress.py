"""Progress of a download: bytes, speed, time left, the phase, and a note for people."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

PROGRESS_INTERVAL_S = 0.1


@dataclass(frozen=True)
class Progress:
    done: int  # bytes of the whole download on disk (fetched now or kept from before)
    total: int
    speed: float  # bytes per second over the last few seconds
    eta: float | None  # seconds left, None while the speed is unknown
    file: str  # the file being worked on
    phase: str  # "identifying" (hashing a file found under the final name without a
    # manifest), "checking" (hashing a kept .part), "waiting" (another
    # window or command is downloading this file), "downloading", "retrying" (waiting to
    # reconnect), "verifying", "done"
    note: str = ""  # while retrying or waiting: why, the next attempt, the bound

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass
class Meter:
    total: int
    callback: Callable[[Progress], None] | None
    done: int = 0
    file: str = ""
    phase: str = "downloading"
    note: str = ""
    interval: float = field(default_factory=lambda: PROGRESS_INTERVAL_S)
    _samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))
    _last_emit: float = 0.0

    def add(self, n: int, *, transferred: bool = True) -> None:
        self.done += n
        now = time.monotonic()
        if transferred and (not self._samples or now - self._samples[-1][0] >= 0.2):
            self._samples.append((now, self.done))
        if now - self._last_emit >= self.interval:
            self.emit(now)

    def set(self, *, file: str | None = None, phase: str | None = None, note: str = "") -> None:
        self.file = file if file is not None else self.file
        self.phase = phase if phase is not None else self.phase
        self.note = note
        self._samples.clear()
        self.emit()

    def emit(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._last_emit = now
        if self.callback is not None:
            speed = self._speed(now)
            eta = (self.total - self.done) / speed if speed > 0 else None
            self.callback(
                Progress(self.done, self.total, speed, eta, self.file, self.phase, self.note)
            )

    def _speed(self, now: float) -> float:
        while len(self._samples) > 2 and now - self._samples[0][0] > 5.0:
            self._samples.popleft()
        if len(self._samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0
