"""The remote engine against a real llama-cpp-python server on 127.0.0.1, and against tiny
stand-in servers for what a real one will not do on demand (stall, send garbage)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.core.engine import EngineError, LoadParams, SamplingParams
from app.core.engine.remote import RemoteEngine, RemoteHTTPError, sampler_fields, smoke
from app.core.engine.sse import iter_events, parse_chunk

KEY = "test-key-7f3a9c"
FIXED = SamplingParams(max_tokens=16, seed=42, temperature=0.8)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(proc, url: str, log_path) -> None:
    request = urllib.request.Request(url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited ({proc.returncode}):\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(request, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"llama_cpp.server did not start:\n{log_path.read_text()}")


@contextlib.contextmanager
def _serve(folder, n_ctx: int):
    """llama-cpp-python's own OpenAI-compatible server on the tiny model, with an API key."""
    try:
        import llama_cpp.server.app  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"llama-cpp-python[server] is not installed ({exc}); the test extras need it")
    from tests.tiny_models import write_tiny_llama

    model = write_tiny_llama(folder / "tiny.gguf")
    port, log_path = _free_port(), folder / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                str(n_ctx),
                "--api_key",
                KEY,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(proc, url, log_path)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    with _serve(tmp_path_factory.mktemp("remote"), 1024) as url:
        yield url


@pytest.fixture(scope="module")
def engine(server_url):
    eng = RemoteEngine(server_url, api_key=KEY, timeout=30)
    eng.load(LoadParams(model_path="", n_ctx=2048))
    return eng


def _text(eng, prompt="The door opens.", params=FIXED, cancel=None) -> str:
    return "".join(eng.stream(prompt, params, cancel or threading.Event()))


# --- against the real server --------------------------------------------------------------
def test_models_are_listed_and_load_fills_info(engine):
    models = engine.list_models()
    assert len(models) == 1 and models[0].endswith("tiny.gguf")
    assert engine.info.name == models[0]
    # llama_cpp.server tells no context size anywhere, so the caller's setting is used.
    assert engine.info.n_ctx == 2048
    assert engine.info.metadata["n_ctx_source"] == "setting"


def test_completion_stream_yields_text_and_stats(engine):
    pieces = list(engine.stream("Hello, traveler.", FIXED, threading.Event()))
    assert len(pieces) == FIXED.max_tokens
    assert "".join(pieces).strip()
    stats = engine.last_stats
    assert stats.tokens == FIXED.max_tokens and not stats.stopped
    assert stats.finish_reason == "length" and stats.ttft_s > 0


def test_chat_stream_yields_text(engine):
    messages = [
        {"role": "system", "content": "You are a bard."},
        {"role": "user", "content": "Sing of the tavern."},
    ]
    reply = "".join(engine.stream_chat(messages, FIXED, threading.Event()))
    assert reply.strip()
    assert engine.last_stats.tokens == FIXED.max_tokens


def test_chat_mode_sends_the_prompt_as_a_message(server_url):
    eng = RemoteEngine(server_url + "/v1/", api_key=KEY, mode="chat")
    assert _text(eng, "Hello there").strip()
    assert eng.last_stats.finish_reason == "length"


def test_same_seed_same_text_other_seed_other_text(engine):
    first, second = _text(engine), _text(engine)
    other = _text(engine, params=SamplingParams(max_tokens=16, seed=7, temperature=0.8))
    assert first == second
    assert other != first


def test_max_tokens_and_stop_strings_reach_the_server(engine):
    _text(engine, params=SamplingParams(max_tokens=5, seed=3))
    assert engine.last_stats.tokens == 5 and engine.last_stats.finish_reason == "length"
    full = _text(engine, params=SamplingParams(max_tokens=24, seed=3))
    stop_word = " " + full.split(" ")[4]  # [0] is the empty string before the first space
    cut = _text(engine, params=SamplingParams(max_tokens=24, seed=3, stop=(stop_word,)))
    assert cut == full[: full.index(stop_word)]
    assert engine.last_stats.finish_reason == "stop"


