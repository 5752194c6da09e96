"""Downloads against a fake hub on 127.0.0.1, driven by the real huggingface_hub client."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import httpx2
import pytest
from huggingface_hub import constants, hf_hub_download

from app.cli import main as cli
from app.core.appdata.machine import machine_from_sizes
from app.core.gguf.header import GGUFError
from app.core.hub import downloads as dl
from app.core.hub import progress as progress_mod
from app.core.hub.downloads import (
    AlreadyDownloading,
    ChecksumMismatch,
    DownloadCancelled,
    DownloadError,
    Hub,
    RemoteFile,
    RetryPolicy,
)
from app.core.hub.lock import part_lock
from app.core.hub.manifest import Conversion, Manifest, read_manifest, write_manifest
from app.core.hub.progress import Meter
from tests.hub_server import FakeHub, point_huggingface_hub_at

REPO = "someone/some-model-GGUF"
NO_WAIT = RetryPolicy(first_wait=0, max_wait=0)
CATALOG_REPO = "Kquant03/MistralTrix-4x9B-ERP-GGUF"


def blob(size: int, seed: int) -> bytes:
    """Deterministic bytes that differ from one seed to another."""
    out, counter = bytearray(), 0
    while len(out) < size:
        out += hashlib.sha256(b"%d-%d" % (seed, counter)).digest()
        counter += 1
    return bytes(out[:size])


FILES = {
    "model.Q4_K_M.gguf": blob(300_000, 1),
    "model.Q2_K.gguf": blob(150_000, 2),
    "big/model-Q8_0-00001-of-00002.gguf": blob(120_000, 3),
    "big/model-Q8_0-00002-of-00002.gguf": blob(80_000, 4),
    "README.md": b"# a model\n",
    "config.json": blob(2_000, 5),
}


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """The fake hub, with huggingface_hub pointed at it through HF_ENDPOINT and its constants
    (read at import time), plain HTTP (no Xet), and no token from this machine."""
    with FakeHub() as hub:
        for path, data in FILES.items():
            hub.add_file(REPO, path, data)
        point_huggingface_hub_at(monkeypatch, hub.url, tmp_path)
        yield hub


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "models"


def remote(path: str) -> RemoteFile:
    data = FILES[path]
    return RemoteFile(path, len(data), sha256=hashlib.sha256(data).hexdigest())


def leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def installed(*names: str) -> list[str]:
    """What a folder holds after these files were installed: each with its manifest."""
    return sorted([*names, *(f"{n}.parlor.json" for n in names)])


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, quant",
    [
        ("ggml-model-q4_k_m.gguf", "Q4_K_M"),
        ("mistral-7b-instruct-v0.2.Q5_K_S.gguf", "Q5_K_S"),
        ("Llama-3-8B-Instruct-IQ2_XXS.gguf", "IQ2_XXS"),
        ("model-UD-Q4_K_XL-00001-of-00003.gguf", "Q4_K_XL"),
        ("gemma-2b-it-f16.gguf", "F16"),
        ("phi-3-mini-bf16.gguf", "BF16"),
        ("tiny_q8_0.gguf", "Q8_0"),
        ("Qwen-q4_0_4_4.gguf", "Q4_0_4_4"),
        ("gpt-oss-20b-MXFP4.gguf", "MXFP4"),
        ("llama-fp16.gguf", "F16"),
        ("ggml-model-Q3_K_L.gguf", "Q3_K_L"),
        ("model.gguf", None),
        ("IQ4_NL-but-not-q4.gguf", "IQ4_NL"),
    ],
)
def test_quant_from_filename(name, quant):
    assert dl.quant_from_filename(name) == quant


def test_split_info():
    assert dl.split_info("a/m-Q4_K_M-00002-of-00003.gguf") == ("a/m-Q4_K_M", 2, 3)
    assert dl.split_info("m-Q4_K_M.gguf") is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("owner/name", ("owner/name", None)),
        (" owner/name-GGUF ", ("owner/name-GGUF", None)),
        ("https://huggingface.co/owner/name", ("owner/name", None)),
        ("https://huggingface.co/owner/name/tree/main", ("owner/name", None)),
        ("huggingface.co/owner/name/", ("owner/name", None)),
        (
            "https://hf-mirror.example/owner/name/blob/main/m.Q4_K_M.gguf",
            ("owner/name", "m.Q4_K_M.gguf"),
        ),
        (
            "https://huggingface.co/owner/name/resolve/main/sub/m.gguf?download=true",
            ("owner/name", "sub/m.gguf"),
        ),
    ],
)
def test_parse_repo_ref(text, expected):
    assert dl.parse_repo_ref(text) == expected


@pytest.mark.parametrize("text", ["name", "https://huggingface.co/datasets/o/n", "https://x/"])
def test_parse_repo_ref_rejects(text):
    with pytest.raises(DownloadError, match="Not a model repository"):
        dl.parse_repo_ref(text)


# -- listing ------------------------------------------------------------------------------------


def test_listing_groups_gguf_files_with_sizes_and_checksums(fake):
    models = Hub().list_gguf(REPO)
    assert [(m.name, m.quant, m.size, m.split_count, m.complete) for m in models] == [
        ("model.Q2_K.gguf", "Q2_K", 150_000, 1, True),
        ("big/model-Q8_0.gguf", "Q8_0", 200_000, 2, True),
        ("model.Q4_K_M.gguf", "Q4_K_M", 300_000, 1, True),
    ]
    split = models[1]
    assert [f.path for f in split.files] == [
        "big/model-Q8_0-00001-of-00002.gguf",
        "big/model-Q8_0-00002-of-00002.gguf",
    ]
    assert split.first_file == "model-Q8_0-00001-of-00002.gguf"
    assert models[0].files[0].sha256 == hashlib.sha256(FILES["model.Q2_K.gguf"]).hexdigest()


def test_listing_keeps_incomplete_splits_visible(fake):
    del fake.repos[REPO]["big/model-Q8_0-00002-of-00002.gguf"]
    split = next(m for m in Hub().list_gguf(REPO) if m.quant == "Q8_0")
    assert not split.complete


def test_file_info(fake):
    (readme,) = Hub().file_info(REPO, ["README.md"])
    assert readme.sha256 is None and readme.git_sha1 and readme.size == 10
    with pytest.raises(DownloadError, match="has no file 'nope.gguf'"):
        Hub().file_info(REPO, ["nope.gguf"])


def test_a_mirror_endpoint_is_used_when_given(fake, monkeypatch):
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    hub = Hub(endpoint=fake.url)
    assert len(hub.list_gguf(REPO)) == 3
    assert hub.url(REPO, "model.Q2_K.gguf").startswith(fake.url + "/")


def test_the_fake_hub_serves_huggingface_hubs_own_download(fake, tmp_path):
    path = hf_hub_download(REPO, "model.Q2_K.gguf", local_dir=tmp_path / "hf")
    assert Path(path).read_bytes() == FILES["model.Q2_K.gguf"]


# -- downloading --------------------------------------------------------------------------------


def test_download_reports_progress_and_installs_a_verified_file(fake, dest, monkeypatch):
    monkeypatch.setattr(progress_mod, "PROGRESS_INTERVAL_S", 0)
    seen = []
    paths = dl.download(REPO, [remote("model.Q4_K_M.gguf")], dest, progress=seen.append)
    assert paths == [dest / "model.Q4_K_M.gguf"]
    assert paths[0].read_bytes() == FILES["model.Q4_K_M.gguf"]
    assert leftovers(dest) == installed("model.Q4_K_M.gguf")
    assert {p.total for p in seen} == {300_000}
    done = [p.done for p in seen]
    assert done == sorted(done) and done[-1] == 300_000
    assert [p.phase for p in seen][-2:] == ["verifying", "done"]
    assert len([p for p in seen if p.phase == "downloading"]) > 2
    assert all(p.file == "model.Q4_K_M.gguf" for p in seen)
    assert seen[-1].fraction == 1.0


def test_speed_and_eta():
    seen = []
    meter = Meter(1000, seen.append)
    meter._samples.extend([(10.0, 0), (12.0, 400)])
    meter.done = 400
    meter.emit(now=12.0)
    assert (seen[-1].speed, seen[-1].eta) == (200.0, 3.0)


def test_split_model_downloads_all_parts(fake, dest):
    model = next(m for m in Hub().list_gguf(REPO) if m.split_count == 2)
    paths = dl.download(REPO, model, dest)
    assert [p.name for p in paths] == [
        "model-Q8_0-00001-of-00002.gguf",
        "model-Q8_0-00002-of-00002.gguf",
    ]
    assert paths[1].read_bytes() == FILES["big/model-Q8_0-00002-of-00002.gguf"]
    assert leftovers(dest) == installed(*(p.name for p in paths))


def test_small_files_are_verified_by_git_blob_id(fake, dest):
    (readme,) = Hub().file_info(REPO, ["README.md"])
    dl.download(REPO, [readme], dest)
    assert (dest / "README.md").read_bytes() == FILES["README.md"]


def test_an_installed_file_is_not_fetched_again(fake, dest):
    dl.download(REPO, [remote("model.Q2_K.gguf")], dest)
    before = len(fake.seen)
    dl.download(REPO, [remote("model.Q2_K.gguf")], dest)
    assert len(fake.seen) == before


def test_cancel_keeps_the_part_and_a_later_run_resumes(fake, dest, monkeypatch):
    monkeypatch.setattr(progress_mod, "PROGRESS_INTERVAL_S", 0)
    fake.delay = 0.01
    cancel = threading.Event()

    def progress(p):
        if p.phase == "downloading" and p.done > 0:
            cancel.set()

    file = remote("model.Q4_K_M.gguf")
    with pytest.raises(DownloadCancelled, match="kept in .*model.Q4_K_M.gguf.part"):
        dl.download(REPO, [file], dest, progress=progress, cancel=cancel)
    part = dest / "model.Q4_K_M.gguf.part"
    assert leftovers(dest) == ["model.Q4_K_M.gguf.part"]
    kept = part.stat().st_size
    assert 0 < kept < file.size

    fake.delay = 0
    seen = []
    dl.download(REPO, [file], dest, progress=seen.append)
    assert fake.ranges("model.Q4_K_M.gguf")[-1] == f"bytes={kept}-"
    assert (dest / "model.Q4_K_M.gguf").read_bytes() == FILES["model.Q4_K_M.gguf"]
    assert leftovers(dest) == installed("model.Q4_K_M.gguf")
    assert seen[0].phase == "checking"  # the kept bytes were hashed, not fetched again


def test_discard_partial(fake, dest):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadCancelled):
        dl.download(REPO, [remote("model.Q2_K.gguf")], dest, cancel=cancel)
    dl.discard_partial(dest, [remote("model.Q2_K.gguf")])
    assert leftovers(dest) == []


def test_a_dropped_connection_is_resumed_within_the_call(fake, dest):
    fake.drop_after, fake.drops_left = 100_000, 2
    dl.download(REPO, [remote("model.Q4_K_M.gguf")], dest, policy=NO_WAIT)
    assert fake.ranges("model.Q4_K_M.gguf") == [None, "bytes=100000-", "bytes=200000-"]
    assert (dest / "model.Q4_K_M.gguf").read_bytes() == FILES["model.Q4_K_M.gguf"]
    assert leftovers(dest) == installed("model.Q4_K_M.gguf")


def test_retries_go_on_while_each_attempt_brings_bytes(fake, dest):
    fake.drop_after = 100_000  # every response is cut, but each one brings 100 kB more
    dl.download(REPO, [remote("model.Q4_K_M.gguf")], dest, policy=replace(NO_WAIT, attempts=1))
    assert fake.ranges("model.Q4_K_M.gguf") == [None, "bytes=100000-", "bytes=200000-"]


def test_a_dropped_connection_is_resumed_by_the_next_run(fake, dest):
    fake.dead_at = 120_000  # the server dies at 120 kB and stays dead
    file = remote("model.Q4_K_M.gguf")
    with pytest.raises(DownloadError, match="Run the download again to resume"):
        dl.download(REPO, [file], dest, policy=replace(NO_WAIT, attempts=2))
    assert fake.ranges("model.Q4_K_M.gguf") == [None] + ["bytes=120000-"] * 3
    assert leftovers(dest) == ["model.Q4_K_M.gguf.part"]
    assert (dest / "model.Q4_K_M.gguf.part").stat().st_size == 120_000

    fake.dead_at = None  # back again, and as far as we know this is a new process
    dl.download(REPO, [file], dest)
    assert fake.ranges("model.Q4_K_M.gguf")[-1] == "bytes=120000-"
    assert (dest / "model.Q4_K_M.gguf").read_bytes() == FILES["model.Q4_K_M.gguf"]
    assert leftovers(dest) == installed("model.Q4_K_M.gguf")


def test_a_server_that_ignores_range_restarts_the_file(fake, dest):
    file = remote("model.Q4_K_M.gguf")
    dest.mkdir()
    (dest / "model.Q4_K_M.gguf.part").write_bytes(FILES["model.Q4_K_M.gguf"][:1000])
    fake.ignore_range = True
    dl.download(REPO, [file], dest)
    assert (dest / "model.Q4_K_M.gguf").read_bytes() == FILES["model.Q4_K_M.gguf"]


def test_a_checksum_mismatch_leaves_nothing(fake, dest):
    fake.corrupt.add("model.Q4_K_M.gguf")
    with pytest.raises(ChecksumMismatch, match="did not match the hub's sha256"):
        dl.download(REPO, [remote("model.Q4_K_M.gguf")], dest)
    assert leftovers(dest) == []


def test_a_stale_part_is_refetched_once(fake, dest):
    dest.mkdir()
    (dest / "model.Q4_K_M.gguf.part").write_bytes(b"an older upload" * 100)
    dl.download(REPO, [remote("model.Q4_K_M.gguf")], dest)
    assert (dest / "model.Q4_K_M.gguf").read_bytes() == FILES["model.Q4_K_M.gguf"]
    assert fake.ranges("model.Q4_K_M.gguf") == ["bytes=1500-", None]


def test_no_checksum_no_download(fake, dest):
    with pytest.raises(DownloadError, match="no checksum"):
        dl.download(REPO, [RemoteFile("model.Q2_K.gguf", 150_000)], dest)
    assert leftovers(dest) == []


def test_free_disk_is_checked_before_anything_is_fetched(fake, dest):
    before = len(fake.seen)
    with pytest.raises(DownloadError) as caught:
        dl.download(
            REPO,
            [remote("model.Q4_K_M.gguf")],
            dest,
            disk_usage=lambda path: SimpleNamespace(free=1_000),
        )
    assert str(caught.value) == (
        f"Not enough disk space in {dest}: the download needs 300 kB more, and Parlor keeps "
        "64.0 MB free beyond it, so 64.3 MB in all; 1 kB are free. Free some space or choose "
        "another folder."
    )
    assert len(fake.seen) == before
    assert leftovers(dest) == []


def test_the_disk_margin_is_part_of_the_message_not_hidden(fake, dest):
    """Enough for the file itself but not for the margin: the message must say both."""
    with pytest.raises(DownloadError, match="needs 300 kB more, and Parlor keeps 64.0 MB free"):
        dl.download(
            REPO,
            [remote("model.Q4_K_M.gguf")],
            dest,
            disk_usage=lambda path: SimpleNamespace(free=1_000_000),
        )


def test_a_full_disk_mid_download_is_a_clear_message(fake, dest):
    class FillsUp:
        def __init__(self, path, mode, room=100_000):
            self.f, self.room = open(path, mode), room

        def write(self, data):
            if self.room < len(data):
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    with pytest.raises(DownloadError, match="the disk is full"):
        dl.download(REPO, [remote("model.Q4_K_M.gguf")], dest, opener=FillsUp)
    assert not (dest / "model.Q4_K_M.gguf").exists()
    assert leftovers(dest) in ([], ["model.Q4_K_M.gguf.part"])


def test_an_unknown_repository_is_a_404(fake):
    with pytest.raises(DownloadError, match="Repository someone/missing was not found"):
        Hub().list_gguf("someone/missing")


def test_a_404_on_the_file_itself(fake, dest):
    fake.status["model.Q2_K.gguf"] = 404
    with pytest.raises(DownloadError, match="not found"):
        dl.download(REPO, [remote("model.Q2_K.gguf")], dest)
    assert leftovers(dest) == []


def test_a_500_that_does_not_go_away_gives_up_within_the_bound(fake, dest):
    fake.status["model.Q2_K.gguf"] = 500
    seen = []
    with pytest.raises(DownloadError) as caught:
        dl.download(
            REPO,
            [remote("model.Q2_K.gguf")],
            dest,
            progress=seen.append,
            policy=RetryPolicy(attempts=2, first_wait=0.01, budget_s=5),
        )
    assert str(caught.value) == (
        f"Downloading model.Q2_K.gguf from {fake.url} failed: the hub answered 500 (a server "
        "error), and 2 retries over 0 s brought nothing more. Nothing was downloaded yet. "
        "Try again later."
    )
    assert fake.ranges("model.Q2_K.gguf") == [None] * 3
    notes = [p.note for p in seen if p.phase == "retrying"]
    assert notes[0] == (
        "The hub answered 500 (a server error); retrying in 0 s (retry 1 of 2 "
        "without progress; Parlor gives up after 2 retries or 5 s of waiting "
        "without progress)"
    )
    assert leftovers(dest) == []


def test_the_total_wait_is_bounded_too(fake, dest):
    fake.status["model.Q2_K.gguf"] = 503
    with pytest.raises(
        DownloadError,
        match=r"503 \(service unavailable\), and 1 retry over "
        "0 s brought nothing more",
    ):
        dl.download(
            REPO,
            [remote("model.Q2_K.gguf")],
            dest,
            policy=RetryPolicy(attempts=10, first_wait=0.2, budget_s=0.5),
        )
    assert len(fake.ranges("model.Q2_K.gguf")) == 2  # waits 0.2, then 0.4 would pass 0.5


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_server_error_mid_file_is_retried_and_resumed(fake, dest, status):
    fake.drop_after, fake.drops_left = 100_000, 1
    fake.answers = [0, status, status]  # the first GET is served (and cut), two fail
    seen = []
    dl.download(REPO, [remote("model.Q4_K_M.gguf")], dest, policy=NO_WAIT, progress=seen.append)
    assert fake.ranges("model.Q4_K_M.gguf") == [None] + ["bytes=100000-"] * 3
    assert (dest / "model.Q4_K_M.gguf").read_bytes() == FILES["model.Q4_K_M.gguf"]
    assert f"The hub answered {status}" in next(p.note for p in seen if "answered" in p.note)


def test_a_stalled_connection_is_retried_and_resumed(fake, dest):
    fake.stall_at, fake.stall_s = 100_000, 3.0
    seen = []
    dl.download(
        REPO,
        [remote("model.Q4_K_M.gguf")],
        dest,
        progress=seen.append,
        policy=replace(NO_WAIT, stall_s=0.5),
    )
    assert fake.ranges("model.Q4_K_M.gguf") == [None, "bytes=100000-"]
    assert (dest / "model.Q4_K_M.gguf").read_bytes() == FILES["model.Q4_K_M.gguf"]
    assert any(p.note.startswith("The connection stalled; retrying") for p in seen)


def test_a_401_asks_for_a_token_and_a_token_works(fake, dest, monkeypatch):
    fake.token = "hf_secret"
    with pytest.raises(DownloadError, match="Not authorized.*HF_TOKEN"):
        Hub().list_gguf(REPO)
    with pytest.raises(DownloadError, match="Not authorized"):
        dl.download(REPO, [remote("model.Q2_K.gguf")], dest)
    assert leftovers(dest) == []

    hub = Hub(token="hf_secret")
    assert len(hub.list_gguf(REPO)) == 3
    dl.download(REPO, [remote("model.Q2_K.gguf")], dest, hub=hub)

    monkeypatch.setenv("HF_TOKEN", "hf_secret")  # what huggingface_hub.get_token() reads
    assert len(Hub().list_gguf(REPO)) == 3


def test_a_gated_repository_says_so(fake):
    fake.gated.add(REPO)
    with pytest.raises(DownloadError, match="is gated: accept its terms"):
        Hub().list_gguf(REPO)


def test_an_unreachable_hub_fails_fast_and_points_to_the_setting(fake):
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        Hub(endpoint="http://127.0.0.1:9").list_gguf(REPO)
    assert time.monotonic() - started < 3  # huggingface_hub's own retries took 24 s
    message = str(caught.value)
    assert message.startswith("Cannot reach http://127.0.0.1:9 (")
    assert message.endswith(
        "Check the connection, or set a mirror in Settings → Data → Model hub address."
    )
    assert "HF_ENDPOINT" not in message and "--endpoint" not in message


def test_a_hub_that_never_answers_fails_within_the_probe_timeout(fake, monkeypatch):
    """A listening socket that never accepts: connect succeeds, the answer never comes."""
    from app.core.hub import remote as remote_mod

    monkeypatch.setattr(remote_mod, "PROBE_TIMEOUT", httpx2.Timeout(0.5))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(DownloadError, match="Cannot reach .*Model hub address"):
            Hub(endpoint=url).list_gguf(REPO)
    assert time.monotonic() - started < 3


def test_offline_mode_says_so(fake, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError) as caught:
        Hub().list_gguf(REPO)
    assert str(caught.value) == (
        "Offline mode is on (HF_HUB_OFFLINE is set), so the hub "
        "cannot be reached; unset it, or set a local mirror in "
        "Settings → Data → Model hub address."
    )


# -- parlor download ----------------------------------------------------------------------------


def test_cli_downloads_a_quant_with_a_progress_bar(fake, dest, capsys):
    assert cli(["download", REPO, "--quant", "q4_k_m", "--dest", str(dest), "--no-convert"]) == 0
    out, err = capsys.readouterr()
    assert (dest / "model.Q4_K_M.gguf").read_bytes() == FILES["model.Q4_K_M.gguf"]
    assert "Saved" in out and "model.Q4_K_M.gguf" in out
    assert "[############################] 100.0%  0.3/0.3 MB" in err


def test_cli_says_when_a_verified_download_is_not_a_model_it_can_open(fake, dest, capsys):
    assert cli(["download", REPO, "--quant", "Q2_K", "--dest", str(dest)]) == 1
    err = capsys.readouterr().err
    final = dest / "model.Q2_K.gguf"
    assert (
        f"error: {final} was downloaded and verified, but Parlor cannot open it: "
        "model.Q2_K.gguf is not a GGUF file" in err
    )
    assert final.read_bytes() == FILES["model.Q2_K.gguf"]  # kept: it is what the hub has


def test_cli_waits_for_a_download_running_elsewhere_and_says_so(fake, dest, capsys):
    file = remote("model.Q2_K.gguf")
    dest.mkdir()
    held, release = threading.Event(), threading.Event()

    def other_window():
        with part_lock(dest / "model.Q2_K.gguf.part"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=other_window)
    thread.start()
    held.wait(5)
    threading.Timer(0.5, release.set).start()  # the other one gives up after a while
    assert cli(["download", REPO, "--file", file.path, "--dest", str(dest), "--no-convert"]) == 0
    thread.join(10)
    err = capsys.readouterr().err
    assert (
        "model.Q2_K.gguf is already downloading in another window or command. Let it "
        "finish there (or cancel it there), then try again. Waiting for it…"
    ) in err
    assert (dest / "model.Q2_K.gguf").read_bytes() == FILES["model.Q2_K.gguf"]
    assert len(fake.ranges("model.Q2_K.gguf")) == 1


def test_cli_downloads_a_split_file_by_name(fake, dest):
    assert cli(["download", REPO, "--file", "big/model-Q8_0.gguf", "--dest", str(dest)]) == 0
    assert leftovers(dest) == installed(
        "model-Q8_0-00001-of-00002.gguf", "model-Q8_0-00002-of-00002.gguf"
    )


def test_cli_takes_a_pasted_url(fake, dest):
    url = f"https://huggingface.co/{REPO}/blob/main/model.Q2_K.gguf"
    assert cli(["download", url, "--dest", str(dest), "--no-convert"]) == 0
    assert leftovers(dest) == installed("model.Q2_K.gguf")


def test_cli_recommends_for_any_repository(fake, dest, monkeypatch, capsys):
    # Max RAM of another repo's file = size + 2 GB. With 4.00025 GB of RAM, 2.00025 GB are
    # usable: Q2_K (150 kB) and the split Q8_0 (200 kB) fit, Q4_K_M (300 kB) does not.
    monkeypatch.setattr("app.commands.download.read_machine", lambda: machine_from_sizes(4.000_25))
    assert cli(["download", REPO, "--dest", str(dest)]) == 0
    assert leftovers(dest) == installed(
        "model-Q8_0-00001-of-00002.gguf", "model-Q8_0-00002-of-00002.gguf"
    )
    assert "Recommended for this machine: needs 2 GB" in capsys.readouterr().out


def test_cli_default_model_and_recommended_quant(fake, dest, monkeypatch, capsys):
    for i, name in enumerate(
        ["ggml-model-q2_k.gguf", "ggml-model-q4_k_m.gguf", "ggml-model-q6_k.gguf"]
    ):
        fake.add_file(CATALOG_REPO, name, blob(5_000, 10 + i))
    monkeypatch.setattr("app.commands.download.read_machine", lambda: machine_from_sizes(16))
    assert cli(["download", "--dest", str(dest), "--no-convert"]) == 0
    assert leftovers(dest) == installed("ggml-model-q2_k.gguf")
    assert "needs 12 GB, this machine can give 14 GB" in capsys.readouterr().out
    assert cli(["download", "--quant", "Q6_K", "--dest", str(dest), "--no-convert"]) == 0
    assert "ggml-model-q6_k.gguf" in leftovers(dest)


def test_cli_when_nothing_fits(fake, dest, monkeypatch, capsys):
    fake.add_file(CATALOG_REPO, "ggml-model-q2_k.gguf", blob(5_000, 9))
    monkeypatch.setattr("app.commands.download.read_machine", lambda: machine_from_sizes(8))
    assert cli(["download", "--dest", str(dest)]) == 1
    err = capsys.readouterr().err
    assert "Nothing fits this machine" in err and "--quant" in err
    assert leftovers(dest) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["someone/missing"], "was not found"),
        ([REPO, "--quant", "Q6_K"], "has no Q6_K file. Quants found: Q2_K, Q4_K_M, Q8_0"),
        ([REPO, "--file", "nope.gguf"], "has no GGUF file 'nope.gguf'"),
    ],
)
def test_cli_errors(fake, dest, capsys, args, message):
    assert cli(["download", *args, "--dest", str(dest)]) == 1
    assert message in capsys.readouterr().err


def test_text_progress_on_a_terminal():
    class Tty:
        text = ""

        def isatty(self):
            return True

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    from app.commands.download import TextProgress

    tty = Tty()
    bar = TextProgress(tty, width=10)
    bar(dl.Progress(5 * 10**8, 10**9, 2.5e6, 200.0, "m.gguf", "downloading"))
    bar(dl.Progress(10**9, 10**9, 0, None, "m.gguf", "done"))
    assert "\r" in tty.text and tty.text.endswith("\n")
    assert "[#####-----]  50.0%  0.50/1.00 GB     2.5 MB/s  ETA 03:20" in tty.text


# -- what is installed --------------------------------------------------------------------------


def test_an_install_records_where_it_came_from(fake, dest):
    dl.download(REPO, [remote("model.Q2_K.gguf")], dest)
    manifest = read_manifest(dest / "model.Q2_K.gguf")
    assert manifest == Manifest(
        REPO, "main", "model.Q2_K.gguf", 150_000, sha256=remote("model.Q2_K.gguf").sha256
    )


def test_a_recorded_conversion_is_the_install_of_its_source(fake, dest):
    """A converted file differs from the hub's bytes; its manifest says what it came from,
    so nothing is fetched and the file is left byte-identical."""
    dl.download(REPO, [remote("model.Q2_K.gguf")], dest)
    final = dest / "model.Q2_K.gguf"
    final.write_bytes(b"converted" * 1000)
    manifest = read_manifest(final)
    write_manifest(final, manifest.converted(Conversion("test", "0" * 64, 9000)))
    before = len(fake.seen)
    dl.download(REPO, [remote("model.Q2_K.gguf")], dest)
    assert len(fake.seen) == before
    assert final.read_bytes() == b"converted" * 1000


def test_a_file_from_before_manifests_is_checked_once_by_its_bytes(fake, dest):
    dest.mkdir()
    (dest / "model.Q2_K.gguf").write_bytes(FILES["model.Q2_K.gguf"])
    before, seen = len(fake.seen), []
    dl.download(REPO, [remote("model.Q2_K.gguf")], dest, progress=seen.append)
    assert len(fake.seen) == before
    assert [p.phase for p in seen] == ["identifying", "done"]
    assert read_manifest(dest / "model.Q2_K.gguf").sha256 == remote("model.Q2_K.gguf").sha256


def test_a_file_converted_in_place_before_manifests_is_recognised_by_its_original(fake, dest):
    dest.mkdir()
    (dest / "model.Q2_K.legacy.gguf").write_bytes(FILES["model.Q2_K.gguf"])
    (dest / "model.Q2_K.gguf").write_bytes(b"converted")
    before = len(fake.seen)
    dl.download(REPO, [remote("model.Q2_K.gguf")], dest)
    assert len(fake.seen) == before
    assert (dest / "model.Q2_K.gguf").read_bytes() == b"converted"


def test_an_unknown_file_under_the_name_is_never_overwritten(fake, dest):
    dest.mkdir()
    (dest / "model.Q2_K.gguf").write_bytes(b"my own model")
    with pytest.raises(DownloadError) as caught:
        dl.download(REPO, [remote("model.Q2_K.gguf")], dest)
    assert str(caught.value) == (
        f"{dest / 'model.Q2_K.gguf'} already exists and is not model.Q2_K.gguf from {REPO}; "
        "Parlor does not overwrite it. Move or rename it, or download into another folder."
    )
    assert (dest / "model.Q2_K.gguf").read_bytes() == b"my own model"


def test_an_install_of_an_older_upload_is_replaced(fake, dest):
    dest.mkdir()
    final = dest / "model.Q2_K.gguf"
    final.write_bytes(b"older upload")
    write_manifest(final, Manifest(REPO, "main", "model.Q2_K.gguf", 12, sha256="ab" * 32))
    dl.download(REPO, [remote("model.Q2_K.gguf")], dest)
    assert final.read_bytes() == FILES["model.Q2_K.gguf"]


# -- one writer per file ------------------------------------------------------------------------


def _start_slow_download(fake, dest, file):
    """A download in another thread, slowed down so the second one meets it mid-file."""
    fake.delay = 0.05  # about 2 s in all: ample time for the second one to meet it
    fake.chunk = 8 * 1024
    outcome = {}

    def run():
        try:
            outcome["paths"] = dl.download(REPO, [file], dest)
        except DownloadError as exc:  # pragma: no cover - shown by the assertion
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    part = dest / f"{file.name}.part"
    deadline = time.monotonic() + 10
    while not (part.is_file() and part.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread, outcome


def test_a_second_download_of_the_same_file_says_so_and_the_first_completes(fake, dest):
    file = remote("model.Q4_K_M.gguf")
    thread, outcome = _start_slow_download(fake, dest, file)
    with pytest.raises(AlreadyDownloading) as caught:
        dl.download(REPO, [file], dest)
    assert str(caught.value) == (
        "model.Q4_K_M.gguf is already downloading in another window or command. Let it "
        "finish there (or cancel it there), then try again."
    )
    with pytest.raises(AlreadyDownloading):
        dl.discard_partial(dest, [file])  # the other writer's part is not deleted under it
    thread.join(30)
    assert "error" not in outcome
    assert (dest / file.name).read_bytes() == FILES["model.Q4_K_M.gguf"]
    assert len(fake.ranges(file.name)) == 1  # one transfer in all
    assert leftovers(dest) == installed(file.name)  # no .part, no .lock left


def test_a_second_download_can_wait_for_the_first_and_fetches_nothing(fake, dest):
    file = remote("model.Q4_K_M.gguf")
    thread, outcome = _start_slow_download(fake, dest, file)
    seen = []
    paths = dl.download(REPO, [file], dest, wait_for_other=True, progress=seen.append)
    thread.join(30)
    assert paths == outcome["paths"] == [dest / file.name]
    assert (dest / file.name).read_bytes() == FILES["model.Q4_K_M.gguf"]
    assert len(fake.ranges(file.name)) == 1
    waiting = [p for p in seen if p.phase == "waiting"]
    assert waiting and waiting[0].note.endswith("then try again. Waiting for it…")
    assert seen[-1].phase == "done" and seen[-1].fraction == 1.0
    assert leftovers(dest) == installed(file.name)


def test_two_processes_never_write_one_part(fake, dest):
    """The lock holds across processes, as between the window and `parlor download`."""
    file = remote("model.Q4_K_M.gguf")
    dest.mkdir()
    code = (
        "import sys\n"
        "from app.core.hub import downloads as dl\n"
        f"f = dl.RemoteFile({file.path!r}, {file.size}, sha256={file.sha256!r})\n"
        "try:\n"
        f"    dl.download({REPO!r}, [f], {str(dest)!r}, hub=dl.Hub(endpoint={fake.url!r}))\n"
        "except dl.AlreadyDownloading as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    with part_lock(dest / f"{file.name}.part"):  # held here as a window holds it
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HF_HUB_DISABLE_XET": "1"},
        )
    assert done.returncode == 3, done.stderr
    assert "is already downloading in another window or command" in done.stdout
    assert fake.ranges(file.name) == []
    assert leftovers(dest) == []


# -- the token goes only to the hub -------------------------------------------------------------


@pytest.fixture
def cdn(fake):
    """A second server on another loopback port that the hub redirects file requests to,
    recording what it receives."""
    with FakeHub() as other:
        for path, data in FILES.items():
            other.add_file(REPO, path, data)
        fake.redirect_to = other.url
        yield other


def test_the_token_is_not_sent_to_a_redirect_target_on_download(fake, cdn, dest):
    fake.token = "hf_secret"
    dl.download(REPO, [remote("model.Q2_K.gguf")], dest, hub=Hub(token="hf_secret"))
    assert (dest / "model.Q2_K.gguf").read_bytes() == FILES["model.Q2_K.gguf"]
    to_hub = [s for s in fake.seen if "/resolve/" in s.path]
    to_cdn = [s for s in cdn.seen if "/resolve/" in s.path]
    assert to_hub and all(s.headers.get("authorization") == "Bearer hf_secret" for s in to_hub)
    assert to_cdn and all("authorization" not in s.headers for s in to_cdn)


def test_the_token_is_not_sent_to_a_redirect_target_on_the_header_read(fake, cdn, tiny_llama_path):
    cdn.add_file(REPO, "tiny.gguf", tiny_llama_path.read_bytes())
    fake.add_file(REPO, "tiny.gguf", tiny_llama_path.read_bytes())
    fake.token = "hf_secret"
    header = Hub(token="hf_secret").read_header(REPO, "tiny.gguf")
    assert header.file_size == tiny_llama_path.stat().st_size and header.tensors
    to_cdn = [s for s in cdn.seen if "/resolve/" in s.path]
    assert to_cdn and all("authorization" not in s.headers for s in to_cdn)
    assert to_cdn[0].headers["range"].startswith("bytes=0-")
    assert all(
        s.headers.get("authorization") == "Bearer hf_secret"
        for s in fake.seen
        if "/resolve/" in s.path
    )


def test_the_header_read_explains_a_refusal(fake):
    fake.token = "hf_secret"
    with pytest.raises(GGUFError, match=r"Not authorized to read .*model.Q2_K.gguf \(401\)"):
        Hub().read_header(REPO, "model.Q2_K.gguf")
