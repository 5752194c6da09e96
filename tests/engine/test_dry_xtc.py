"""DRY and XTC on real llama.cpp (the tiny model), and on the wire to a llama.cpp server.

The tiny model, greedy and without a repetition penalty, falls into a loop of about ten
words within a few dozen tokens: the forced repetition DRY has to break. Its next-token
probabilities are known from its logits, so what XTC must pick is computed, not guessed.
"""

from __future__ import annotations

import ctypes
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from app.core.engine import LoadParams, SamplingParams
from app.core.engine.child import Child
from app.core.engine.remote import RemoteEngine
from tests.engine.collect import Collect

PROMPT = "The tavern at night. Mira says:"
# every token considered, no penalty: the choice is the model's alone
PLAIN = dict(temperature=0.0, seed=1, repeat_penalty=1.0, top_k=0, top_p=1.0, min_p=0.0)


@pytest.fixture(scope="module")
def child(tiny_llama_path):
    c = Child(Collect(), (ctypes.c_byte * 2)())
    c.load(LoadParams(model_path=str(tiny_llama_path), n_ctx=1024))
    return c


def _words(child: Child, sp: SamplingParams, prompt: str = PROMPT) -> list[str]:
    child.conn = Collect()
    child.llm.reset()
    child.generate(prompt, sp)
    return "".join(child.conn.pieces).split()


def _longest_repeat(words: list[str]) -> int:
    """The longest run of words that occurs twice (the two may overlap)."""
    n = 0
    while any(
        words[i : i + n + 1] == words[j : j + n + 1]
        for i in range(len(words) - n)
        for j in range(i + 1, len(words) - n)
    ):
        n += 1
    return n


def _probabilities(child: Child) -> np.ndarray:
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(child.llm._ctx.ctx, -1)
    logits = np.ctypeslib.as_array(ptr, shape=(child.llm.n_vocab(),)).astype(np.float64)
    p = np.exp(logits - logits.max())
    return p / p.sum()


def test_dry_breaks_a_forced_repetition(child):
    """SillyTavern's usual DRY (multiplier 0.8, base 1.75, allowed length 2): the loop the
    greedy reply falls into is broken, and the reply is unchanged until a repeat starts
    (DRY only penalises continuing a sequence the context already has)."""
    off = _words(child, SamplingParams(max_tokens=80, **PLAIN))
    on = _words(child, SamplingParams(max_tokens=80, dry_multiplier=0.8, **PLAIN))
    assert _longest_repeat(off) >= 30  # measured: 70, one ten-word loop all along
    assert _longest_repeat(on) <= 8  # measured: 4
    assert on[:10] == off[:10] and on != off
    # a range shorter than the loop cannot see the earlier turn of it: the loop stays
    short = _words(
        child, SamplingParams(max_tokens=80, dry_multiplier=0.8, dry_penalty_last_n=4, **PLAIN)
    )
    assert _longest_repeat(short) >= 30


@pytest.mark.parametrize("threshold", [0.02, 0.05, 0.1])
def test_xtc_takes_the_least_likely_of_the_tokens_above_its_threshold(child, threshold):
    """llama.cpp's XTC with probability 1 removes every token at or above the threshold but
    the least likely of them, so the greedy pick becomes that one; the same seed without
    XTC gives the likeliest token."""
    greedy = _words(child, SamplingParams(max_tokens=1, **PLAIN))
    p = _probabilities(child)
    above = [int(t) for t in np.argsort(-p) if p[t] >= threshold]
    assert len(above) >= 2, "the threshold leaves nothing for XTC to remove"
    expected = child.pieces([above[-1]])[0].decode().split()
    xtc = SamplingParams(max_tokens=1, xtc_threshold=threshold, xtc_probability=1.0, **PLAIN)
    assert _words(child, xtc) == expected
    assert expected != greedy == child.pieces([above[0]])[0].decode().split()


def test_with_both_at_no_effect_the_chain_is_llama_cpp_pythons_own(child):
    """Every other sampler stays, in its order and with its seed: DRY that sees no repeat
    (a range of one token) and XTC that never fires (no two tokens can both be above 0.5)
    give, at temperature 0.9, the very reply of llama-cpp-python's own chain."""
    sampled = dict(max_tokens=40, temperature=0.9, top_k=40, top_p=0.95, min_p=0.05, seed=7)
    own = _words(child, SamplingParams(**sampled))
    assert "_init_sampler" not in child.llm.__dict__  # both off: llama-cpp-python's method
    ours = SamplingParams(
        **sampled, dry_multiplier=0.8, dry_penalty_last_n=1, xtc_threshold=0.5, xtc_probability=1
    )
    assert _words(child, ours) == own
    assert "_init_sampler" in child.llm.__dict__
    other_seed = _words(child, SamplingParams(**{**sampled, "seed": 8}))
    assert other_seed != own  # the comparison can tell replies apart


def test_a_sampled_reply_with_xtc_is_repeatable_with_its_seed_and_differs_without(child):
    sampled = dict(max_tokens=30, temperature=0.8, top_k=0, top_p=1.0, min_p=0.02, seed=3)
    xtc = SamplingParams(**sampled, xtc_threshold=0.05, xtc_probability=0.5)
    first, again = _words(child, xtc), _words(child, xtc)
    assert first == again
    assert first != _words(child, SamplingParams(**sampled))


# --- a llama.cpp / KoboldCpp server -------------------------------------------------------------
class _Recorder(BaseHTTPRequestHandler):
    """Keeps each completion request's body and answers with one streamed piece."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._send(200, "application/json", json.dumps({"data": [{"id": "m"}]}).encode())

    def do_POST(self) -> None:
        self.server.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        event = {"choices": [{"text": "Hi", "finish_reason": "stop"}]}
        self._send(
            200, "text/event-stream", f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n".encode()
        )

    def _send(self, status: int, kind: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads, server.bodies = True, []
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_server_gets_dry_and_xtc_under_their_names_and_nothing_when_off(recorder):
    """llama-server and KoboldCpp read SillyTavern's names; their range 0 means off, so
    Parlor's 0 (the whole context) goes out as -1; the breakers as a JSON list."""
    engine = RemoteEngine(f"127.0.0.1:{recorder.server_address[1]}")
    engine.load(LoadParams(model_path="", n_ctx=2048))
    on = SamplingParams(
        dry_multiplier=0.8,
        dry_sequence_breakers='["\\n", "*"]',
        xtc_threshold=0.15,
        xtc_probability=0.4,
    )
    assert "".join(engine.stream("x", on, threading.Event())) == "Hi"
    "".join(engine.stream("x", SamplingParams(), threading.Event()))
    sent, plain = recorder.bodies
    assert (sent["dry_multiplier"], sent["dry_base"], sent["dry_allowed_length"]) == (0.8, 1.75, 2)
    assert sent["dry_penalty_last_n"] == -1 and sent["dry_sequence_breakers"] == ["\n", "*"]
    assert (sent["xtc_threshold"], sent["xtc_probability"]) == (0.15, 0.4)
    assert not any(k.startswith(("dry_", "xtc_")) for k in plain)
