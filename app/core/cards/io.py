"""Cards in and out of files: PNG, JSON and CharX, chosen by content on the way in and by
extension on the way out. Every failure is a CardError naming the file."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from app.core.cards import charx, png
from app.core.cards.errors import CardError, guarded
from app.core.cards.jsonutil import dump_json, parse_json_bytes
from app.core.cards.lorebook import lorebook_from_json, lorebook_to_json, lorebook_to_world_info
from app.core.cards.model import Card, card_from_json, to_v2_json, to_v3_json
from app.core.cards.surrogates import scrub_in_place

MAX_FILE_BYTES = 300_000_000
AVATAR_SIZE = 256
FORMATS = (".png", ".json", ".charx")
_SUFFIXES = {"png": (".png",), "jpeg": (".jpg", ".jpeg"), "webp": (".webp",), "gif": (".gif",)}
_PALETTE = (
    (94, 129, 172),
    (163, 190, 140),
    (208, 135, 112),
    (180, 142, 173),
    (136, 192, 208),
    (235, 203, 139),
    (191, 97, 106),
    (143, 188, 187),
)


# --- reading -----------------------------------------------------------------------------------


def load_card(path: str | os.PathLike[str]) -> Card:
    """A card from a PNG, JSON or CharX file. Raises CardError (and nothing else)."""
    return card_from_bytes(_read_file(path), str(path))


def card_from_bytes(data: bytes, filename: str) -> Card:
    """A card from a file's bytes; `filename` names it in messages and hints at its format."""
    card = guarded(str(filename), lambda: _card_from_bytes(bytes(data), str(filename)))
    replaced = scrub_in_place(card.data) + scrub_in_place(card.extra)
    if replaced:
        card.warnings.append(
            f"{replaced} broken character(s) (lone UTF-16 surrogates) were "
            "replaced with \N{REPLACEMENT CHARACTER}"
        )
    return card


def _read_file(path: str | os.PathLike[str]) -> bytes:
    target = Path(path)
    try:
        if target.is_dir():
            raise CardError(str(path), "is a folder, not a file")
        size = target.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CardError(
                str(path),
                f"the file is {size / 1e6:.0f} MB, over the {MAX_FILE_BYTES // 1_000_000} MB limit",
            )
        return target.read_bytes()
    except FileNotFoundError:
        raise CardError(str(path), "no such file") from None
    except OSError as exc:
        raise CardError(str(path), f"could not be read ({exc.strerror or exc})") from None


