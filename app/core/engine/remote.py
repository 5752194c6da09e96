"""Any OpenAI-compatible server behind the `Engine` interface.

llama.cpp's llama-server, llama-cpp-python's server, KoboldCpp, vLLM, Ollama and
text-generation-webui all speak `/v1/models`, `/v1/completions` and `/v1/chat/completions`
with SSE streaming; what differs (the context size, token counting, sampler names) is probed
once and remembered. Only the standard library is used, so the app gains no dependency.
The API key goes into the Authorization header and nowhere else: no message names it.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from app.core.engine.base import (
    EngineError,
    LoadParams,
    ModelInfo,
    PromptLayout,
    SamplingParams,
    StreamStats,
)
from app.core.engine.sse import EventReader, error_text

CONNECT_S = 10.0  # a server that cannot even accept a connection in this time is down
DEFAULT_N_CTX = 4096  # when neither the server nor the caller says
MAX_BODY = 16 << 20  # no reply we read whole is anywhere near this
CHARS_PER_TOKEN = 3.0  # the estimate errs towards more tokens, so a prompt budget stays safe
# Sampler names differ between servers; each value is sent under every name a server reads.
SAMPLER_NAMES = {
    "repeat_penalty": ("repeat_penalty", "repetition_penalty", "rep_pen"),
    "repeat_last_n": ("repeat_last_n", "repetition_penalty_range", "rep_pen_range"),
    "typical_p": ("typical_p", "typical"),
}
# (path, body key, answer key) to count tokens: llama-server and vLLM, llama-cpp-python's
# server, KoboldCpp, text-generation-webui. The first that answers is remembered.
TOKENIZERS = (
    ("/tokenize", "content", "tokens"),
    ("/extras/tokenize/count", "input", "count"),
    ("/api/extra/tokencount", "prompt", "value"),
    ("/v1/internal/token-count", "text", "length"),
)
NOT_THERE = {400, 404, 405, 422, 501}  # how servers say "I have no such endpoint"


class RemoteHTTPError(EngineError):
    """The server answered with an HTTP error; `status` lets callers tell 404 from 401."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RemoteEngine:
    """One OpenAI-compatible server. Not thread-safe: one owner thread calls it."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        mode: str = "completion",
        model: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        if mode not in ("completion", "chat"):
            raise EngineError(f"Unknown remote mode {mode!r}: use 'completion' or 'chat'.")
        parts = urlsplit(base_url.strip() if "://" in base_url else "http://" + base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # The address is not echoed: it may carry a user name and password.
            raise EngineError(
                "A server address must start with http:// or https:// and name a host."
            )
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        # "http://host:8080/v1" and "http://host:8080" mean the same server.
        self._root = parts.path.rstrip("/").removesuffix("/v1")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6
        port = f":{parts.port}" if parts.port else ""
        self.url = f"{parts.scheme}://{host}{port}{self._root}"  # no credentials
        self._api_key = api_key or None
        self.mode, self.model, self.timeout = mode, model, timeout
        self._tokenizer: tuple[Any, ...] | None = None  # which of TOKENIZERS works; () = none does
        self._special = 0  # tokens the server adds to every count (BOS)
        self.info: ModelInfo | None = None
        self.last_stats: StreamStats | None = None

    # --- HTTP ---------------------------------------------------------------------------
    def _open(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request and return (connection, response) for a status below 400."""
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=min(CONNECT_S, self.timeout))
        headers = {"Accept": "application/json, text/event-stream", "User-Agent": "Parlor"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            conn.connect()
            conn.sock.settimeout(self.timeout)
            conn.request(method, self._root + path, body=data, headers=headers)
            resp = conn.getresponse()
        except Exception as exc:
            waited = self.timeout if conn.sock is not None else min(CONNECT_S, self.timeout)
            conn.close()
            raise self._network_error(exc, waited) from None
        if resp.status >= 400:
            raise self._http_error(conn, resp, path)
        return conn, resp

    def _network_error(self, exc: BaseException, waited: float | None = None) -> EngineError:
        if isinstance(exc, ConnectionRefusedError):
            why = (
                "is not answering (connection refused): check that it is running at this "
                "address and port"
            )
        elif isinstance(exc, TimeoutError):
            why = f"did not answer within {waited or self.timeout:g} s"
        elif isinstance(exc, socket.gaierror):
            why = f"cannot be found ({exc.strerror})"
        elif isinstance(exc, ssl.SSLError):
            why = f"failed the secure connection ({exc.reason or exc})"
        elif isinstance(exc, http.client.HTTPException | ConnectionError):
            why = f"closed the connection or sent a bad reply ({type(exc).__name__})"
        elif isinstance(exc, OSError):
            why = f"cannot be reached ({exc.strerror or exc})"
        else:
            why = f"failed ({type(exc).__name__}: {exc})"
        return EngineError(self._scrub(f"The server at {self.url} {why}."))

    def _http_error(
        self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, path: str
    ) -> RemoteHTTPError:
        try:
            raw = resp.read(64 << 10).decode("utf-8", "replace")
        except Exception:
            raw = ""
        finally:
            conn.close()
        try:
            message = error_text(json.loads(raw))
        except ValueError:
            message = error_text(raw) if raw.strip() else resp.reason
        hint = " Check the API key." if resp.status in (401, 403) else ""
        text = f"The server at {self.url} answered HTTP {resp.status} to {path}: {message}.{hint}"
        return RemoteHTTPError(self._scrub(text), resp.status)

    def _scrub(self, text: str) -> str:
        """A server may echo what it was sent; the key must never reach a message or log."""
        return text.replace(self._api_key, "***") if self._api_key else text

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> object:
        conn, resp = self._open(method, path, body)
        try:
            raw = resp.read(MAX_BODY)
        except Exception as exc:
            raise self._network_error(exc) from None
        finally:
            conn.close()
        try:
            return json.loads(raw)
        except ValueError:
            raise EngineError(
                f"The server at {self.url} answered {path} with something that is not JSON."
            ) from None

    def _probe(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Ask an endpoint only some servers have; None when this one has not got it."""
        try:
            answer = self._json(method, path, body)
        except RemoteHTTPError as exc:
            if exc.status in NOT_THERE:
                return None
            raise
        except EngineError as exc:
            if "not JSON" in str(exc):
                return None
            raise
        return answer if isinstance(answer, dict) else None

    # --- models and loading -------------------------------------------------------------
    def list_models(self) -> list[str]:
        """The model ids the server offers (GET /v1/models); empty is an error."""
        return [m["id"] for m in self._model_entries()]

    def _model_entries(self) -> list[dict[str, Any]]:
        answer = self._json("GET", "/v1/models")
        entries = answer.get("data") if isinstance(answer, dict) else None
        if isinstance(entries, list):
            entries = [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]
        if not entries:
            raise EngineError(f"The server at {self.url} lists no models; load one there first.")
        return entries

    def load(
        self,
        params: LoadParams | None = None,
        cancel: threading.Event | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> ModelInfo:
        """Check the server answers and learn the model and its context size.

        `params.n_ctx` is used only when the server does not say; the other load
        parameters belong to whoever started the server.
        """
        entries = self._model_entries()
        ids = [e["id"] for e in entries]
        if self.model is not None and self.model not in ids:
            raise EngineError(
                f"The server at {self.url} has no model {self.model!r}; it "
                f"offers {', '.join(ids[:10])}."
            )
        entry = entries[ids.index(self.model)] if self.model else entries[0]
        self.model = entry["id"]
        if cancel is not None and cancel.is_set():
            raise EngineError("Loading was cancelled.")
        props = self._probe("GET", "/props") or {}
        n_ctx, source = self._context_size(entry, props, cancel)
        raw_meta = entry.get("meta")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        self.info = ModelInfo(
            path=self.url,
            name=self.model,
            n_ctx=n_ctx or (params.n_ctx if params else DEFAULT_N_CTX),
            n_ctx_train=int(meta.get("n_ctx_train") or n_ctx or 0),
            n_gpu_layers=0,
            n_layer=0,
            chat_template=props.get("chat_template") or None,
            bos=str(props.get("bos_token") or ""),
            eos=str(props.get("eos_token") or ""),
            metadata={"remote": True, "mode": self.mode, "n_ctx_source": source},
        )
        return self.info

    def _context_size(
        self, entry: dict[str, Any], props: dict[str, Any], cancel: threading.Event | None
    ) -> tuple[int, str]:
        """The server's context per request: vLLM, llama-server, KoboldCpp; 0 if unknown."""
        if isinstance(entry.get("max_model_len"), int):
            return entry["max_model_len"], "vllm"
        settings = props.get("default_generation_settings")
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else props.get("n_ctx")
        if isinstance(n_ctx, int) and n_ctx > 0:
            return n_ctx, "llama-server"
        if cancel is not None and cancel.is_set():
            raise EngineError("Loading was cancelled.")
        kobold = self._probe("GET", "/api/extra/true_max_context_length") or {}
        if isinstance(kobold.get("value"), int) and kobold["value"] > 0:
            return kobold["value"], "koboldcpp"
        return 0, "setting"

    def unload(self) -> None:
        """Nothing runs here; the server keeps its model. Forget what load learned."""
        self.info = None

    # --- tokens -------------------------------------------------------------------------
    def count_tokens(self, texts: list[str]) -> list[int]:
        """Exact counts from the server's tokenizer where it has one, else an estimate."""
        return [self._count(text) for text in texts]

    @property
    def counts_are_exact(self) -> bool:
        return bool(self._tokenizer)

    def _count(self, text: str) -> int:
        if self._tokenizer is None:
            self._tokenizer = next((t for t in TOKENIZERS if self._ask(t, "Hello") is not None), ())
            # Some servers add BOS to every count; the local engine counts without it.
            self._special = (self._ask(self._tokenizer, "") or 0) if self._tokenizer else 0
        if not self._tokenizer:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        count = self._ask(self._tokenizer, text)
        if count is None:
            raise EngineError(f"The server at {self.url} stopped counting tokens.")
        return max(0, count - self._special)

    def _ask(self, tokenizer: tuple[Any, ...], text: str) -> int | None:
        """One count from one tokenizer endpoint; None when the server has no such thing."""
        path, key, answer_key = tokenizer
        answer = self._probe(
            "POST", path, {key: text} | ({"model": self.model} if self.model else {})
        )
        if answer is None:
            return None
        value = answer.get("count", answer.get(answer_key))  # vLLM's /tokenize has both
        value = len(value) if isinstance(value, list) else value
        return value if isinstance(value, int) else None

    # --- streaming ----------------------------------------------------------------------
    def stream(
        self,
        prompt: str,
        params: SamplingParams,
        cancel: threading.Event,
        layout: PromptLayout | None = None,
    ) -> Iterator[str]:
        """Text completion of our own prompt; in chat mode the prompt is one user message.

        `layout` is not used: the server manages its own cache (`cache_prompt`)."""
        if self.mode == "chat":
            return self.stream_chat([{"role": "user", "content": prompt}], params, cancel)
        return self._stream("/v1/completions", {"prompt": prompt}, params, cancel)

    def stream_chat(
        self, messages: list[dict[str, Any]], params: SamplingParams, cancel: threading.Event
    ) -> Iterator[str]:
        """Chat completion: the server applies its template to `messages` (role, content)."""
        return self._stream("/v1/chat/completions", {"messages": list(messages)}, params, cancel)

    def _stream(
        self, path: str, body: dict[str, Any], params: SamplingParams, cancel: threading.Event
    ) -> Iterator[str]:
        body = (
            body
            | sampler_fields(params)
            | {"stream": True, "stream_options": {"include_usage": True}, "cache_prompt": True}
        )
        if self.model:
            body["model"] = self.model
        self.last_stats = None
        stats = StreamStats(seed=params.seed)
        started = time.perf_counter()
        reader = EventReader(
            lambda: self._open("POST", path, body), self.url, self.timeout, self._network_error
        )
        try:
            for chunk in reader.chunks(cancel, stats):
                if chunk.text:
                    if stats.tokens == 0:
                        stats.ttft_s = time.perf_counter() - started
                    stats.tokens += 1  # one token per event on the servers we know
                    yield chunk.text
            if reader.completion_tokens and not stats.stopped:
                stats.tokens = reader.completion_tokens  # the server's own count wins
        except EngineError:
            stats.finish_reason = "error"
            raise
        finally:
            reader.close()
            stats.seconds = time.perf_counter() - started
            stats.stopped = stats.stopped or not stats.finish_reason  # or the caller left
            self.last_stats = stats


def sampler_fields(p: SamplingParams) -> dict[str, Any]:
    """The request fields for `p`, each under every name the known servers read."""
    values: dict[str, Any] = {
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "top_k": p.top_k,
        "min_p": p.min_p,
        "typical_p": p.typical_p,
        "repeat_penalty": p.repeat_penalty,
        "repeat_last_n": p.repeat_last_n,
        "presence_penalty": p.presence_penalty,
        "frequency_penalty": p.frequency_penalty,
    }
    if p.mirostat_mode:
        values |= {
            "mirostat": p.mirostat_mode,
            "mirostat_mode": p.mirostat_mode,
            "mirostat_tau": p.mirostat_tau,
            "mirostat_eta": p.mirostat_eta,
        }
    if p.dry_on:  # llama-server's and KoboldCpp's names, which are SillyTavern's too
        values |= {
            "dry_multiplier": p.dry_multiplier,
            "dry_base": p.dry_base,
            "dry_allowed_length": p.dry_allowed_length,
            # their 0 turns DRY off; Parlor's 0 is the whole context, their -1
            "dry_penalty_last_n": p.dry_penalty_last_n if p.dry_penalty_last_n > 0 else -1,
            "dry_sequence_breakers": list(p.dry_sequence_breakers),
        }
    if p.xtc_on:
        values |= {"xtc_threshold": p.xtc_threshold, "xtc_probability": p.xtc_probability}
    if p.seed >= 0:
        values["seed"] = p.seed
    if p.stop:
        values["stop"] = list(p.stop)
    return {name: value for key, value in values.items() for name in SAMPLER_NAMES.get(key, (key,))}


def smoke(
    url: str, api_key: str | None, prompt: str, max_tokens: int, mode: str = "chat"
) -> dict[str, Any]:
    """`--smoke-test --remote`: load, send one message, report like the local smoke test.

    Chat mode by default: the server knows its model's template, we do not.
    """
    engine = RemoteEngine(url, api_key=api_key, mode=mode)
    info = engine.load()
    reply = "".join(engine.stream(prompt, SamplingParams(max_tokens=max_tokens), threading.Event()))
    stats = engine.last_stats
    if stats is None:
        raise EngineError(f"The server at {url} answered without any statistics")
    return {
        "model": info.name,
        "tokens": stats.tokens,
        "ttft_s": round(stats.ttft_s, 4),
        "tokens_per_s": round(stats.tokens_per_s, 2),
        "reply": reply,
    }
