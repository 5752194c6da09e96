"""The one exception type the card layer raises."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CardError(ValueError):
    """A card (or lorebook) file that cannot be read or written.

    The message names the file and says what is wrong, ready to show to the user as it is.
    Every failure of the card layer is raised as this type, so a caller needs one `except`.
    """

    def __init__(self, filename: str, reason: str) -> None:
        self.filename = str(filename)
        self.reason = reason
        super().__init__(f"{self.filename}: {reason}" if self.filename else reason)


def guarded(source: str, read: Callable[[], T]) -> T:
    """Run `read`; anything it raises that is not a CardError becomes one.

    Callers are promised one exception type. The message says "internal error" so that a
    fuzz test can tell a parser bug from a bad file.
    """
    try:
        return read()
    except CardError:
        raise
    except Exception as exc:
        raise CardError(
            source, f"could not be read (internal error: {type(exc).__name__}: {exc})"
        ) from exc