def _card_from_bytes(data: bytes, filename: str) -> Card:
    if not data:
        raise CardError(filename, "the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise CardError(filename, f"the file is over the {MAX_FILE_BYTES // 1_000_000} MB limit")
    suffix = Path(filename).suffix.lower()
    if data.startswith(png.PNG_SIGNATURE):
        return _from_png(data, filename)
    if data.startswith(charx.ZIP_SIGNATURES):
        return _from_charx(data, filename)
    image = png.sniff_image(data)
    if image:
        raise CardError(
            filename,
            f"this is a {image.upper()} image; Parlor reads cards from PNG, JSON and CharX files",
        )
    if suffix == ".png":
        raise CardError(filename, "not a PNG file")
    if suffix == ".charx":
        raise CardError(filename, "not a valid CharX file: it is not a zip archive")
    if suffix != ".json" and not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        raise CardError(filename, "not a character card: expected a PNG, JSON or CharX file")
    return card_from_json(parse_json_bytes(data, filename, "the file"), filename)


def _from_png(data: bytes, filename: str) -> Card:
    chunks = png.read_chunks(data, filename)
    payloads = png.card_payloads(chunks)
    if not payloads:
        raise CardError(
            filename, "this PNG has no character card in it (no 'chara' or 'ccv3' text chunk)"
        )
    warnings: list[str] = []
    failures: list[str] = []
    for keyword in ("ccv3", "chara"):
        group = sorted(
            (p for p in payloads if p.keyword == keyword),
            key=lambda p: (p.chunk_type != "tEXt", p.index),
        )
        if len({p.payload for p in group}) > 1:
            warnings.append(
                f"the PNG holds {len(group)} '{keyword}' chunks with different "
                "content; the first one that reads was used"
            )
        for payload in group:
            try:
                obj = _decode_payload(payload, filename, warnings)
                card = card_from_json(obj, filename)
            except CardError as exc:
                reason = exc.reason
                failures.append(
                    reason if reason.startswith("the '") else f"in the '{keyword}' chunk, {reason}"
                )
                continue
            if failures:
                warnings.append(f"{'; '.join(failures)}; used the '{keyword}' chunk instead")
            if not payload.crc_ok:
                warnings.append(f"the '{keyword}' chunk's checksum is wrong; read it anyway")
            card.warnings[:0] = warnings
            card.avatar = png.replace_card_chunks(data, [], filename)
            return card
    raise CardError(filename, "; ".join(failures))


def _decode_payload(payload: png.TextPayload, filename: str, warnings: list[str]) -> Any:
    """base64 of UTF-8 JSON (plain JSON tolerated) to Python objects."""
    what = f"the '{payload.keyword}' chunk"
    if payload.payload is None:
        raise CardError(filename, f"{what} ({payload.chunk_type}) {payload.error}")
    raw = payload.payload.strip()
    if raw.startswith(b"{"):
        warnings.append(f"{what} holds plain JSON, not base64")
        return parse_json_bytes(raw, filename, what)
    text = re.sub(rb"\s+", b"", raw).translate(bytes.maketrans(b"-_", b"+/"))
    text += b"=" * (-len(text) % 4)
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CardError(filename, f"{what} is not valid base64") from None
    return parse_json_bytes(decoded, filename, f"{what}'s decoded text")


def _from_charx(data: bytes, filename: str) -> Card:
    obj, files = charx.read_charx(data, filename)
    card = card_from_json(obj, filename)
    path = charx.main_icon(card.data, files, card.warnings)
    if path is not None:
        avatar = files.pop(path)
        if png.sniff_image(avatar) is None:
            raise CardError(
                filename, f"its main icon {path!r} is not an image (PNG, JPEG, WebP or GIF)"
            )
        if avatar.startswith(png.PNG_SIGNATURE):
            try:
                png.read_chunks(avatar, filename)
            except CardError as exc:
                raise CardError(
                    filename, f"its main icon {path!r} is a broken PNG ({exc.reason})"
                ) from None
        card.avatar, card.avatar_path = avatar, path
    card.embedded = files
    return card


# --- writing -----------------------------------------------------------------------------------


def card_to_json_bytes(card: Card, *, v2: bool = False) -> bytes:
    obj = to_v2_json(card) if v2 else to_v3_json(card)
    return dump_json(obj, indent=2) + b"\n"


def card_to_png_bytes(card: Card, image_png: bytes) -> bytes:
    """`image_png` carrying the card: `chara` (V2) then `ccv3` (V3) before IEND, old ones gone."""
    if bytes(image_png[:8]) != png.PNG_SIGNATURE:
        raise CardError("", "the avatar image is not a PNG image")
    chunks = []
    for keyword, obj in (("chara", to_v2_json(card)), ("ccv3", to_v3_json(card))):
        _icon_is_the_png(card, obj["data"])
        chunks.append(png.text_chunk(keyword, base64.b64encode(dump_json(obj))))
    return png.replace_card_chunks(bytes(image_png), chunks, "the avatar image")


def _icon_is_the_png(card: Card, data: dict[str, Any]) -> None:
    """A CharX main icon becomes `ccdefault:`, which in a PNG card means the PNG itself."""
    if not card.avatar_path or not isinstance(data.get("assets"), list):
        return
    for asset in data["assets"]:
        if isinstance(asset, dict) and asset.get("uri") == f"embeded://{card.avatar_path}":
            asset["uri"] = "ccdefault:"
            asset["ext"] = "png"


def card_to_charx_bytes(card: Card, avatar: bytes | None = None) -> bytes:
    obj = to_v3_json(card)
    files = dict(card.embedded)
    image = avatar if avatar is not None else card.avatar
    if image:
        ext = png.sniff_image(image)
        if ext is None:
            raise CardError("", "the avatar image is not an image (PNG, JPEG, WebP or GIF)")
        path = card.avatar_path
        if not path or not path.lower().endswith(_SUFFIXES[ext]):
            path = f"assets/icon/images/main.{ext}"
        files[path] = image
        charx.point_main_icon(obj["data"], path, ext)
    return charx.write_charx(obj, files)


def placeholder_png(card: Card) -> bytes:
    """A plain square in a colour picked from the name, for cards without an image."""
    digest = hashlib.sha256(card.name.encode("utf-8", "surrogatepass")).digest()
    return png.solid_png(AVATAR_SIZE, AVATAR_SIZE, _PALETTE[digest[0] % len(_PALETTE)])


def save_card(
    card: Card, path: str | os.PathLike[str], *, avatar_png: bytes | None = None, v2: bool = False
) -> list[str]:
    """Write the card in the format `path`'s extension names (.png, .json, .charx).

    `avatar_png` replaces the image; `v2` writes V2 JSON instead of V3. Returns warnings about
    what the format could not carry (the image in JSON, CharX assets in PNG).
    """
    target = str(path)
    suffix = Path(target).suffix.lower()
    if suffix not in FORMATS:
        raise CardError(
            target, f"unknown card format {suffix or '(no extension)'!r}: use .png, .json or .charx"
        )
    if avatar_png is not None and bytes(avatar_png[:8]) != png.PNG_SIGNATURE:
        raise CardError(target, "the avatar image is not a PNG image")
    warnings: list[str] = []
    try:
        if suffix == ".png":
            content = card_to_png_bytes(card, _png_image(card, avatar_png, warnings))
        elif suffix == ".json":
            content = card_to_json_bytes(card, v2=v2)
            if card.avatar or avatar_png:
                warnings.append("JSON cards carry no image; the avatar was not saved")
        else:
            content = card_to_charx_bytes(card, avatar_png)
    except CardError as exc:
        raise CardError(
            target, f"{exc.filename}: {exc.reason}" if exc.filename else exc.reason
        ) from None
    if card.embedded and suffix != ".charx":
        warnings.append(
            f"{len(card.embedded)} embedded CharX file(s) (backgrounds, emotions, "
            f"...) are not carried by {suffix} files"
        )
    _write_atomic(Path(target), content)
    return warnings


def _png_image(card: Card, avatar_png: bytes | None, warnings: list[str]) -> bytes:
    if avatar_png is not None:
        return avatar_png
    if card.avatar and card.avatar.startswith(png.PNG_SIGNATURE):
        return card.avatar
    if card.avatar:
        kind = (png.sniff_image(card.avatar) or "unknown").upper()
        warnings.append(
            f"the avatar is a {kind} image and a PNG card needs a PNG; a plain "
            "image was used instead"
        )
    return placeholder_png(card)


def _write_atomic(target: Path, content: bytes) -> None:
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(content)
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise CardError(str(target), f"could not be written ({exc.strerror or exc})") from None


# --- standalone lorebooks ---------------------------------------------------------------------


def lorebook_from_bytes(data: bytes, filename: str) -> dict[str, Any]:
    """A lorebook file (V3 lorebook, world info, or a card's character_book) as a V3 book."""

    def read() -> dict[str, Any]:
        if bytes(data[:8]) == png.PNG_SIGNATURE or bytes(data[:4]) in charx.ZIP_SIGNATURES:
            book = card_from_bytes(data, filename).character_book
            if book is None:
                raise CardError(filename, "this character card has no lorebook")
            return book
        return lorebook_from_json(
            parse_json_bytes(bytes(data), filename, "the file"),
            name=Path(filename).stem,
            source=filename,
        )

    return guarded(str(filename), read)


def load_lorebook(path: str | os.PathLike[str]) -> dict[str, Any]:
    return lorebook_from_bytes(_read_file(path), str(path))


def save_lorebook(
    book: dict[str, Any], path: str | os.PathLike[str], *, world_info: bool = True
) -> None:
    """Write a book as SillyTavern world info (default) or as a V3 `lorebook_v3` file."""
    obj = lorebook_to_world_info(book) if world_info else lorebook_to_json(book)
    _write_atomic(Path(path), dump_json(obj, indent=2) + b"\n")
