"""Why each entry fired or did not: what the prompt inspector and `parlor prompt --json` show."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class TraceItem:
    entry: str  # the entry's name
    fired: bool
    reason: str
    position: str  # where it goes (before_char, at_depth 4 system, ...)
    tokens: int = 0
    world: str = ""
    uid: str = ""

    def as_json(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k not in ("world", "uid")}
