"""What goes wrong reading or writing a chat file."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LineProblem:
    """A line of a chat file that could not be read; `line` counts from 1."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ChatIOError(Exception):
    """A chat file cannot be read or written; the message names the file and the problem.

    `problems` lists the malformed lines when that is why an import stopped."""

    def __init__(self, message: str, problems: list[LineProblem] | None = None):
        super().__init__(message)
        self.problems = problems or []
