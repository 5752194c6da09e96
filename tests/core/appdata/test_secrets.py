"""Secrets: the keyring when usable, else a 0600 file; redaction of known and shaped values."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from app.core.appdata.secrets import (
    HUB_TOKEN,
    MASK,
    SecretsError,
    SecretStore,
    looks_secret_key,
    redact,
    remote_key_name,
    usable_keyring,
)

TOKEN = "hf_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"


def test_file_fallback_round_trip_and_owner_only(tmp_path):
    store = SecretStore(tmp_path / "config", use_keyring=False)
    assert store.backend == "file" and "readable only by you" in store.where()
    store.set(HUB_TOKEN, TOKEN)
    store.set(remote_key_name("http://box:8080/v1/"), "sk-remote-key-123456789012")
    again = SecretStore(tmp_path / "config", use_keyring=False)
    assert again.get(HUB_TOKEN) == TOKEN
    assert again.get(remote_key_name("http://box:8080/v1")) == "sk-remote-key-123456789012"
    if sys.platform != "win32":
        mode = stat.S_IMODE(os.stat(store.file).st_mode)
        assert mode == 0o600
    assert [p.name for p in store.file.parent.iterdir()] == ["secrets.json"]  # no temp left


def test_delete_and_empty_value_remove_the_secret(tmp_path):
    store = SecretStore(tmp_path, use_keyring=False)
    store.set(HUB_TOKEN, TOKEN)
    store.set(HUB_TOKEN, "")
    assert store.get(HUB_TOKEN) is None
    store.set("x", "value-x")
    store.delete("x")
    assert json.loads(store.file.read_text()) == {}


def test_unreadable_secrets_file_is_an_error_without_its_content(tmp_path):
    (tmp_path / "secrets.json").write_text('{"hub_token": "' + TOKEN + '"')  # torn JSON
    with pytest.raises(SecretsError) as info:
        SecretStore(tmp_path, use_keyring=False).get(HUB_TOKEN)
    assert "secrets.json" in str(info.value) and TOKEN not in str(info.value)


def test_keyring_backend_is_used_when_usable(tmp_path):
    keyring = pytest.importorskip("keyring")
    from keyring.backend import KeyringBackend

    class MemoryKeyring(KeyringBackend):
        """A real keyring backend (the package's own base class) that keeps to memory."""

        priority = 1

        def __init__(self):
            super().__init__()
            self.items = {}

        def get_password(self, service, username):
            return self.items.get((service, username))

        def set_password(self, service, username, password):
            self.items[(service, username)] = password

        def delete_password(self, service, username):
            self.items.pop((service, username))

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        assert usable_keyring() is backend
        store = SecretStore(tmp_path)
        store.set(HUB_TOKEN, TOKEN)
        assert store.backend == "keyring" and "keyring" in store.where()
        assert backend.items == {("Parlor", HUB_TOKEN): TOKEN}
        assert not store.file.exists()  # nothing written to disk by us
        store.delete(HUB_TOKEN)
        assert store.get(HUB_TOKEN) is None
    finally:
        keyring.set_keyring(previous)


def test_a_failing_keyring_means_the_file():
    keyring = pytest.importorskip("keyring")
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert usable_keyring() is None
    finally:
        keyring.set_keyring(previous)


def test_redact_masks_known_values_and_secret_shapes():
    text = (
        f"token {TOKEN} Authorization: Bearer abcdefghijkl12345 "
        "api_key=sk-proj-ABCDEFGHIJKLMNOPQRST password: hunter2hunter2 mine=plainsecret1"
    )
    out = redact(text, ["plainsecret1"])
    for secret in (
        TOKEN,
        "abcdefghijkl12345",
        "sk-proj-ABCDEFGHIJKLMNOPQRST",
        "hunter2hunter2",
        "plainsecret1",
    ):
        assert secret not in out
    assert out.count(MASK) >= 5 and "Authorization" in out
    assert redact("an ordinary sentence about tokens", []) == "an ordinary sentence about tokens"


def test_secret_store_remembers_values_for_redaction(tmp_path):
    store = SecretStore(tmp_path, use_keyring=False)
    store.set("remote", "plain-looking-value")
    assert store.redact("echo plain-looking-value") == f"echo {MASK}"


@pytest.mark.parametrize(
    "name,secret",
    [
        ("hub_token", True),
        ("openai_api_key", True),
        ("apiKey", True),
        ("model_path", False),
        ("max_tokens", False),
        ("temperature", False),
    ],
)
def test_secret_key_names(name, secret):
    assert looks_secret_key(name) is secret
