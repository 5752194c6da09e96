"""A small Hugging Face hub on 127.0.0.1 for tests, driven by the real huggingface_hub client.

It answers just what huggingface_hub 2.x asks for a model repository: the tree listing
(`/api/models/{repo}/tree/{rev}[/{path}]`), paths-info (`POST .../paths-info/{rev}`) and
resolve (`HEAD`/`GET /{repo}/resolve/{rev}/{path}`, with Range and the headers that
`get_hf_file_metadata` reads). Switches make it misbehave: cut the connection part-way
through a file, ignore Range, serve wrong bytes, answer a forced status, demand a token.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_THRESHOLD = 1024  # files this large or larger are stored in LFS, as on the hub
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FakeHub:
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    drop_after: int | None = None  # cut each file response after this many body bytes
    drops_left: int | None = None  # how many responses to cut (None: all of them)
    dead_at: int | None = None  # every response stops at this offset of the file, for good
    ignore_range: bool = False  # answer 200 with the whole file to a Range request
    corrupt: set[str] = field(default_factory=set)  # paths served with one byte changed
    status: dict[str, int] = field(default_factory=dict)  # path or repo id -> forced status
    gated: set[str] = field(default_factory=set)  # repo ids that answer 403 GatedRepo
    token: str | None = None  # when set, requests need `Authorization: Bearer <token>`
    chunk: int = 64 * 1024
    delay: float = 0.0  # seconds to sleep after each chunk of a file body
    answers: list[int] = field(default_factory=list)  # statuses for the next file GETs, in
    # turn (0: serve it); a 429 comes with `Retry-After: 0`
    stall_at: int | None = None  # a file response goes silent at this offset of the file...
    stall_s: float = 0.0  # ...for this long, then hangs up
    stalls_left: int = 1
    redirect_to: str | None = None  # resolve answers 302 to this base URL, as a CDN would
    seen: list[Seen] = field(default_factory=list)

    def add_file(self, repo_id: str, path: str, data: bytes) -> None:
        self.repos.setdefault(repo_id, {})[path] = data

    def ranges(self, path: str) -> list[str | None]:
        """The Range header of each GET of a resolve URL ending in `path`."""
        return [
            s.headers.get("range")
            for s in self.seen
            if s.method == "GET" and "/resolve/" in s.path and s.path.endswith(path)
        ]

    # -- server life ------------------------------------------------------------------------

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324


def file_entry(path: str, data: bytes) -> dict:
    entry = {"type": "file", "oid": git_sha1(data), "size": len(data), "path": path}
    if len(data) >= LFS_THRESHOLD:
        entry["lfs"] = {
            "oid": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "pointerSize": 134,
        }
    return entry


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-file (a cancelled download) is not an error here."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


_API = re.compile(r"^/api/models/([^/]+/[^/]+)/(tree|paths-info)/([^/]+)(?:/(.*))?$")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeHub

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    # -- routing ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        self.fake.seen.append(Seen(method, path, {k.lower(): v for k, v in self.headers.items()}))
        body = self._read_body() if method == "POST" else b""
        api, resolve = _API.match(path), _RESOLVE.match(path)
        if self.fake.token and self.headers.get("Authorization") != f"Bearer {self.fake.token}":
            return self._error(401, None, "Invalid username or password.")
        repo_id = (api or resolve).group(1) if (api or resolve) else None
        if repo_id is None:
            return self._error(404, None, "Not found")
        if repo_id in self.fake.gated:
            return self._error(403, "GatedRepo", "Access to this repo is restricted.")
        if repo_id in self.fake.status:
            return self._error(self.fake.status[repo_id], None, "Forced status")
        if repo_id not in self.fake.repos:
            return self._error(404, "RepoNotFound", "Repository not found")
        if api and api.group(2) == "tree" and method == "GET":
            return self._tree(repo_id, api.group(4) or "", parse_qs(split.query))
        if api and api.group(2) == "paths-info" and method == "POST":
            return self._paths_info(repo_id, parse_qs(body.decode()))
        if resolve and method in ("GET", "HEAD"):
            return self._resolve(repo_id, resolve.group(3), method)
        return self._error(405, None, "Method not allowed")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- answers ----------------------------------------------------------------------------

    def _json(self, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str | None, message: str) -> None:
        data = json.dumps({"error": message}).encode()
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "0")
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _tree(self, repo_id: str, folder: str, query: dict) -> None:
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        prefix = f"{folder.rstrip('/')}/" if folder else ""
        files = {p: d for p, d in self.fake.repos[repo_id].items() if p.startswith(prefix)}
        if folder and not files:
            return self._error(404, "EntryNotFound", f"{folder} does not exist")
        entries, folders = [], set()
        for path, data in sorted(files.items()):
            rest = path[len(prefix) :].split("/")
            for depth in range(1, len(rest)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(rest[:depth]))
            if recursive or len(rest) == 1:
                entries.append(file_entry(path, data))
        dirs = [
            {"type": "directory", "oid": git_sha1(d.encode()), "size": 0, "path": d}
            for d in sorted(folders)
        ]
        self._json(dirs + entries)

    def _paths_info(self, repo_id: str, form: dict) -> None:
        files = self.fake.repos[repo_id]
        self._json([file_entry(p, files[p]) for p in form.get("paths", []) if p in files])

    def _resolve(self, repo_id: str, path: str, method: str) -> None:
        fake = self.fake
        if path in fake.status:
            return self._error(fake.status[path], None, "Forced status")
        if method == "GET" and fake.answers and (answer := fake.answers.pop(0)):
            return self._error(answer, None, "Injected status")
        if fake.redirect_to:
            return self._redirect(f"{fake.redirect_to}{self.path}")
        data = fake.repos[repo_id].get(path)
        if data is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist")
        entry = file_entry(path, data)
        etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
        if path in fake.corrupt:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        start, end, status = 0, len(data) - 1, 200
        wanted = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range") or "")
        if wanted and not fake.ignore_range:
            start = int(wanted.group(1))
            end = min(int(wanted.group(2)), end) if wanted.group(2) else end
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        if "lfs" in entry:
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("X-Linked-Etag", f'"{etag}"')
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if method == "GET":
            self._send_body(data[start : end + 1], start)

    def _send_body(self, body: bytes, start: int) -> None:
        fake = self.fake
        cut = fake.drop_after is not None and fake.drops_left != 0
        limit = min(len(body), fake.drop_after) if cut else len(body)
        if cut and fake.drops_left is not None:
            fake.drops_left -= 1
        if fake.dead_at is not None:
            limit = max(0, min(limit, fake.dead_at - start))
        if fake.stall_at is not None and fake.stalls_left and start < fake.stall_at:
            fake.stalls_left -= 1
            self.wfile.write(body[: fake.stall_at - start])
            self.wfile.flush()
            time.sleep(fake.stall_s)  # the client gives up on us meanwhile
            self.close_connection = True
            return
        for offset in range(0, limit, fake.chunk):
            self.wfile.write(body[offset : min(offset + fake.chunk, limit)])
            if fake.delay:
                self.wfile.flush()
                time.sleep(fake.delay)
        if limit < len(body):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)  # the client sees a short body
            self.close_connection = True


def point_huggingface_hub_at(monkeypatch, url: str, tmp_path) -> None:
    """Aim huggingface_hub at `url`: HF_ENDPOINT and the constants it read at import time,
    plain HTTP (no Xet), and no token from this machine."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
