"""Downloads and conversions leave a trace in parlor.log: what, how big, how long, why not."""

from __future__ import annotations

import hashlib
import logging

import pytest

from app.core.convert import moe as mc
from app.core.hub import downloads as dl
from app.core.hub.downloads import RemoteFile, RetryPolicy
from tests.hub_server import FakeHub, point_huggingface_hub_at
from tests.legacy_models import write_moe

REPO = "someone/tiny-logs-GGUF"
DATA = bytes(range(256)) * 400


def _messages(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with FakeHub() as fake:
        fake.add_file(REPO, "model.Q4_K_M.gguf", DATA)
        point_huggingface_hub_at(monkeypatch, fake.url, tmp_path)
        yield fake


def test_a_download_is_logged_and_so_is_a_bad_checksum(hub, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    good = RemoteFile("model.Q4_K_M.gguf", len(DATA), sha256=hashlib.sha256(DATA).hexdigest())
    dl.download(REPO, [good], tmp_path / "a", policy=RetryPolicy(first_wait=0, max_wait=0))
    text = _messages(caplog)
    assert f"download from {REPO}: model.Q4_K_M.gguf" in text
    assert "downloaded and verified 1 file(s)" in text
    bad = RemoteFile("model.Q4_K_M.gguf", len(DATA), sha256="0" * 64)
    with pytest.raises(dl.DownloadError):
        dl.download(REPO, [bad], tmp_path / "b", policy=RetryPolicy(first_wait=0, max_wait=0))
    assert f"download from {REPO} stopped: ChecksumMismatch" in _messages(caplog)


def test_a_conversion_is_logged(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    legacy = write_moe(tmp_path / "legacy.gguf", legacy=True, expert_type="Q8_0")
    mc.convert_legacy_moe(legacy, tmp_path / "merged.gguf")
    text = _messages(caplog)
    assert "converting legacy.gguf to the merged expert layout: 6 expert groups" in text
    assert "converted merged.gguf in " in text
