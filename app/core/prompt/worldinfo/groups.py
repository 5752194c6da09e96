"""Inclusion groups: one entry of a group fires per pass (SillyTavern's
`filterByInclusionGroups`, `filterGroupsByTimedEffects`, `filterGroupsByScoring`). Draws use
the chat's seed.

SillyTavern's rules, kept as they are: `group` is split on `,\\s*`; a group is closed in later
passes only by a fired entry whose whole `group` text is that group's name (so an entry that
fired in "g1, g2" leaves g1 open to a recursion pass); an entry removed by one group's draw
still takes part in the draw of its other groups (and may win one, which then loses all).

One difference, on purpose: SillyTavern removes an entry with `splice(indexOf(entry), 1)`,
and for an entry already removed by another of its groups `indexOf` is -1, so it removes the
last entry of the pass instead, an entry of no group at all. Parlor removes only the entry.
"""

from __future__ import annotations

from collections.abc import Callable

from app.core.prompt.worldinfo.buffer import ScanBuffer, ScanState
from app.core.prompt.worldinfo.entry import Logic, WIEntry
from app.core.prompt.worldinfo.keys import Joined
from app.core.prompt.worldinfo.timed import TimedEffects

Roll = Callable[[str], float]  # a seeded number in [0, 1) for a named draw
Has = Callable[[WIEntry, str, Joined], bool]  # whether the entry's key is in the text
Remove = Callable[[WIEntry, str], None]  # take an entry out of the pass, with the reason
Grouped = dict[str, list[WIEntry]]


def filter_groups(
    new: list[WIEntry],
    activated: dict[WIEntry, str],
    buffer: ScanBuffer,
    state: ScanState,
    timed: TimedEffects,
    score_all: bool,
    roll: Roll,
    has: Has,
    why: dict[WIEntry, str],
    lost: dict[WIEntry, str],
) -> None:
    """Remove group losers from `new` in place, writing why each one lost into `why`.

    A loser matches again in later passes and then loses to the group that already fired;
    `lost` keeps the first reason (the draw, the score), which is what the user wants to see.
    """
    grouped: Grouped = {}
    for entry in new:
        for name in entry.groups:
            grouped.setdefault(name, []).append(entry)

    def remove(entry: WIEntry, reason: str) -> None:
        if entry in new:
            new.remove(entry)
            why[entry] = lost.setdefault(entry, reason)

    sticky_groups = _timed_filter(grouped, timed, remove)
    fired = {a.group for a in activated if a.group}
    for name, group in grouped.items():
        if name in sticky_groups:
            continue
        if score_all or any(e.use_group_scoring for e in group):
            _score(name, group, buffer, state, score_all, has, remove)
        # SillyTavern compares a fired entry's whole `group` text with the name (`x.group
        # === key`): an entry that fired in "g1, g2" does not close g1 for later passes.
        if name in fired:
            for entry in group:
                remove(entry, f"group '{name}' already fired")
            continue
        if len(group) <= 1:
            continue
        _draw(name, group, roll, remove)


def _timed_filter(grouped: Grouped, timed: TimedEffects, remove: Remove) -> set[str]:
    sticky_groups = set()
    for name, group in grouped.items():
        sticky = [e for e in group if timed.is_active("sticky", e)]
        if sticky:
            sticky_groups.add(name)
            for entry in group:
                if entry not in sticky:
                    remove(entry, f"group '{name}': a sticky entry holds it")
        for entry in group:
            if timed.is_active("cooldown", entry) or timed.is_active("delay", entry):
                remove(entry, f"group '{name}': on cooldown or delayed")
    return sticky_groups


def _score(
    name: str,
    group: list[WIEntry],
    buffer: ScanBuffer,
    state: ScanState,
    score_all: bool,
    has: Has,
    remove: Remove,
) -> None:
    scores = [score(e, buffer, state, has) for e in group]
    best = max(scores)
    for entry, value in list(zip(group, scores, strict=True)):
        scored = entry.use_group_scoring if entry.use_group_scoring is not None else score_all
        if scored and value < best:
            remove(entry, f"group '{name}': scored {value} keys, the best scored {best}")
            group.remove(entry)


def score(entry: WIEntry, buffer: ScanBuffer, state: ScanState, has: Has) -> int:
    """SillyTavern's `getScore`: keys found, secondary keys counting only for AND logic."""
    if not entry.keys:
        return 0
    hay = buffer.get(entry, state)
    primary = sum(1 for k in entry.keys if has(entry, k, hay))
    secondary = sum(1 for k in entry.secondary if has(entry, k, hay))
    if entry.secondary and entry.logic == Logic.AND_ANY:
        return primary + secondary
    if entry.secondary and entry.logic == Logic.AND_ALL:
        return primary + secondary if secondary == len(entry.secondary) else primary
    return primary


def _draw(name: str, group: list[WIEntry], roll: Roll, remove: Remove) -> None:
    override = sorted((e for e in group if e.group_override), key=lambda e: -e.order)
    if override:
        winner = override[0]
        reason = f"group '{name}': '{winner.label}' has priority"
    else:
        total = sum(e.group_weight for e in group)
        value = roll(f"group:{name}") * total
        winner, running = None, 0.0
        for entry in group:
            running += entry.group_weight
            if value <= running:
                winner = entry
                break
        if winner is None:
            return
        reason = f"group '{name}': drew {value:.1f} of {total:g}, '{winner.label}' won"
    for entry in group:
        if entry is not winner:
            remove(entry, reason)
