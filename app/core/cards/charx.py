"""CharX: a zip holding `card.json` (V3) and the card's assets.

Zips are read defensively: names that climb out of the archive (`../`, absolute paths) and
archives that inflate past the caps are refused before anything is extracted, and every entry
is read with its size counted, so a lying header cannot get past the caps either.
"""

from __future__ import annotations

import io
import lzma
import re
import zipfile
import zlib
from typing import Any

from app.core.cards.errors import CardError
from app.core.cards.jsonutil import dump_json, parse_json_bytes
from app.core.cards.png import sniff_image

CARD_JSON = "card.json"
MAX_ENTRIES = 10_000
MAX_TOTAL = 256 * 1024 * 1024  # uncompressed bytes, all entries together
MAX_CARD_JSON = 50_000_000
MAX_RATIO = 200  # uncompressed/compressed, for entries over 1 MB
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    OSError,
    ValueError,
)


def read_charx(data: bytes, source: str) -> tuple[Any, dict[str, bytes]]:
    """The parsed card.json and every other file in the archive, by path."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _READ_ERRORS as exc:
        raise CardError(
            source, f"not a valid CharX file: the zip cannot be opened ({exc})"
        ) from None
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        _check_entries(infos, source)
        files: dict[str, bytes] = {}
        total = 0
        for info in infos:
            files[info.filename] = _read_entry(archive, info, source, MAX_TOTAL - total)
            total += len(files[info.filename])
    if CARD_JSON not in files:
        raise CardError(source, "this CharX has no card.json at the root of the zip")
    card = parse_json_bytes(files.pop(CARD_JSON), source, "its card.json")
    return card, files


def unsafe_name(name: str) -> bool:
    """True for names that would land outside a folder they were extracted to."""
    path = name.replace("\\", "/")
    if path.startswith("/") or re.match(r"[A-Za-z]:", path) or "\0" in path:
        return True
    return ".." in path.split("/")


def _check_entries(infos: list[zipfile.ZipInfo], source: str) -> None:
    if len(infos) > MAX_ENTRIES:
        raise CardError(
            source, f"the CharX holds {len(infos)} files, over the limit of {MAX_ENTRIES}"
        )
    seen: set[str] = set()
    declared = 0
    for info in infos:
        name = info.filename
        if unsafe_name(name):
            raise CardError(
                source,
                f"the CharX entry {name!r} has an unsafe path "
                "(absolute or with '..'); the file was not imported",
            )
        if name in seen:
            raise CardError(source, f"the CharX holds {name!r} twice")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise CardError(source, f"the CharX entry {name!r} is encrypted")
        if name == CARD_JSON and info.file_size > MAX_CARD_JSON:
            raise CardError(
                source,
                f"its card.json is {info.file_size / 1e6:.0f} MB, over the "
                f"{MAX_CARD_JSON // 1_000_000} MB limit",
            )
        if info.file_size > 1_000_000 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise CardError(
                source,
                f"the CharX entry {name!r} would inflate "
                f"{info.file_size // max(info.compress_size, 1)} times "
                "(a zip bomb?); the file was not imported",
            )
        declared += info.file_size
    if declared > MAX_TOTAL:
        raise CardError(
            source,
            f"the CharX would unpack to {declared / 1e6:.0f} MB, over the "
            f"{MAX_TOTAL // 1_000_000} MB limit (a zip bomb?)",
        )


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, budget: int) -> bytes:
    pieces: list[bytes] = []
    got = 0
    try:
        with archive.open(info) as handle:
            while piece := handle.read(1 << 20):
                got += len(piece)
                if got > info.file_size or got > budget:
                    raise CardError(
                        source,
                        f"the CharX entry {info.filename!r} unpacks to more "
                        "than it declares (a zip bomb?)",
                    )
                pieces.append(piece)
    except _READ_ERRORS as exc:
        raise CardError(source, f"the CharX entry {info.filename!r} is corrupt ({exc})") from None
    if got != info.file_size:
        raise CardError(source, f"the CharX entry {info.filename!r} is shorter than it declares")
    return b"".join(pieces)


def main_icon(data: dict[str, Any], files: dict[str, bytes], warnings: list[str]) -> str | None:
    """The archive path of the card's main icon, per its `assets` (else under assets/icon/)."""
    assets = data.get("assets")
    icons = (
        [a for a in assets if isinstance(a, dict) and a.get("type") == "icon"]
        if isinstance(assets, list)
        else []
    )
    main = next((a for a in icons if a.get("name") == "main"), icons[0] if icons else None)
    uri = main.get("uri") if main else None
    if isinstance(uri, str) and "://" in uri and uri.split("://", 1)[0] in ("embeded", "embedded"):
        path = uri.split("://", 1)[1]
        if path in files:
            return path
        warnings.append(f"the main icon {path!r} is not in the CharX")
    for path in sorted(files):
        if path.startswith("assets/icon/") and sniff_image(files[path]):
            return path
    return None


def point_main_icon(data: dict[str, Any], path: str, ext: str) -> None:
    """Make the card's `assets` name `path` as its main icon (for writing a CharX)."""
    uri = f"embeded://{path}"
    assets = data.get("assets")
    if not isinstance(assets, list):
        data["assets"] = [{"type": "icon", "uri": uri, "name": "main", "ext": ext}]
        return
    icons = [a for a in assets if isinstance(a, dict) and a.get("type") == "icon"]
    main = next((a for a in icons if a.get("name") == "main"), icons[0] if icons else None)
    if main is None:
        assets.insert(0, {"type": "icon", "uri": uri, "name": "main", "ext": ext})
    elif main.get("uri") != uri:
        main["uri"] = uri
        main["ext"] = ext


def write_charx(card_json: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """A CharX zip: card.json first, then the files (images stored, the rest deflated)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, CARD_JSON, dump_json(card_json, indent=2), zipfile.ZIP_DEFLATED)
        for path, content in files.items():
            if path != CARD_JSON:
                method = zipfile.ZIP_STORED if sniff_image(content) else zipfile.ZIP_DEFLATED
                _add(archive, path, content, method)
    return buffer.getvalue()


def _add(archive: zipfile.ZipFile, path: str, content: bytes, method: int) -> None:
    info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = method
    info.external_attr = 0o644 << 16
    archive.writestr(info, content)
