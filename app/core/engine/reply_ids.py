"""The token ids of the replies the engine generated, put back where a later prompt holds them.

A reply comes back as text and goes into the next prompt as text. Tokenizing that text again
need not give the ids the model generated: the clean-up strips the leading space the model
wrote (its first id was "▁Hello", the new prompt says "Hello"), trims a `Name:` or an
incomplete sentence, and a BPE model may have generated a split ("▁Hel", "lo") that the
tokenizer never makes. Each such difference ends the prefix the KV cache shares with the
prompt, and the whole reply and everything after it is read again every turn.

So the engine keeps each reply's ids with the text of each id, and before a prompt is
evaluated it looks for those replies in the prompt's text: where a run of a reply's ids
spells a stretch of the prompt (allowing the whitespace the clean-up took off its first id),
and that stretch starts and ends on a boundary of the prompt's own tokens, the prompt gets the
generated ids there instead of its own. The model then sees what it wrote, the cache matches,
and only the new text is evaluated. The text outside those stretches keeps the tokenizer's
ids.

The engine knows where its cache holds each reply (`Placed`: from the splice, and where it
generated the newest), and a saved session (sessions.py) keeps that with the cache; a restore
hands the replies back (`ReplyIds.adopt`), so after a restart the next prompt gets the ids it
would have had in a process that never stopped, and the saved history is its cached prefix.

Pure functions over ids and their texts, so the matching is testable without a model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, NamedTuple

# A reply's first ids may be a `Name:` the clean-up removed: look for the text from after
# any `:` among its first few ids. A run shorter than MIN_RUN ids is not spliced: a word or two
# also occurs by chance in other messages.
MAX_SKIP = 8
MIN_RUN = 3
KEY_IDS = 4  # ids of a reply's start searched for as one string
MAX_HITS = 16  # places a reply's start is looked at, the nearest first


@dataclass(frozen=True)
class Reply:
    ids: tuple[int, ...]
    pieces: tuple[bytes, ...]  # each id's text, as llama.cpp writes it


@dataclass(frozen=True)
class Placed:
    """A reply's ids in a prompt (and so in the cache that evaluated it): `ids[skip:]` from
    token position `at` on, as far as they spell the prompt (the clean-up may have taken a
    `Name:` off the front and cut the end)."""

    at: int
    skip: int
    ids: tuple[int, ...]

    def held_in(self, cache: Sequence[int]) -> bool:
        return self.at < len(cache) and cache[self.at] == self.ids[self.skip]


class Spliced(NamedTuple):
    tokens: list[int]
    placed: tuple[Placed, ...]  # front to back


@dataclass(frozen=True)
class Splice:
    """Prompt tokens [start, end) are replaced by `ids`, the reply's from `skip` on."""

    start: int
    end: int
    ids: tuple[int, ...]
    skip: int = 0


def token_offsets(text: bytes, pieces: Sequence[bytes]) -> list[int] | None:
    """Where each token starts in `text`, plus the end; None when the pieces do not spell it.

    A SentencePiece tokenizer writes a space before the first word and after a special
    token that the text does not have; a BOS that llama.cpp added has no text at all."""
    if b"".join(pieces) == text:  # the common cases, in C
        return [0, *accumulate(map(len, pieces))]
    if pieces and not text.startswith(pieces[0]) and b"".join(pieces[1:]) == text:
        return [0, 0, *accumulate(map(len, pieces[1:]))]  # after a BOS llama.cpp added
    offsets, pos = [], 0
    for piece in pieces:
        offsets.append(pos)
        if text.startswith(piece, pos):
            pos += len(piece)
        elif piece.startswith(b" ") and text.startswith(piece[1:], pos):
            pos += len(piece) - 1
        elif pos != 0:
            return None
        # else: a token before any text (an added BOS) spells nothing
    offsets.append(pos)
    return offsets if pos == len(text) else None


