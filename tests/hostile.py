"""Run a hostile case in a child process with a time limit and an address-space limit.

A case that would freeze the app shows up as a timeout, one that would exhaust memory as a
`MemoryError` (the child's `RLIMIT_AS` is its size at start plus a small allowance), and one
that would crash the app as a broken pool, all without harming the test run itself.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, TypeVar

T = TypeVar("T")


def _limit_memory(extra_mb: int) -> None:
    pages = int(open("/proc/self/statm").read().split()[0])
    now = pages * os.sysconf("SC_PAGE_SIZE")
    limit = now + extra_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class Bounded:
    """One spawned child per test module, reused for its cases (spawning costs a second)."""

    def __init__(self, extra_mb: int = 400) -> None:
        self._pool = ProcessPoolExecutor(
            1, mp_context=get_context("spawn"), initializer=_limit_memory, initargs=(extra_mb,)
        )

    def __call__(self, func: Callable[..., T], *args: Any, seconds: float = 10.0) -> T:
        """`func(*args)` in the child; TimeoutError if it runs past `seconds`."""
        future = self._pool.submit(func, *args)
        try:
            return future.result(timeout=seconds)
        except TimeoutError:
            self.close()  # the child is stuck in the case: end it, not just abandon it
            raise

    def close(self) -> None:
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            process.kill()
        self._pool.shutdown(wait=False, cancel_futures=True)
