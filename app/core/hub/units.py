"""Sizes as people read them on the hub and on model cards (decimal units)."""

from __future__ import annotations

GB = 1_000_000_000


def human_size(num_bytes: float) -> str:
    """Decimal units, as the hub and the model cards use: '1.23 GB', '45.6 MB', '300 kB'."""
    for unit, scale, digits in (("GB", GB, 2), ("MB", 10**6, 1), ("kB", 10**3, 0)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.{digits}f} {unit}"
    return f"{int(num_bytes)} bytes"


def human_seconds(seconds: float) -> str:
    """'45 s', '5 min', '1 h 5 min': for retry waits and their bound."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
