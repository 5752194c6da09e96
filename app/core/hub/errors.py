"""The one kind of error the hub code raises, and the translation of huggingface_hub's and
httpx's many failures into it: every message says what happened and what to do next."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx2
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

if TYPE_CHECKING:
    from app.core.hub.remote import Hub

# Where a person changes the hub: the window's setting (the CLI also takes --endpoint).
HUB_SETTING = "Settings → Data → Model hub address"
LOGIN = "log in with `hf auth login` or set HF_TOKEN"


class DownloadError(Exception):
    """Something a person can read and act on; the message says what happened and what next."""


class DownloadCancelled(DownloadError):
    pass


class ChecksumMismatch(DownloadError):
    pass


class AlreadyDownloading(DownloadError):
    """Another window or command holds the `.part` of this file."""


def unreachable(base_url: str, reason: object) -> DownloadError:
    return DownloadError(
        f"Cannot reach {base_url} ({reason}). Check the connection, or set "
        f"a mirror in {HUB_SETTING}."
    )


@contextlib.contextmanager
def hub_errors(hub: Hub, repo_id: str, path: str | None = None) -> Iterator[None]:
    """Turn the many ways a hub call fails into one DownloadError a person can act on."""
    what = f"{repo_id}/{path}" if path else repo_id
    try:
        yield
    except DownloadError:
        raise
    except OfflineModeIsEnabled as exc:
        raise DownloadError(
            "Offline mode is on (HF_HUB_OFFLINE is set), so the hub cannot "
            f"be reached; unset it, or set a local mirror in {HUB_SETTING}."
        ) from exc
    except GatedRepoError as exc:
        raise DownloadError(
            f"{repo_id} is gated: accept its terms at {hub.base_url}/{repo_id}, then {LOGIN}."
        ) from exc
    except RemoteEntryNotFoundError as exc:
        raise DownloadError(f"{what} was not found on the hub.") from exc
    except RevisionNotFoundError as exc:
        raise DownloadError(f"{repo_id} has no revision {hub.revision!r}.") from exc
    except RepositoryNotFoundError as exc:
        raise DownloadError(
            f"Repository {repo_id} was not found on {hub.base_url}. "
            f"If it is private or gated, {LOGIN}."
        ) from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        raise DownloadError(explain_status(status, what, hub, exc)) from exc
    except HFValidationError as exc:
        raise DownloadError(f"Not a valid repository id: {repo_id!r}.") from exc
    except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.ProxyError) as exc:
        raise unreachable(hub.base_url, exc) from exc
    except httpx2.TransportError as exc:
        raise DownloadError(f"The connection to {hub.base_url} failed: {exc}.") from exc


def explain_status(status: int | None, what: str, hub: Hub, exc: object = "") -> str:
    if status == 401:
        return f"Not authorized to read {what} (401): it may be private or gated; {LOGIN}."
    if status == 403:
        return f"Access to {what} is forbidden (403): accept its terms on the hub, then {LOGIN}."
    if status == 404:
        return f"{what} was not found on {hub.base_url} (404)."
    if status == 429:
        return "The hub is rate-limiting requests (429); wait a little and try again."
    if status is not None and status >= 500:
        return f"The hub had an error ({status}); try again later."
    return f"The hub refused the request for {what}: {exc}"
