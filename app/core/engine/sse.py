"""Server-sent events from OpenAI-compatible servers, turned into text pieces.

The parser follows the SSE rules (comments, multi-line data, optional space after the
colon) and reads each `data:` payload as one OpenAI streaming chunk, text completion or
chat; it can be checked on plain byte lines. `EventReader` reads a live response on its own
thread so that Stop never waits on the network.
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app.core.engine.base import EngineError, StreamStats

DONE = "[DONE]"
POLL_S = 0.01  # how often a waiting stream looks at the cancel flag
MAX_BODY = 16 << 20
MAX_LINE = 1 << 20  # a server that sends a megabyte without a newline is not streaming text


@dataclass
class Chunk:
    """What one streaming event says; empty `text` is normal (role headers, the last event)."""

    text: str = ""
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(
        default_factory=dict
    )  # llama-server: prompt_n, cache_n, predicted_n


def iter_events(lines: Iterable[bytes]) -> Iterator[str]:
    """Yield the data of each event; `lines` are raw lines as read from the socket."""
    data: list[str] = []
    for raw in lines:
        if len(raw) >= MAX_LINE:
            raise EngineError(
                "The server sent a stream line longer than 1 MiB; this is not an event stream."
            )
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise EngineError(
                f"The server sent a stream that is not UTF-8 text ({exc.reason})."
            ) from None
        if not line:
            if data:
                yield "\n".join(data)
            data = []
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
        # other fields (event, id, retry) and ":" comments carry nothing we use
    if data:  # a last event without its blank line: servers that close early do this
        yield "\n".join(data)


def parse_chunk(data: str) -> Chunk:
    """Read one `data:` payload; an `error` object becomes an EngineError with its message."""
    try:
        obj = json.loads(data)
    except ValueError:
        raise EngineError(f"The server sent a malformed stream event: {_snippet(data)}") from None
    if not isinstance(obj, dict):
        raise EngineError(f"The server sent a malformed stream event: {_snippet(data)}")
    if "error" in obj:
        raise EngineError(f"The server reported an error while writing: {error_text(obj)}")
    choices = obj.get("choices")
    if not isinstance(choices, list):
        raise EngineError(f"The server sent a stream event without choices: {_snippet(data)}")
    chunk = Chunk(usage=_dict(obj.get("usage")), timings=_dict(obj.get("timings")))
    if choices:
        first = choices[0] if isinstance(choices[0], dict) else {}
        chunk.finish_reason = first.get("finish_reason")
        chunk.text = _choice_text(first)
    return chunk


def parse_whole(obj: object) -> Chunk:
    """A non-streamed reply (a server that ignored `stream: true`) as one final chunk."""
    if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list) or not obj["choices"]:
        raise EngineError("The server answered with JSON that holds no reply.")
    first = obj["choices"][0] if isinstance(obj["choices"][0], dict) else {}
    return Chunk(
        text=_choice_text(first),
        finish_reason=first.get("finish_reason") or "stop",
        usage=_dict(obj.get("usage")),
    )


def error_text(obj: object) -> str:
    """The human part of an error body, in the shapes OpenAI, FastAPI and llama.cpp use."""
    if isinstance(obj, dict):
        for key in ("error", "detail", "message", "msg"):
            if key in obj:
                return error_text(obj[key])
    if isinstance(obj, list) and obj:  # FastAPI validation errors: a list of dicts
        return "; ".join(error_text(item) for item in obj[:3])
    text = " ".join(str(obj).split())  # one line, however the server wrapped it
    return text if len(text) <= 300 else text[:300] + "…"


def _choice_text(choice: dict[str, Any]) -> str:
    if isinstance(choice.get("text"), str):
        return str(choice["text"])
    for key in ("delta", "message"):
        part = choice.get(key)
        if isinstance(part, dict) and isinstance(part.get("content"), str):
            return str(part["content"])
    return ""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _snippet(text: str, limit: int = 200) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "…")


class EventReader:
    """Reads one streamed reply on its own thread, so Stop never waits on the network:
    the caller polls a queue and the cancel flag, and closing shuts the socket down."""

    def __init__(
        self,
        open_response: Callable[[], tuple[Any, ...]],
        url: str,
        timeout: float,
        network_error: Callable[[BaseException], EngineError],
    ) -> None:
        self._url, self._timeout, self._network_error = url, timeout, network_error
        self.completion_tokens = 0
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._conn, self._closed = None, False
        threading.Thread(
            target=self._run, args=(open_response,), name="parlor-remote-stream", daemon=True
        ).start()

    def _run(self, open_response: Callable[[], tuple[Any, ...]]) -> None:
        """Send the request here too: a server may hold its headers back until the prompt
        is read, and Stop must not wait for that either."""
        try:
            conn, resp = open_response()
        except BaseException as exc:
            self._queue.put(("error", exc))
            return
        with self._lock:
            self._conn = conn
            if self._closed:
                self._shut()
                return
        kind = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
        (self._read_whole if kind == "application/json" else self._read_events)(resp)

    def _read_events(self, resp: http.client.HTTPResponse) -> None:
        try:
            for data in iter_events(iter(lambda: resp.readline(1 << 20), b"")):
                self._queue.put(("data", data))
            self._queue.put(("end", None))
        except BaseException as exc:  # handed to the caller's thread, which raises it
            self._queue.put(("error", exc))

    def _read_whole(self, resp: http.client.HTTPResponse) -> None:
        try:
            self._queue.put(("chunk", parse_whole(json.loads(resp.read(MAX_BODY)))))
            self._queue.put(("end", None))
        except BaseException as exc:
            self._queue.put(("error", exc))

    def chunks(self, cancel: threading.Event, stats: StreamStats) -> Iterator[Chunk]:
        """Parsed chunks until [DONE] or the end; sets `stats` from what the server tells."""
        events = 0
        while True:
            item = self._next(cancel)
            if item is None:
                stats.stopped = True
                return
            kind, value = item
            if kind == "error":
                raise self._failure(value)
            if kind == "end" or value == DONE:
                if kind == "end" and not stats.finish_reason:
                    raise self._ended_early(events)
                return
            events += 1
            chunk = value if kind == "chunk" else parse_chunk(value)
            note_stats(stats, chunk)
            if isinstance(chunk.usage.get("completion_tokens"), int):
                self.completion_tokens = chunk.usage["completion_tokens"]
            yield chunk

    def _ended_early(self, events: int) -> EngineError:
        if events:
            return EngineError(
                f"The server at {self._url} ended the stream before "
                "the reply was complete; the text so far is kept."
            )
        # llama-cpp-python's server does this when the prompt is longer than its context.
        return EngineError(
            f"The server at {self._url} ended the stream without "
            "writing anything; its log says why (often: the prompt is longer "
            "than the server's context size)."
        )

    def _next(self, cancel: threading.Event) -> tuple[Any, ...] | None:
        while not cancel.is_set():
            try:
                item: tuple[Any, ...] = self._queue.get(timeout=POLL_S)
                return item
            except queue.Empty:
                continue
        return None

    def _failure(self, exc: BaseException) -> EngineError:
        if isinstance(exc, EngineError):
            return exc
        if isinstance(exc, TimeoutError):
            return EngineError(
                f"The server at {self._url} stopped sending for "
                f"{self._timeout:g} s; the reply so far is kept."
            )
        if isinstance(exc, ValueError):  # JSON of a non-streamed reply
            return EngineError(f"The server at {self._url} sent a reply that is not JSON.")
        return self._network_error(exc)

    def close(self) -> None:
        """Shut the socket so the reading thread wakes and the server sees us leave."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._shut()

    def _shut(self) -> None:
        if self._conn is None:
            return
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conn.close()


def note_stats(stats: StreamStats, chunk: Chunk) -> None:
    """Fold the end-of-reply facts (finish reason, usage, llama-server timings) into stats."""
    if chunk.finish_reason:
        stats.finish_reason = chunk.finish_reason
    usage, timings = chunk.usage, chunk.timings
    if isinstance(usage.get("prompt_tokens"), int):
        stats.prompt_tokens = usage["prompt_tokens"]
    if isinstance(timings.get("cache_n"), int):
        stats.reused_tokens = timings["cache_n"]
        stats.prompt_tokens = max(
            stats.prompt_tokens, timings["cache_n"] + int(timings.get("prompt_n") or 0)
        )
