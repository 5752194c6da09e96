"""Fit the prompt into the context, in SillyTavern's order (`public/script.js`: `Generate`,
`checkPromptSize`).

First the permanent part: the story string (system prompt, card, persona; with "pin examples"
the example dialogue too), what follows the history, and the last user message with anything
after it. Then the history, newest first, one message at a time, stopping at the first message
that does not fit, so the work grows with what fits and never with the whole chat. Then the
example blocks, one by one, while they fit. Last, the real rendering is measured and, while it
is over, an example block and then the oldest kept message go, as `checkPromptSize` does.

When the permanent part alone is too big, pinned examples go first, then the card's longest
optional fields are shortened, and as a last resort the newest messages are cut from their
beginning; each step leaves a warning that says which context size would hold it all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from app.core.prompt.presets import STORY, ChatTemplate, Message, Rendered

# Card fields that may be shortened, tried longest first; the system prompt is kept.
TRIMMABLE = ("description", "personality", "scenario", "persona", "post_history", "system")
_FIRST_WINDOW = 16  # messages rendered in the first step of the history walk
_ELLIPSIS = " …"


class Counter:
    """Token counts cached per text for one build; `prime` counts many texts in one call."""

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        count_many: Callable[[list[str]], list[int]] | None = None,
    ) -> None:
        self._one, self._many = count_tokens, count_many
        self._cache: dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        if text not in self._cache:
            self._cache[text] = int(self._one(text))
        return self._cache[text]

    def prime(self, texts: Iterable[str]) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo and self._many is not None:
            self._cache.update(zip(todo, map(int, self._many(todo)), strict=True))


def join(texts: Iterable[str]) -> str:
    return "\n\n".join(t for t in texts if t)


@dataclass
class Layout:
    """What goes into the prompt, before fitting: part texts by name, example blocks, history."""

    template: ChatTemplate
    head: list[str]  # part names before the history, in order
    tail: list[str]  # part names after it
    texts: dict[str, str]
    examples: list[str]  # example blocks, each with its separator line
    history: list[Message]
    continue_last: bool
    char: str
    # (texts, kept example blocks) -> the story string, for templates that write their own
    story_renderer: Callable[[dict[str, str], list[str]], str] | None = None
    # Example blocks as turns of their own (a model's chat template; `example_turns.py`):
    # then `examples` holds each block's text only for a first estimate of its size.
    example_turns: list[list[Message]] | None = None
    example_end: Message | None = None  # after the kept blocks
    earlier: int = 0  # messages before history[0] that the builder was not given

    def part_text(self, name: str, n_examples: int) -> str:
        if name != "examples":
            return self.texts[name]
        return "" if self.example_turns is not None else "\n".join(self.examples[:n_examples])

    def render(self, start: int, n_examples: int) -> tuple[Rendered, list[Any]]:
        """The prompt without history[:start]; kinds say what each segment is."""
        body: list[tuple[Any, Message]] = list(enumerate(self.history[start:], start))
        tail = join(self.texts[n] for n in self.tail)
        if tail:  # after the history, or before the reply that is continued
            body.insert(len(body) - self.continue_last, ("tail", Message("system", tail)))
        if self.example_turns is not None and n_examples:
            turns = [m for block in self.example_turns[:n_examples] for m in block]
            turns += [self.example_end] if self.example_end else []
            body[:0] = [("example", m) for m in turns]
        if self.story_renderer is not None:
            story = self.story_renderer(self.texts, self.examples[:n_examples])
        else:
            story = join(self.part_text(n, n_examples) for n in self.head)
        if story:
            name = STORY if self.story_renderer is not None else None
            body.insert(0, ("story", Message("system", story, name)))
        # Instruct presets mark the chat's first message, so they learn where it starts.
        from_start = start == 0 and not self.earlier
        more = {"chat_from_start": from_start} if self.story_renderer is not None else {}
        rendered = self.template.render(
            [m for _, m in body],
            add_generation_prompt=True,
            continue_last=self.continue_last,
            assistant_name=self.char,
            **more,
        )
        return rendered, [kind for kind, _ in body] + ["trailer"]

    @cached_property
    def protected(self) -> int:
        """Messages before this index may be dropped: never the last user message or later.
        Found from the end, so a long chat costs only its last turn."""
        for i in range(len(self.history) - 1, -1, -1):
            if self.history[i].role == "user":
                return i
        return max(0, len(self.history) - 1)


@dataclass
class Fit:
    start: int  # the first history message kept
    n_examples: int  # example blocks kept
    rendered: Rendered
    kinds: list[Any]
    costs: list[int]
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.costs)


def measure(layout: Layout, start: int, n_examples: int, count: Counter) -> Fit:
    rendered, kinds = layout.render(start, n_examples)
    count.prime(rendered.segments)
    return Fit(start, n_examples, rendered, kinds, [count(s) for s in rendered.segments])


def fit(
    layout: Layout,
    count: Counter,
    budget: int,
    *,
    pin_examples: bool,
    context_hint: Callable[[int], str],
) -> Fit:
    """The prompt with the most recent history that fits `budget` tokens.

    `context_hint(tokens)` says what to raise so that a prompt of `tokens` would fit.
    """
    warnings: list[str] = []
    pinned = len(layout.examples) if pin_examples else 0
    base = measure(layout, layout.protected, pinned, count)
    if base.total > budget and pinned:
        warnings.append(
            f"The pinned example dialogue ({pinned} blocks) does not fit the "
            f"context and was left out; {context_hint(base.total)}."
        )
        pinned = 0
        base = measure(layout, layout.protected, 0, count)
    if base.total > budget:
        base = _shrink_permanent(layout, count, budget, base, warnings, context_hint)
    start = _walk_history(layout, count, budget - base.total, pinned)
    n_examples = pinned or _examples_that_fit(
        layout, count, budget - base.total - _history_cost(layout, count, start, pinned)
    )
    result = _settle(layout, count, budget, start, n_examples, pinned)
    if len(layout.examples) > result.n_examples and not pin_examples:
        warnings.append(
            f"{len(layout.examples) - result.n_examples} of "
            f"{len(layout.examples)} example dialogue blocks were left out for lack "
            "of room (they are only sent when the chat leaves space; pin them in "
            "Settings → Prompt to always send them)."
        )
    result.warnings = warnings
    return result


def _walk_history(layout: Layout, count: Counter, room: int, n_examples: int) -> int:
    """Newest first, one message at a time, stopping at the first that does not fit.

    Each step renders a window twice as large as the last, so the work is proportional to
    what fits (as in SillyTavern's `Generate` loop), never to the whole chat.
    """
    first, window = layout.protected, _FIRST_WINDOW
    while first > 0:
        low = max(0, first - window)
        rendered, kinds = layout.render(low, n_examples)
        segments = {
            k: s
            for k, s in zip(kinds, rendered.segments, strict=True)
            if isinstance(k, int) and k < first and (k > low or low == 0)
        }
        count.prime(segments.values())
        for i in range(first - 1, low - 1 if low == 0 else low, -1):
            cost = count(segments.get(i, ""))
            if cost > room:
                return first
            room -= cost
            first = i
        window *= 2
    return first


def _history_cost(layout: Layout, count: Counter, start: int, n_examples: int) -> int:
    if start >= layout.protected:
        return 0
    rendered, kinds = layout.render(start, n_examples)
    return sum(
        count(s)
        for k, s in zip(kinds, rendered.segments, strict=True)
        if isinstance(k, int) and k < layout.protected
    )


def _examples_that_fit(layout: Layout, count: Counter, room: int) -> int:
    count.prime(layout.examples)
    kept = 0
    for block in layout.examples:
        room -= count(block) + 1  # the block and the line break that joins it
        if room < 0:
            break
        kept += 1
    return kept


def _settle(
    layout: Layout, count: Counter, budget: int, start: int, n_examples: int, pinned: int
) -> Fit:
    """Measure the real rendering; while it is over, drop an example, then the oldest message
    (SillyTavern's `checkPromptSize`)."""
    result = measure(layout, start, n_examples, count)
    while result.total > budget:
        if n_examples > pinned:
            n_examples -= 1
        elif start < layout.protected:
            start += 1
        else:
            break
        result = measure(layout, start, n_examples, count)
    return result


def _shrink_permanent(
    layout: Layout,
    count: Counter,
    budget: int,
    base: Fit,
    warnings: list[str],
    context_hint: Callable[[int], str],
) -> Fit:
    """Shorten the card's longest optional fields, then the newest messages, until it fits."""
    need = base.total
    before = {n: count(layout.texts.get(n, "")) for n in TRIMMABLE}
    for _ in range(4 * len(TRIMMABLE)):
        over = base.total - budget
        name = max(
            (n for n in TRIMMABLE if layout.texts.get(n)),
            key=lambda n: count(layout.texts[n]),
            default=None,
        )
        if over <= 0 or name is None:
            break
        layout.texts[name] = _cut_end(layout.texts[name], count, over)
        base = measure(layout, layout.protected, 0, count)
    for name in TRIMMABLE:
        after = count(layout.texts.get(name, ""))
        if after < before[name]:
            warnings.append(
                f"The {_FIELD_NAMES[name]} was shortened from {before[name]} to "
                f"{after} tokens to fit the context; {context_hint(need)}."
            )
    if base.total > budget:
        base = _shrink_messages(layout, count, budget, base, warnings, context_hint(need))
    return base


_FIELD_NAMES = {
    "description": "card's description",
    "personality": "card's personality",
    "scenario": "card's scenario",
    "persona": "persona description",
    "post_history": "post-history instruction",
    "system": "system prompt",
}


def _shrink_messages(
    layout: Layout, count: Counter, budget: int, base: Fit, warnings: list[str], hint: str
) -> Fit:
    """Cut the newest messages from their beginning (their end is what the reply answers)."""
    for _ in range(8 * max(1, len(layout.history) - layout.protected)):
        over = base.total - budget
        kept = range(layout.protected, len(layout.history))
        longest = max(kept, key=lambda i: len(layout.history[i].text), default=None)
        if over <= 0 or longest is None or not layout.history[longest].text:
            break
        m = layout.history[longest]
        layout.history[longest] = Message(m.role, _cut_start(m.text, count, over), m.name)
        base = measure(layout, layout.protected, 0, count)
    if base.total <= budget:
        warnings.append(
            f"The newest message was shortened from its beginning to fit the context; {hint}."
        )
    else:
        warnings.append(
            f"The prompt needs {base.total} tokens but only {max(budget, 0)} fit, "
            f"even with the card and the newest message shortened; {hint}."
        )
    return base


def _cut_end(text: str, count: Counter, over: int) -> str:
    return _cut(text, count, over, keep_start=True)


def _cut_start(text: str, count: Counter, over: int) -> str:
    return _cut(text, count, over, keep_start=False)


def _cut(text: str, count: Counter, over: int, *, keep_start: bool) -> str:
    """`text` shortened by at least `over` tokens (a few more for the ellipsis), at a space."""
    tokens = count(text)
    keep = max(0, tokens - over - 2)
    chars = int(len(text) * keep / tokens) if tokens else 0
    if chars <= 0:
        return ""
    if keep_start:
        cut = text[:chars]
        cut = cut[: cut.rfind(" ")] if " " in cut[chars // 2 :] else cut
        return cut.rstrip() + _ELLIPSIS
    cut = text[len(text) - chars :]
    space = cut.find(" ")
    cut = cut[space + 1 :] if 0 <= space < len(cut) // 2 else cut
    return _ELLIPSIS.strip() + " " + cut.lstrip()


def suggest_context(tokens: int, reply_tokens: int) -> int:
    """The context size to suggest: a power of two that holds the prompt, the reply and about
    a thousand tokens of chat, so the user is not back at the limit after a few turns."""
    return max(2048, int(2 ** math.ceil(math.log2(tokens + reply_tokens + 1024))))
