"""Secrets (the hub token, remote API keys): kept out of settings, logs, exports and reports.

They go to the OS keyring (`keyring`: Keychain, Windows Credential Locker, Secret Service)
when a usable backend exists; otherwise to `secrets.json` in the config folder, readable
only by the user (mode 0600 on POSIX; on Windows the profile folder's ACL protects it).
`SecretStore.where()` says which, for the UI. `redact` scrubs text before it is written
anywhere a secret must never appear.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SERVICE = "Parlor"
SECRETS_FILE = "secrets.json"
HUB_TOKEN = "hub_token"
MASK = "[REDACTED]"

# Shapes of secrets we may never have seen (pasted into a prompt, echoed by a server):
# Hugging Face and OpenAI-style tokens, bearer headers, key=value pairs named like secrets.
_PATTERNS = [
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/\-]{8,}=*"),
    re.compile(
        r"(?i)(\b(?:api[_-]?key|token|password|secret|authorization)\b[\"']?\s*[:=]\s*"
        r"[\"']?)[^\s\"',;&]{6,}"
    ),
]
# A settings key ending like this holds a secret ("hub_token", "apiKey"); "max_tokens" does not.
_SECRET_KEY = re.compile(
    r"(?i)(token|api[_-]?key|password|passwd|secret|authorization"
    r"|credentials?)$"
)


class SecretsError(Exception):
    """A secret could not be stored or read; the message says where and why."""


def remote_key_name(base_url: str) -> str:
    """The secret name for a remote server's API key."""
    return f"remote_api_key:{base_url.rstrip('/')}"


def looks_secret_key(name: str) -> bool:
    """Whether a settings key's name says it holds a secret (exports drop such keys)."""
    return bool(_SECRET_KEY.search(name))


def redact(text: str, values: Iterable[str] = ()) -> str:
    """`text` with every known secret value and every secret-shaped string masked."""
    for value in sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


def usable_keyring() -> Any:
    """The keyring backend if one is installed and really usable, else None."""
    try:
        import keyring
        from keyring.backends import fail
    except Exception:  # noqa: BLE001 - not installed or broken: the file is the answer
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a backend that fails to initialise is not usable
        return None
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
        return None
    if "null" in type(backend).__module__.rsplit(".", 1)[-1]:
        return None
    return backend


class SecretStore:
    """Get and set named secrets. Keeps the values it has seen, for `redact`."""

    _UNRESOLVED = object()

    def __init__(self, config_dir: Path, backend: Any = None, use_keyring: bool = True) -> None:
        self.file = config_dir / SECRETS_FILE
        # Finding the keyring backend scans entry points (a few hundred ms): do it on first
        # use, so opening the app does not pay for it.
        self._keyring = (
            backend if backend is not None else (self._UNRESOLVED if use_keyring else None)
        )
        self._seen: set[str] = set()

    @property
    def keyring(self) -> Any:
        if self._keyring is self._UNRESOLVED:
            self._keyring = usable_keyring()
        return self._keyring

    @property
    def backend(self) -> str:
        return "keyring" if self.keyring is not None else "file"

    def where(self) -> str:
        """A sentence for the UI saying where secrets are kept."""
        if self.keyring is not None:
            return f"Secrets are kept in the system keyring ({type(self.keyring).__name__})."
        return (
            f"No system keyring is available: secrets are kept in {self.file}, "
            "readable only by you."
        )

    def get(self, name: str) -> str | None:
        try:
            value = (
                self.keyring.get_password(SERVICE, name)
                if self.keyring is not None
                else self._read_file().get(name)
            )
        except Exception as exc:  # noqa: BLE001 - keyring backends raise their own types
            raise SecretsError(
                f"Could not read the secret {name!r}: {redact(str(exc), self._seen)}"
            ) from None
        if value:
            self._seen.add(value)
        return value

    def set(self, name: str, value: str) -> None:
        if not value:
            self.delete(name)
            return
        self._seen.add(value)
        try:
            if self.keyring is not None:
                self.keyring.set_password(SERVICE, name, value)
            else:
                data = self._read_file()
                data[name] = value
                self._write_file(data)
        except SecretsError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise SecretsError(
                f"Could not store the secret {name!r}: {redact(str(exc), self._seen)}"
            ) from None

    def delete(self, name: str) -> None:
        if self.keyring is not None:
            try:
                self.keyring.delete_password(SERVICE, name)
            except Exception:  # noqa: BLE001 - deleting what is not there is fine
                pass
            return
        data = self._read_file()
        if data.pop(name, None) is not None:
            self._write_file(data)

    def known_values(self) -> builtins.set[str]:
        """Every secret value this store has read or written (for log redaction)."""
        return set(self._seen)

    def redact(self, text: str) -> str:
        return redact(text, self._seen)

    # --- the file fallback ------------------------------------------------------------
    def _read_file(self) -> dict[str, str]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise SecretsError(f"Could not read {self.file}: {type(exc).__name__}") from None
        return (
            {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
        )

    def _write_file(self, data: dict[str, str]) -> None:
        """Write atomically; mkstemp creates the file 0600 before any secret is in it."""
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".secrets-", dir=self.file.parent)
        except OSError as exc:
            raise SecretsError(f"Could not write {self.file}: {exc.strerror or exc}") from None
        try:
            os.chmod(tmp, stat.S_IRUSR | stat.S_IWUSR)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.file)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise SecretsError(f"Could not write {self.file}: {exc.strerror or exc}") from None
