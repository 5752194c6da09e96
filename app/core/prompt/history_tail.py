"""A long chat's history handed to the builder as its newest messages and counts of the rest.

No more than a context's worth of messages can be in a prompt (each costs at least a token)
and world info scans at most MAX_SCAN_DEPTH of them, so reading a 100,000-message path for
every reply buys nothing but the time to read it. What does depend on the whole chat is a
count: world info's timed effects and the author's note interval count messages, the
instruct formats mark the chat's first message, `{{lastMessageId}}` is a position. Those
take the older part's counts from `Earlier`.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.prompt.worldinfo.entry import MAX_SCAN_DEPTH


@dataclass(frozen=True)
class Earlier:
    """The history before the first message the builder was given: how many messages it
    would have been given (with text, no hidden system lines) and how many are the user's."""

    messages: int = 0
    user_messages: int = 0


def history_reach(n_ctx: int) -> int:
    """The newest messages a prompt at `n_ctx` tokens, or its lore scan, can see."""
    return max(n_ctx, MAX_SCAN_DEPTH) + 1
