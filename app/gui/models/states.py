"""Where the download and conversion dialogs are, as enums (C18: typed values, not words)."""

from __future__ import annotations

from app.core.appdata.text_enum import TextEnum


class DownloadState(TextEnum):
    IDLE = "idle"
    DOWNLOADING = "downloading"
    CONVERTING = "converting"  # the download is in; the old MoE layout is being merged
    READY = "ready"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def busy(self) -> bool:
        return self in (DownloadState.DOWNLOADING, DownloadState.CONVERTING)


class ConversionState(TextEnum):
    ASKING = "asking"
    CONVERTING = "converting"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"
