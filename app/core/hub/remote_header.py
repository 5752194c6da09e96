"""Read a GGUF header from the hub with Range requests, before deciding to download.

The bytes come through huggingface_hub's session, like the download itself, so a redirect
to another origin never carries the hub token. The range grows until the header parses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
from huggingface_hub.utils import get_session

from app.core.gguf.header import GGUFError, GGUFHeader, HeaderIncomplete, read_header
from app.core.hub.errors import explain_status

if TYPE_CHECKING:
    from app.core.hub.remote import Hub

FIRST_BYTES = 1 << 20
MAX_BYTES = 256 << 20  # no real header is near this; a bound against a hostile server
TIMEOUT = httpx2.Timeout(30.0, connect=10.0)


def read_hub_header(
    hub: Hub, repo_id: str, path: str, *, first: int = FIRST_BYTES, max_bytes: int = MAX_BYTES
) -> GGUFHeader:
    """The header of `repo_id/path`; GGUFError (with a reason a person can read) otherwise.
    `file_size` of the result is the remote file's size, from Content-Range."""
    name = path.rsplit("/", 1)[-1]
    buf, total, want = b"", None, first
    while True:
        if len(buf) < want:
            chunk, total = _fetch_range(hub, repo_id, path, len(buf), want - 1)
            buf += chunk
        try:
            return read_header(buf, name=name, file_size=total)
        except HeaderIncomplete as exc:
            if total is not None and exc.needed_bytes > total:
                raise GGUFError(
                    f"{name}: the remote file ({total} bytes) ends inside its GGUF header"
                ) from exc
            if len(buf) < want or want >= max_bytes:  # the server gave all there is
                raise
            want = min(max(exc.needed_bytes, 2 * want), max_bytes)


def _fetch_range(
    hub: Hub, repo_id: str, path: str, start: int, end: int
) -> tuple[bytes, int | None]:
    headers = {**hub.headers(), "Range": f"bytes={start}-{end}"}
    try:
        with get_session().stream(
            "GET", hub.url(repo_id, path), headers=headers, timeout=TIMEOUT
        ) as response:
            if response.status_code == 416:
                total = _total(response.headers.get("Content-Range"))
                return b"", total if total is not None else start
            if response.status_code >= 400:
                raise GGUFError(
                    explain_status(
                        response.status_code,
                        f"{repo_id}/{path}",
                        hub,
                        f"HTTP {response.status_code}",
                    )
                )
            return _read_wanted(response, start, end)
    except httpx2.TransportError as exc:
        raise GGUFError(f"cannot fetch the header ({exc})") from exc


def _read_wanted(response: httpx2.Response, start: int, end: int) -> tuple[bytes, int | None]:
    """206: the range asked for; 200 (Range ignored): skip to `start`, read only what we want."""
    if response.status_code == 206:
        total = _total(response.headers.get("Content-Range"))
        skip = 0
    else:
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        skip = start
    want = end - start + 1
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= skip + want:
            break
    return bytes(data[skip : skip + want]), total


def _total(value: str | None) -> int | None:
    if value and "/" in value:
        tail = value.rsplit("/", 1)[1].strip()
        if tail.isdigit():
            return int(tail)
    return None