def test_stop_ends_the_stream_and_the_next_request_works(engine):
    cancel, pieces = threading.Event(), []
    for piece in engine.stream("Once upon a time", SamplingParams(max_tokens=400), cancel):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()
    assert len(pieces) == 3
    assert engine.last_stats.stopped and engine.last_stats.tokens == 3
    assert _text(engine) and not engine.last_stats.stopped


def test_count_tokens_uses_the_server_tokenizer(engine):
    short, long, empty = engine.count_tokens(["hello", "hello friend, welcome again", ""])
    assert engine.counts_are_exact
    assert 0 < short < long and empty == 0


def test_wrong_api_key_is_reported_without_the_key(server_url):
    wrong = "wrong-key-123456"
    with pytest.raises(RemoteHTTPError) as caught:
        RemoteEngine(server_url, api_key=wrong).load()
    assert caught.value.status == 401
    assert "Invalid API key" in str(caught.value) and "API key" in str(caught.value)
    assert wrong not in str(caught.value)


def test_server_error_carries_its_message(engine):
    with pytest.raises(RemoteHTTPError) as caught:
        list(engine.stream_chat([{"role": "nobody", "content": 1}], FIXED, threading.Event()))
    # llama_cpp.server answers a malformed request with HTTP 500 and pydantic's text.
    assert "/v1/chat/completions" in str(caught.value) and "validation error" in str(caught.value)
    assert caught.value.status >= 400 and "\n" not in str(caught.value)


def test_a_prompt_longer_than_the_context_is_explained(engine):
    # llama_cpp.server answers 200 and then an empty stream; the reason is only in its log.
    with pytest.raises(EngineError, match="longer than the server's context"):
        _text(engine, "word " * 1500)
    assert _text(engine)  # and it still works


def test_smoke_reports_the_local_smoke_fields(server_url):
    result = smoke(server_url, KEY, "Hello!", 6)
    assert set(result) == {"model", "tokens", "ttft_s", "tokens_per_s", "reply"}
    assert result["tokens"] == 6 and result["reply"].strip()


# --- failures a real server will not stage ----------------------------------------------
def test_server_down_is_a_clear_error():
    with pytest.raises(EngineError, match="connection refused"):
        RemoteEngine(f"http://127.0.0.1:{_free_port()}").load()