class ReplyIds:
    """The replies generated since the model was loaded, newest last, about as many ids as
    the context holds (older ones cannot be in the cache any more)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.replies: list[Reply] = []

    def remember(self, ids: Sequence[int], pieces: Sequence[bytes]) -> None:
        if not ids:
            return
        self.replies.append(Reply(tuple(ids), tuple(pieces)))
        total = sum(len(r.ids) for r in self.replies)
        while len(self.replies) > 1 and total > self.budget:
            total -= len(self.replies.pop(0).ids)

    def clear(self) -> None:
        self.replies.clear()

    def adopt(self, saved: Sequence[Sequence[int]], pieces: Pieces) -> None:
        """Take the replies a restored session lists as the newest, in their order: they
        are the chat the cache now holds, and the splice places the newest first. Known
        ones with the same ids give way rather than being there twice."""
        adopted = [tuple(ids) for ids in saved if ids]
        known = set(adopted)
        self.replies = [r for r in self.replies if r.ids not in known]
        for ids in adopted:
            self.remember(ids, pieces(ids))

    def splice(self, text: bytes, tokens: list[int], offsets: list[int], start: int) -> list[int]:
        """`tokens` (the tokenizer's ids for `text`, starting at the byte `offsets`) with each
        remembered reply's ids where the text after byte `start` holds it."""
        return self.place(text, tokens, offsets, start).tokens

    def place(self, text: bytes, tokens: list[int], offsets: list[int], start: int) -> Spliced:
        """`splice`'s ids, and where in them each reply went.

        The replies are placed newest first, each at its longest stretch among the places
        nearest before the reply placed after it: a prompt holds its replies in the order they
        were made, so each finds its own place even when many begin alike (a model's replies
        often do), and one that left the prompt cannot take the place of a newer one."""
        boundary = {at: i for i, at in enumerate(offsets)}
        limit, taken = len(text), []
        for reply in reversed(self.replies):
            best: Splice | None = None
            for found in _candidates(reply, text, boundary, start, limit):
                if best is None or len(found.ids) > len(best.ids):
                    best = found
            if best is not None:
                taken.append((best, reply))
                limit = offsets[best.start]
        out = list(tokens)
        for s, _ in taken:  # from the end of the prompt backwards: earlier indices stay valid
            out[s.start : s.end] = s.ids
        return Spliced(out, _positions(taken))


def _positions(taken: list[tuple[Splice, Reply]]) -> tuple[Placed, ...]:
    """Where each splice (listed from the end of the prompt) starts in the spliced prompt:
    each one before it moves it by the difference of its own length."""
    moved, placed = 0, []
    for s, reply in reversed(taken):
        placed.append(Placed(s.start + moved, s.skip, reply.ids))
        moved += len(s.ids) - (s.end - s.start)
    return tuple(placed)


def _candidates(
    reply: Reply, text: bytes, boundary: dict[int, int], start: int, limit: int
) -> Iterator[Splice]:
    """The places in text[start:limit], nearest to `limit` first, where a long enough run of
    `reply` spells the text."""
    for a in range(min(MAX_SKIP, len(reply.ids))):
        if a and not b"".join(reply.pieces[:a]).rstrip().endswith(b":"):
            continue  # the clean-up takes off a `Name:`, nothing else, before the text
        for first in dict.fromkeys((reply.pieces[a], reply.pieces[a].lstrip())):
            if first:
                yield from _runs_from(reply, a, first, text, boundary, start, limit)


def _runs_from(
    reply: Reply,
    a: int,
    first: bytes,
    text: bytes,
    boundary: dict[int, int],
    start: int,
    limit: int,
) -> Iterator[Splice]:
    key = first + b"".join(reply.pieces[a + 1 : a + KEY_IDS])
    q = text.rfind(key, start, limit)
    hits = 0
    while q >= 0 and hits < MAX_HITS:
        hits += 1
        i = boundary.get(q)
        if i is not None:
            splice = _extend(reply, a, first, text, q, i, boundary, limit)
            if splice is not None:
                yield splice
        q = text.rfind(key, start, q + len(key) - 1)


def _extend(
    reply: Reply,
    a: int,
    first: bytes,
    text: bytes,
    q: int,
    i: int,
    boundary: dict[int, int],
    limit: int,
) -> Splice | None:
    """Reply ids a, a+1, … while they spell the text from byte q up to `limit`, cut back to
    the last place that is also a boundary of the prompt's own tokens."""
    ends = [q + len(first)]
    pos, b = ends[0], a + 1
    while (
        b < len(reply.ids)
        and pos + len(reply.pieces[b]) <= limit
        and text.startswith(reply.pieces[b], pos)
    ):
        pos += len(reply.pieces[b])
        ends.append(pos)
        b += 1
    while ends and ends[-1] not in boundary:
        ends.pop()
    n = len(ends)
    if n < MIN_RUN:
        return None
    return Splice(i, boundary[ends[-1]], reply.ids[a : a + n], a)


class Pieces:
    """Each id's text for one model, looked up in llama.cpp once per id."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.known: dict[int, bytes] = {}

    def __call__(self, ids: Sequence[int]) -> list[bytes]:
        known = self.known
        for t in ids:
            if t not in known:
                known[t] = self._piece(t)
        return [known[t] for t in ids]

    def _piece(self, token: int) -> bytes:
        import ctypes

        import llama_cpp

        vocab = self.llm._model.vocab
        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, size, 0, True)
            if n >= 0:
                return buf.raw[:n]
            size = -n  # too small: llama.cpp says how much it needs


def with_reply_ids(
    llm: Any, replies: ReplyIds, pieces: Pieces, prompt: str, start_chars: int, tokens: list[int]
) -> Spliced:
    """The prompt's tokens with the generated ids where it holds earlier replies (as they
    were when the ids would not fit), and where they went. They depend on the text and the
    replies made, never on what the cache holds now, so a full read of the same prompt
    evaluates the same ids."""
    if not replies.replies:
        return Spliced(tokens, ())
    return _spliced(replies, pieces, prompt, start_chars, tokens, llm.n_ctx())


def with_saved_ids(
    pieces: Pieces, prompt: str, start_chars: int, tokens: list[int], saved: list[int], n_ctx: int
) -> list[int]:
    """The prompt's tokens with a restored session's ids where the prompt has their text.

    A file written before a restart holds replies whose generated ids the new process
    never saw; its lines stand in for them (a reply is a line or more of text)."""
    lines = ReplyIds(len(saved) + 1)
    start = 0
    for i, piece in enumerate(pieces(saved)):
        if b"\n" in piece:
            lines.remember(saved[start:i], pieces(saved[start:i]))
            start = i + 1
    lines.remember(saved[start:], pieces(saved[start:]))
    return _spliced(lines, pieces, prompt, start_chars, tokens, n_ctx).tokens


def _spliced(
    replies: ReplyIds, pieces: Pieces, prompt: str, start_chars: int, tokens: list[int], n_ctx: int
) -> Spliced:
    text = prompt.encode("utf-8")
    offsets = token_offsets(text, pieces(tokens))
    if offsets is None:
        return Spliced(tokens, ())
    start = len(prompt[:start_chars].encode("utf-8"))
    spliced = replies.place(text, tokens, offsets, start)
    return spliced if len(spliced.tokens) <= n_ctx else Spliced(tokens, ())


class Sampled:
    """Every id llama-cpp-python samples for one model, in order.

    The cache lacks the last one of a reply (it is sampled, never decoded), and it is the one
    most often spelled differently again: so the ids are taken where they are sampled."""

    def __init__(self, llm: Any) -> None:
        self.ids: list[int] = []
        if llm is None:
            return
        original = llm.sample

        def sample(*args: Any, **kwargs: Any) -> Any:
            token = original(*args, **kwargs)
            self.ids.append(int(token))
            return token

        llm.sample = sample  # Llama.generate calls self.sample once per token

    def remember(self, replies: ReplyIds, pieces: Pieces) -> tuple[int, ...]:
        """Hand the ids sampled since the last call to `replies`; those ids."""
        ids, self.ids = tuple(self.ids), []
        replies.remember(ids, pieces(ids))
        return ids
