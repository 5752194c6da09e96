"""A stand-in for the engine child's pipe, for tests that drive `Child` in this process."""

from __future__ import annotations


class Collect:
    """Keeps the text pieces the child sends; drops its other messages."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    def send(self, message) -> None:
        if message[0] == "token":
            self.pieces.append(message[1])
