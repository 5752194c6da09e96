"""No network request the user did not ask for.

1. A whole normal session (the `--smoke-test`: window, model load in the engine child, one
   streamed reply) runs with an audit hook installed through `sitecustomize` in every Python
   process it starts; the hook records each connect and name lookup. Expected: none.
2. Hostile card text (`<img src=http://…>`, `<script>`, CSS `url(…)`, `<link>`) shown in the
   real chat view makes no request to a local server that records every hit.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from app.core.chat.context import AppContext
from tests.gui.conftest import make_window  # noqa: F401 - the real-window fixture

ROOT = Path(__file__).resolve().parents[1]

SITECUSTOMIZE = """
import os, socket, sys

_LOG = os.environ["PARLOR_NET_LOG"]
_EVENTS = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
           "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg"}


def _hook(event, args):
    if event not in _EVENTS:
        return
    sock = args[0] if event in ("socket.connect", "socket.sendto", "socket.sendmsg") else None
    if sock is not None and getattr(sock, "family", None) == getattr(socket, "AF_UNIX", -1):
        return  # local IPC (multiprocessing, Qt local sockets): not the network
    with open(_LOG, "a") as f:
        f.write(repr((os.getpid(), event, args[1:] if sock is not None else args)) + "\\n")


sys.addaudithook(_hook)
"""


class Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        Recorder.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    Recorder.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], Recorder.hits
    server.shutdown()
    server.server_close()


def _hooked_env(tmp_path) -> tuple[dict, Path]:
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "connections.log"
    log.write_text("")
    path = os.pathsep.join(p for p in (str(hook_dir), os.environ.get("PYTHONPATH")) if p)
    return dict(
        os.environ, PYTHONPATH=path, PARLOR_NET_LOG=str(log), QT_QPA_PLATFORM="offscreen"
    ), log


def test_the_hook_sees_connections(tmp_path, recorder):
    """The recorder must be able to fail: a deliberate request is logged."""
    port, _ = recorder
    env, log = _hooked_env(tmp_path)
    code = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/x').read()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert f"('127.0.0.1', {port})" in log.read_text()


@pytest.mark.slow
def test_a_normal_session_connects_nowhere(tmp_path, tiny_llama_path):
    env, log = _hooked_env(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "--smoke-test",
            "--model",
            str(tiny_llama_path),
            "--max-tokens",
            "8",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1])["tokens"] > 0
    assert log.read_text() == "", f"unrequested connections:\n{log.read_text()}"


HOSTILE = (
    '<img src="http://127.0.0.1:{port}/img"> <script src="http://127.0.0.1:{port}/js">'
    'fetch("http://127.0.0.1:{port}/fetch")</script>'
    '<div style="background:url(http://127.0.0.1:{port}/css)">styled</div>'
    '<style>body {{ background-image: url("http://127.0.0.1:{port}/style") }}</style>'
    '<link rel="stylesheet" href="http://127.0.0.1:{port}/link">'
    '![md](http://127.0.0.1:{port}/markdown) *waves* "hello"'
)


def test_hostile_card_text_in_the_chat_view_makes_no_request(qtbot, make_window, recorder):  # noqa: F811
    port, hits = recorder
    payload = HOSTILE.format(port=port)
    ctx = AppContext.create()
    cid = ctx.store.characters.add(
        {
            "name": f"Aaron <img src=http://127.0.0.1:{port}/name>",
            "first_mes": payload,
            "description": payload,
        }
    )
    chat = ctx.store.chats.new(cid, [payload])
    ctx.store.messages.append(chat, ctx.store.messages.active_leaf(chat), "user", payload)
    ctx.close()
    window = make_window()
    qtbot.waitUntil(lambda: window.chat_model.rowCount() == 2, timeout=5000)
    assert window.chat_model.messages()[0].text == payload  # the hostile text is shown
    window.grab()  # paint every visible bubble through the delegate
    qtbot.wait(500)
    shot = window.grab()
    if os.environ.get("PARLOR_SHOTS"):
        shot.save(os.path.join(os.environ["PARLOR_SHOTS"], "hostile-card.png"))
    assert hits == []
    # The server does record: a real request shows up.
    urllib.request.urlopen(f"http://127.0.0.1:{port}/control").read()
    assert hits == ["/control"]
