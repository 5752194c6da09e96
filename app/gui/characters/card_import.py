"""Reading card files for the library, off the GUI thread.

Reading is the slow part of an import (a big PNG, a CharX zip, a file that blocks on
open), and it is pure: `read_cards` only parses (and makes each avatar's thumbnail, a
QImage, which is safe on any thread), so it runs in a `ProgressJob` and the library writes
the cards afterwards, on the GUI thread. A Cancel while reading therefore adds nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtGui import QImage

from app.core.cards import Card, CardError, load_card
from app.gui.characters.thumbnails import thumbnail_image
from app.gui.models.jobs import Report
from app.gui.models.progress_job import Step


class ImportCancelled(Exception):
    """The user pressed Cancel between two files."""


@dataclass
class ReadCards:
    """The cards read, with the file each came from and its thumbnail, and one line per
    file that failed."""

    cards: list[tuple[str, Card, QImage | None]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_cards(
    paths: Iterable[str],
    report: Report | None = None,
    cancel: threading.Event | None = None,
) -> ReadCards:
    paths = list(paths)
    out = ReadCards()
    for number, path in enumerate(paths):
        if cancel is not None and cancel.is_set():
            raise ImportCancelled("Cancelled.")
        if report is not None:
            text = f"Reading {Path(path).name} ({number + 1} of {len(paths)})…"
            report(Step(number, len(paths), text), milestone=True)
        try:
            card = load_card(path)
            out.cards.append((path, card, thumbnail_image(card.avatar)))
        except CardError as exc:
            out.errors.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad file must not end the import
            out.errors.append(f"{path}: could not be read ({type(exc).__name__}: {exc})")
    return out
