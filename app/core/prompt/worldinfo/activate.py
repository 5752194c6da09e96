"""World info for one prompt: sort the books, scan, place, and explain every entry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from app.core.prompt.worldinfo.entry import WIEntry
from app.core.prompt.worldinfo.placement import Placement, place, position_label
from app.core.prompt.worldinfo.scan import ScanInput, ScanResult, check_world_info, sort_entries
from app.core.prompt.worldinfo.settings import Book, Source, WorldInfoSettings
from app.core.prompt.worldinfo.timed import State
from app.core.prompt.worldinfo.trace import TraceItem


class LazyTrace(Sequence[TraceItem]):
    """The trace, made on first use: a sequence of `TraceItem`, one per entry."""

    def __init__(self, make: Callable[[], list[TraceItem]]) -> None:
        self._make = make
        self._items: list[TraceItem] | None = None

    def _all(self) -> list[TraceItem]:
        if self._items is None:
            self._items = self._make()
        return self._items

    @overload
    def __getitem__(self, index: int) -> TraceItem: ...
    @overload
    def __getitem__(self, index: slice) -> list[TraceItem]: ...
    def __getitem__(self, index: int | slice) -> TraceItem | list[TraceItem]:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    def __repr__(self) -> str:
        return repr(self._all())


@dataclass
class LoreResult:
    placement: Placement = field(default_factory=Placement)
    fired: list[str] = field(default_factory=list)  # names, in prompt order
    trace: Sequence[TraceItem] = field(default_factory=list)  # every entry, in book order
    tokens: int = 0
    budget: int = 0
    timed_state: State = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # the fired entries' text, as `fired`

    @property
    def text(self) -> str:
        """Every fired entry's text in prompt order (what a one-block view would show)."""
        return "\n".join(self.texts)


def run_world_info(
    books: list[Book],
    lines: list[str],
    *,
    max_context: int,
    count_tokens: Callable[[str], int],
    settings: WorldInfoSettings | None = None,
    expand: Callable[[str], str] = lambda s: s,
    seed: str = "",
    timed_state: Any = None,
    chat_length: int | None = None,
    character: str = "",
    character_tags: tuple[str, ...] = (),
) -> LoreResult:
    """Fire the books' entries on `lines` (the chat, newest first), for `character` (the
    card's name) with `character_tags` (its tags): entries with a character filter ask."""
    settings = settings or WorldInfoSettings()
    entries = sort_entries(books, settings.strategy)
    if not entries:
        return LoreResult(timed_state=timed_state if isinstance(timed_state, dict) else {})
    scan = check_world_info(
        ScanInput(
            entries,
            lines,
            max_context,
            count_tokens,
            settings,
            expand,
            seed,
            timed_state,
            chat_length,
            character,
            character_tags,
        )
    )
    placement = place(scan)
    result = LoreResult(
        placement=placement,
        fired=[e.label for e in placement.prompt_order],
        trace=LazyTrace(lambda: _trace(entries, scan)),
        tokens=sum(scan.tokens.values()),
        budget=scan.budget,
        timed_state=scan.timed_state,
        warnings=_warnings(scan),
        texts=[scan.content[e].strip() for e in placement.prompt_order],
    )
    return result


def _trace(entries: list[WIEntry], scan: ScanResult) -> list[TraceItem]:
    placed = set(scan.activated)
    reasons = scan.explain()
    items = []
    for e in entries:
        fired = e in placed and bool(scan.content[e].strip())
        reason = reasons.get(e, "") or "no key found"
        if e in placed and not fired:
            reason += "; its content is empty"
        items.append(
            TraceItem(
                e.label,
                fired,
                reason,
                position_label(e),
                scan.tokens.get(e, 0) if fired else 0,
                e.world,
                str(e.uid),
            )
        )
    return items


def _warnings(scan: ScanResult) -> list[str]:
    out = [
        f"Lore key {key} took too long to match and was skipped (a regular expression "
        "that backtracks without end)."
        for key in scan.timed_out_keys
    ]
    cut = [e.label for e in scan.cut]
    if cut:
        out.append(f"Lore left out for its token budget ({scan.budget}): " + ", ".join(cut))
    return out


def activate_lore(
    book: dict[str, Any] | None,
    history: Sequence[str],
    *,
    scan_depth: int,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    expand: Callable[[str], str] = lambda s: s,
    settings: WorldInfoSettings | None = None,
    seed: str = "",
) -> LoreResult:
    """One book on plain lines (oldest first) with a fixed token budget: a short form of
    `run_world_info` for tests and tools."""
    base = settings or WorldInfoSettings()
    settings = WorldInfoSettings(
        **{**base.__dict__, "depth": scan_depth, "budget_percent": 100, "budget_cap": 0}
    )
    books = [Book("card", book, Source.CHARACTER)] if isinstance(book, dict) else []
    return run_world_info(
        books,
        list(reversed(history)),
        max_context=budget_tokens,
        count_tokens=count_tokens,
        settings=settings,
        expand=expand,
        seed=seed,
    )
