"""Where fired lore goes, as the end of SillyTavern's `checkWorldInfo` sorts it out.

Entries are taken by `order`, highest first, and each is put at the front of its position's
list, so a list reads lowest order first and the highest-order entry sits last, nearest to
what follows it. `@depth` entries are grouped by (depth, role) in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.core.prompt.worldinfo.entry import Position, Role, WIEntry
from app.core.prompt.worldinfo.scan import ScanResult


@dataclass
class DepthInjection:
    depth: int
    role: Role
    entries: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.entries)


@dataclass
class Placement:
    before: list[str] = field(default_factory=list)  # before the character definition
    after: list[str] = field(default_factory=list)  # after it
    an_top: list[str] = field(default_factory=list)
    an_bottom: list[str] = field(default_factory=list)
    em_top: list[str] = field(default_factory=list)  # example blocks before the card's
    em_bottom: list[str] = field(default_factory=list)
    depth: list[DepthInjection] = field(default_factory=list)
    prompt_order: list[WIEntry] = field(default_factory=list)


_ROUGH_ORDER = (
    Position.BEFORE,
    Position.AFTER,
    Position.EM_TOP,
    Position.EM_BOTTOM,
    Position.AN_TOP,
    Position.AN_BOTTOM,
    Position.AT_DEPTH,
)


def place(result: ScanResult) -> Placement:
    out = Placement()
    lists = {
        Position.BEFORE: out.before,
        Position.AFTER: out.after,
        Position.AN_TOP: out.an_top,
        Position.AN_BOTTOM: out.an_bottom,
    }
    by_position: dict[Position, list[WIEntry]] = {p: [] for p in Position}
    for entry in sorted(result.activated, key=lambda e: -e.order):
        content = result.content[entry].strip()
        if not content:
            continue
        by_position[entry.position].insert(0, entry)
        if entry.position in lists:
            lists[entry.position].insert(0, content)
        elif entry.position == Position.EM_TOP:
            out.em_top.insert(0, content)
        elif entry.position == Position.EM_BOTTOM:
            out.em_bottom.insert(0, content)
        else:
            _add_depth(out.depth, entry, content)
    # SillyTavern then unshifts each "before the examples" block onto the examples in turn,
    # which reverses them: the highest order comes first there.
    out.em_top.reverse()
    by_position[Position.EM_TOP].reverse()
    by_position[Position.AT_DEPTH].sort(key=lambda e: -e.depth)
    out.prompt_order = [e for p in _ROUGH_ORDER for e in by_position[p]]
    return out


def _add_depth(groups: list[DepthInjection], entry: WIEntry, content: str) -> None:
    for group in groups:
        if group.depth == entry.depth and group.role == entry.role:
            group.entries.insert(0, content)
            return
    groups.append(DepthInjection(entry.depth, entry.role, [content]))


def position_label(entry: WIEntry) -> str:
    if entry.position == Position.AT_DEPTH:
        return f"at_depth {entry.depth} {entry.role.message_role}"
    return _POSITION_LABELS[entry.position]


_POSITION_LABELS = {p: p.label for p in Position}
