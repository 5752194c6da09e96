"""Newer Vulkan headers from Debian's archive, against an archive served on 127.0.0.1.

The archive here has Debian's layout (`dists/sid/main/binary-amd64/Packages.xz` and the
pool), and its .deb is a real ar archive with a data.tar.xz, as dpkg-deb writes them.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import lzma
import sys
import tarfile
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packaging"))
import vulkan_headers as vh  # noqa: E402


def _header(version: int) -> bytes:
    return f"#ifndef VULKAN_CORE_H_\n#define VK_HEADER_VERSION {version}\n#endif\n".encode()


def _deb(version: int) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, body in [
            ("./usr/include/vulkan/vulkan_core.h", _header(version)),
            ("./usr/include/vk_video/vulkan_video_codecs_common.h", b"/* codecs */\n"),
            ("./usr/lib/x86_64-linux-gnu/libvulkan.so", b"not wanted"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", b""),
        ("data.tar.xz", data.getvalue()),
    ]
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, body in members:
        out.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode())
        out.write(body + (b"\n" if len(body) % 2 else b""))
    return out.getvalue()


def _archive(root: Path, version: int, sha: str | None = None) -> None:
    deb = _deb(version)
    pool = root / "pool/main/v/vulkan-loader"
    pool.mkdir(parents=True)
    (pool / f"libvulkan-dev_1.4.{version}.0-1_amd64.deb").write_bytes(deb)
    index = (
        f"Package: libvulkan1\nVersion: 1.4.{version}.0-1\nFilename: pool/x.deb\nSHA256: 00\n\n"
        f"Package: libvulkan-dev\nSource: vulkan-loader\nVersion: 1.4.{version}.0-1\n"
        f"Depends: libvulkan1 (= 1.4.{version}.0-1)\n"
        "Description: Vulkan loader library -- development files\n"
        " A long description line: with a colon.\n"
        f"Filename: pool/main/v/vulkan-loader/libvulkan-dev_1.4.{version}.0-1_amd64.deb\n"
        f"SHA256: {sha or hashlib.sha256(deb).hexdigest()}\n\n"
    )
    dists = root / "dists/sid/main/binary-amd64"
    dists.mkdir(parents=True)
    (dists / "Packages.xz").write_bytes(lzma.compress(index.encode()))


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    asked: list[str] = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        return vh._fetch(url)

    yield root, f"http://127.0.0.1:{server.server_address[1]}", fetch, asked
    server.shutdown()


def _old_sdk(tmp_path: Path, version: int = 239) -> dict[str, str]:
    include = tmp_path / "sdk" / "include" / "vulkan"
    include.mkdir(parents=True)
    (include / "vulkan_core.h").write_bytes(_header(version))
    return {"VULKAN_SDK": str(tmp_path / "sdk")}


def test_new_enough_headers_are_used_as_they_are(tmp_path, served):
    _, url, fetch, asked = served
    assert vh.ensure_headers(tmp_path / "work", _old_sdk(tmp_path, 363), fetch, url) is None
    assert asked == []


def test_old_headers_get_debians_newer_ones_once(tmp_path, served):
    root, url, fetch, asked = served
    _archive(root, 370)
    env = _old_sdk(tmp_path)
    include = vh.ensure_headers(tmp_path / "work", env, fetch, url)
    assert include == tmp_path / "work" / "vulkan-headers" / "1.4.370.0-1" / "usr" / "include"
    assert vh.header_version(include) == 370
    assert (include / "vk_video" / "vulkan_video_codecs_common.h").is_file()
    assert not (include.parent / "lib").exists()  # headers only
    assert len(asked) == 2
    assert vh.ensure_headers(tmp_path / "work", env, fetch, url) == include
    assert len(asked) == 2  # the unpacked folder is reused


def test_a_download_that_does_not_match_the_index_is_refused(tmp_path, served):
    root, url, fetch, _ = served
    _archive(root, 370, sha="0" * 64)
    with pytest.raises(ValueError, match="does not match the archive's SHA256"):
        vh.ensure_headers(tmp_path / "work", _old_sdk(tmp_path), fetch, url)
    assert not (tmp_path / "work" / "vulkan-headers").exists()


def test_an_archive_with_headers_still_too_old_is_an_error(tmp_path, served):
    root, url, fetch, _ = served
    _archive(root, 309)
    with pytest.raises(ValueError, match="older than the 363 this llama.cpp needs"):
        vh.ensure_headers(tmp_path / "work", _old_sdk(tmp_path), fetch, url)


def test_the_sdk_is_looked_at_before_the_system():
    assert vh.found_include({"VULKAN_SDK": "/opt/sdk"}) == Path("/opt/sdk/include")
    assert vh.found_include({}) == Path("/usr/include")


def test_a_file_that_is_not_a_deb_is_refused():
    with pytest.raises(ValueError, match="not a .deb"):
        vh.ar_members(b"<html>404</html>")
