"""The rotating log file, its redaction of secrets, and the diagnostics text."""

from __future__ import annotations

import errno
import logging

import pytest

from app.core.appdata import logs
from app.core.appdata.machine import Gpu, machine_from_sizes
from app.core.appdata.secrets import MASK, SecretStore

TOKEN = "hf_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp"


@pytest.fixture
def log_setup(tmp_path):
    secrets = SecretStore(tmp_path / "config", use_keyring=False)
    handler = logs.setup_logging(tmp_path / "logs", secrets.known_values)
    yield tmp_path / "logs", secrets, handler
    logging.getLogger().removeHandler(handler)
    handler.close()


def test_records_reach_the_file_with_secrets_masked(log_setup):
    folder, secrets, handler = log_setup
    secrets.set("remote_api_key:http://x", "my-plain-remote-key")
    log = logging.getLogger("app.test")
    log.warning("hub said no for %s", TOKEN)
    log.info("using key my-plain-remote-key for http://x")
    try:
        raise RuntimeError(f"401 for Authorization: Bearer {TOKEN}")
    except RuntimeError:
        log.exception("download failed")
    handler.flush()
    text = (folder / logs.LOG_FILE).read_text()
    assert "hub said no for" in text and "download failed" in text and "RuntimeError" in text
    assert TOKEN not in text and "my-plain-remote-key" not in text
    assert text.count(MASK) >= 3


def test_second_setup_replaces_the_handler(log_setup, tmp_path):
    folder, _, first = log_setup
    second = logs.setup_logging(folder)
    try:
        names = [h for h in logging.getLogger().handlers if h.get_name() == "parlor-file"]
        assert names == [second]
    finally:
        logging.getLogger().removeHandler(second)
        second.close()


def test_the_file_rotates(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "MAX_BYTES", 2000)
    handler = logs.setup_logging(tmp_path)
    try:
        for i in range(200):
            logging.getLogger("app.rotate").warning("line %d %s", i, "x" * 50)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    rotated = sorted(p.name for p in tmp_path.iterdir())
    assert rotated[:3] == ["parlor.log", "parlor.log.1", "parlor.log.2"]
    assert len(rotated) == logs.BACKUPS + 1
    assert logs.last_lines(tmp_path, 1)[0].endswith("line 199 " + "x" * 50)


def test_diagnostics_lists_the_machine_and_the_log_end_without_secrets(log_setup):
    folder, secrets, handler = log_setup
    secrets.set("hub_token", TOKEN)
    logging.getLogger("app.test").error("a line that says %s", "the-last-thing")
    logging.getLogger("app.test").error("leaked %s", TOKEN)
    handler.flush()
    machine = machine_from_sizes(16, 0)
    machine = type(machine)(
        ram_total=machine.ram_total,
        ram_available=None,
        gpus=(Gpu("Test GPU 9000", 8 << 30, 4 << 30, "nvidia", "nvml"),),
        unified_memory=False,
        problems=(),
    )
    text = logs.diagnostics(folder, secrets.known_values(), machine=machine)
    assert text.startswith("Parlor ")
    for part in (
        "OS: ",
        "CPU: ",
        "16.0 GB RAM",
        "Test GPU 9000",
        "llama-cpp-python",
        "the-last-thing",
    ):
        assert part in text
    assert TOKEN not in text


def test_diagnostics_without_a_log_file(tmp_path):
    text = logs.diagnostics(tmp_path / "nowhere", machine=machine_from_sizes(8))
    assert "Last 40 log lines:" in text and text.rstrip().endswith("Last 40 log lines:")


@pytest.mark.parametrize(
    "code,words",
    [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"), (errno.EACCES, "may not write")],
)
def test_write_error_message_names_the_cause_and_file(code, words):
    exc = OSError(code, "raw", "/some/settings.json")
    text = logs.write_error_message(exc, "the settings")
    assert words in text and "settings.json" in text and "unchanged" in text