class _Stub(BaseHTTPRequestHandler):
    """Answers /v1/models with `server.models` and completions with `server.behaviour`."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            return self._json(200, {"object": "list", "data": self.server.models})
        if self.path == "/props" and self.server.props:
            return self._json(200, self.server.props)
        self._json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/completions":
            return self._json(404, {"detail": "Not Found"})
        behaviour = self.server.behaviour
        if behaviour == "hold_headers":
            self.server.release.wait(10)
        if behaviour == "error":
            return self._json(500, {"error": {"message": "the model exploded", "code": 500}})
        if behaviour == "whole":
            return self._json(200, {"choices": [{"text": "all at once", "finish_reason": "stop"}]})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b'data: {"choices": [{"text": "Hi", "finish_reason": null}]}\n\n')
        self.wfile.flush()
        if behaviour == "malformed":
            self.wfile.write(b"data: {this is not json\n\n")
        elif behaviour == "stall":
            self.server.release.wait(10)

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.daemon_threads = True
    server.models, server.props, server.behaviour = [{"id": "stub"}], None, "malformed"
    server.release = threading.Event()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def _stub_engine(stub, timeout=30.0) -> RemoteEngine:
    return RemoteEngine(f"127.0.0.1:{stub.server_address[1]}", timeout=timeout)


def test_malformed_sse_is_a_clear_error_after_the_good_part(stub):
    eng, pieces = _stub_engine(stub), []
    with pytest.raises(EngineError, match="malformed stream event"):
        for piece in eng.stream("x", FIXED, threading.Event()):
            pieces.append(piece)
    assert pieces == ["Hi"] and eng.last_stats.finish_reason == "error"


def test_a_stalled_server_times_out_with_a_clear_error(stub):
    stub.behaviour = "stall"
    with pytest.raises(EngineError, match="stopped sending for 0.3 s"):
        list(_stub_engine(stub, timeout=0.3).stream("x", FIXED, threading.Event()))


def test_stop_does_not_wait_for_a_stalled_server(stub):
    stub.behaviour, cancel = "stall", threading.Event()
    eng = _stub_engine(stub)
    threading.Timer(0.2, cancel.set).start()
    assert list(eng.stream("x", FIXED, cancel)) == ["Hi"]
    assert eng.last_stats.stopped and not stub.release.is_set()


def test_stop_does_not_wait_for_headers_held_back(stub):
    stub.behaviour, cancel = "hold_headers", threading.Event()
    eng = _stub_engine(stub)
    threading.Timer(0.2, cancel.set).start()
    assert list(eng.stream("x", FIXED, cancel)) == []
    assert eng.last_stats.stopped and not stub.release.is_set()


def test_a_dropped_stream_is_not_taken_for_a_finished_reply(stub):
    stub.behaviour = "drop"
    with pytest.raises(EngineError, match="ended the stream before the reply was complete"):
        list(_stub_engine(stub).stream("x", FIXED, threading.Event()))


def test_http_error_carries_the_server_message(stub):
    stub.behaviour = "error"
    with pytest.raises(RemoteHTTPError, match="HTTP 500 .*the model exploded"):
        list(_stub_engine(stub).stream("x", FIXED, threading.Event()))


def test_a_reply_sent_whole_is_still_streamed(stub):
    stub.behaviour = "whole"
    eng = _stub_engine(stub)
    assert list(eng.stream("x", FIXED, threading.Event())) == ["all at once"]
    assert eng.last_stats.finish_reason == "stop"


def test_an_empty_model_list_is_a_clear_error(stub):
    stub.models = []
    with pytest.raises(EngineError, match="lists no models"):
        _stub_engine(stub).load()


def test_llama_server_context_size_and_token_estimate(stub):
    stub.props = {"default_generation_settings": {"n_ctx": 8192}, "chat_template": "{{x}}"}
    eng = _stub_engine(stub)
    info = eng.load(LoadParams(model_path="", n_ctx=2048))
    assert info.n_ctx == 8192 and info.chat_template == "{{x}}"
    assert eng.count_tokens(["twelve chars"]) == [4] and not eng.counts_are_exact


# --- pure parts ------------------------------------------------------------------------
def test_sse_parser_follows_the_event_stream_rules():
    lines = [
        b": ping\r\n",
        b"data: one\r\n",
        b"data:two\n",
        b"\n",
        b"event: x\n",
        b"\n",
        b"data: last",
    ]
    assert list(iter_events(lines)) == ["one\ntwo", "last"]


def test_chat_chunks_and_error_events_are_read():
    assert parse_chunk('{"choices": [{"delta": {"content": "hey"}}]}').text == "hey"
    with pytest.raises(EngineError, match="context is full"):
        parse_chunk('{"error": {"message": "context is full"}}')


def test_samplers_go_out_under_every_known_name():
    fields = sampler_fields(
        SamplingParams(repeat_penalty=1.2, mirostat_mode=2, seed=5, stop=("\nUser:",))
    )
    assert fields["repeat_penalty"] == fields["repetition_penalty"] == fields["rep_pen"] == 1.2
    assert fields["mirostat"] == fields["mirostat_mode"] == 2
    assert fields["seed"] == 5 and fields["stop"] == ["\nUser:"]
    assert "seed" not in sampler_fields(SamplingParams(seed=-1))


def test_addresses_are_normalised_and_shown_without_credentials():
    eng = RemoteEngine("user:secret@127.0.0.1:5001/v1/")
    assert eng.url == "http://127.0.0.1:5001"
    with pytest.raises(EngineError) as caught:
        RemoteEngine("ftp://user:secret@host")
    assert "secret" not in str(caught.value)


def test_app_smoke_test_runs_the_window_against_the_server(tmp_path):
    """`python -m app --smoke-test --remote URL`: the real window's path, a served model."""
    (tmp_path / "server").mkdir()
    with _serve(tmp_path / "server", 4096) as url:
        done = _app_smoke(url, tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["tokens"] > 0 and result["reply"]
    assert KEY not in done.stdout + done.stderr


def _app_smoke(server_url: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ, PARLOR_HOME=str(tmp_path), QT_QPA_PLATFORM="offscreen", PARLOR_API_KEY=KEY
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "--smoke-test",
            "--remote",
            server_url,
            "--max-tokens",
            "8",
            "--prompt",
            "Hello",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
