"""PNG chunks, read and written by hand: every chunk is seen, wherever it sits in the file.

Image libraries show only the text chunks before the image data; cards are found after it too.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from app.core.cards.errors import CardError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_KEYWORDS = ("chara", "ccv3")
TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")
MAX_TEXT_CHUNK = 50_000_000  # bytes, stored or decompressed
# All compressed card chunks of one file together: a 2 MB PNG of many zTXt chunks, each
# inflating to the per-chunk limit, took 58 s and 2 GB before this budget.
MAX_INFLATED_TOTAL = 100_000_000
# A 300 MB image split into the usual 8 KB IDAT chunks has about 37,000; a file of millions
# of empty chunks would cost gigabytes of Chunk objects and many seconds to walk.
MAX_CHUNKS = 100_000


@dataclass(frozen=True)
class Chunk:
    type: bytes
    start: int  # offset of the length field in `file`
    end: int  # offset just past the CRC
    file: bytes

    @property
    def data(self) -> memoryview:
        return memoryview(self.file)[self.start + 8 : self.end - 4]

    @property
    def raw(self) -> bytes:
        """The chunk as stored, length and CRC included."""
        return self.file[self.start : self.end]

    def crc_ok(self) -> bool:
        crc = zlib.crc32(self.file[self.start + 4 : self.end - 4]) & 0xFFFFFFFF
        return crc == int.from_bytes(self.file[self.end - 4 : self.end], "big")


@dataclass(frozen=True)
class TextPayload:
    """A card text chunk: its keyword, chunk type, position, and bytes (or why it failed)."""

    keyword: str
    chunk_type: str
    index: int
    payload: bytes | None
    error: str | None = None
    crc_ok: bool = True


def sniff_image(data: bytes) -> str | None:
    """'png', 'jpeg', 'webp' or 'gif' from the first bytes, else None."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def read_chunks(data: bytes, source: str) -> list[Chunk]:
    """Every chunk up to IEND. CardError for a file that is not a whole PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise CardError(source, _not_png(data))
    view = memoryview(data)
    chunks: list[Chunk] = []
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise CardError(source, "the PNG is truncated: it ends before its IEND chunk")
        length, ctype = struct.unpack(">I4s", view[pos : pos + 8])
        if not ctype.isalpha() or not ctype.isascii():
            raise CardError(source, f"the PNG is corrupt: bad chunk type at byte {pos}")
        name = ctype.decode("ascii")
        if ctype in TEXT_TYPES and length > MAX_TEXT_CHUNK:
            raise CardError(
                source,
                f"a {name} text chunk of {length / 1e6:.1f} MB is over the "
                f"{MAX_TEXT_CHUNK // 1_000_000} MB limit",
            )
        end = pos + 12 + length
        if end > len(data):
            raise CardError(
                source,
                f"the PNG is truncated: its {name} chunk at byte {pos} needs "
                f"{length} bytes, only {max(len(data) - pos - 12, 0)} remain",
            )
        chunks.append(Chunk(ctype, pos, end, data))
        if len(chunks) > MAX_CHUNKS:
            raise CardError(
                source, f"the PNG holds more than {MAX_CHUNKS:,} chunks; no image needs that many"
            )
        pos = end
        if ctype == b"IEND":
            break
    if chunks[0].type != b"IHDR":
        raise CardError(source, "the PNG is corrupt: it does not start with an IHDR chunk")
    return chunks


def _not_png(data: bytes) -> str:
    if not data:
        return "the file is empty"
    found = sniff_image(data)
    if found:
        return f"this is a {found.upper()} image, not a PNG; only PNG cards carry card data"
    return "not a PNG file"


def image_size(png: bytes) -> tuple[int, int] | None:
    if len(png) >= 24 and png.startswith(PNG_SIGNATURE) and png[12:16] == b"IHDR":
        return struct.unpack(">II", png[16:24])
    return None


def chunk_keyword(chunk: Chunk) -> str | None:
    """The keyword of a text chunk (lowercased), or None for other chunks."""
    if chunk.type not in TEXT_TYPES:
        return None
    head = bytes(chunk.data[:80])
    keyword, sep, _ = head.partition(b"\0")
    return keyword.decode("latin-1").lower() if sep else None


def card_payloads(chunks: list[Chunk]) -> list[TextPayload]:
    """The `chara`/`ccv3` text chunks in file order, decompressed; failures carry a reason.

    Decompression shares one budget across the file (MAX_INFLATED_TOTAL); chunks past it
    are reported as not read."""
    found = []
    budget = _Budget(MAX_INFLATED_TOTAL)
    for index, chunk in enumerate(chunks):
        keyword = chunk_keyword(chunk)
        if keyword in CARD_KEYWORDS:
            name = chunk.type.decode("ascii")
            try:
                found.append(
                    TextPayload(
                        keyword, name, index, _text_of(chunk, budget), crc_ok=chunk.crc_ok()
                    )
                )
            except _ChunkError as exc:
                found.append(TextPayload(keyword, name, index, None, str(exc)))
    return found


class _Budget:
    def __init__(self, total: int) -> None:
        self.left = total

    def limit(self) -> int:
        """How much the next chunk may inflate to."""
        if self.left <= 0:
            raise _ChunkError(
                f"was not read: the card's compressed chunks together inflate "
                f"to more than {MAX_INFLATED_TOTAL // 1_000_000} MB"
            )
        return min(MAX_TEXT_CHUNK, self.left)


class _ChunkError(Exception):
    pass


def _text_of(chunk: Chunk, budget: _Budget | None = None) -> bytes:
    """The text of a tEXt/zTXt/iTXt chunk as bytes (Latin-1 for tEXt/zTXt, UTF-8 for iTXt)."""
    body = bytes(chunk.data).partition(b"\0")[2]
    budget = budget or _Budget(MAX_TEXT_CHUNK)
    if chunk.type == b"tEXt":
        return body
    if chunk.type == b"zTXt":
        if not body or body[0] != 0:
            raise _ChunkError("uses an unknown compression method")
        return _inflate(body[1:], budget)
    if len(body) < 2:
        raise _ChunkError("is cut short")
    flag, method, rest = body[0], body[1], body[2:]
    _language, sep1, rest = rest.partition(b"\0")
    _translated, sep2, text = rest.partition(b"\0")
    if not (sep1 and sep2):
        raise _ChunkError("is malformed")
    if flag == 0:
        return text
    if method != 0:
        raise _ChunkError("uses an unknown compression method")
    return _inflate(text, budget)


def _inflate(data: bytes, budget: _Budget) -> bytes:
    limit = budget.limit()
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            budget.left -= len(out)
            if limit < MAX_TEXT_CHUNK:
                raise _ChunkError(
                    f"was not read: the card's compressed chunks together "
                    f"inflate to more than {MAX_INFLATED_TOTAL // 1_000_000} MB"
                )
            raise _ChunkError(f"decompresses to more than {MAX_TEXT_CHUNK // 1_000_000} MB")
        out += inflater.flush()
        budget.left -= len(out)
    except zlib.error as exc:
        raise _ChunkError(f"does not decompress ({exc})") from None
    if not inflater.eof:
        raise _ChunkError("holds compressed data that is cut short")
    return out


# --- writing -----------------------------------------------------------------------------------


def make_chunk(ctype: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(ctype + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", crc)


def text_chunk(keyword: str, text: bytes) -> bytes:
    return make_chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text)


def replace_card_chunks(png: bytes, new_chunks: list[bytes], source: str) -> bytes:
    """The PNG with every chara/ccv3 text chunk removed and `new_chunks` put before IEND."""
    chunks = read_chunks(png, source)
    kept = [c.raw for c in chunks if chunk_keyword(c) not in CARD_KEYWORDS]
    return PNG_SIGNATURE + b"".join(kept[:-1]) + b"".join(new_chunks) + kept[-1]


def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain RGB PNG of one colour."""
    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + make_chunk(b"IHDR", header)
        + make_chunk(b"IDAT", zlib.compress(row * height, 9))
        + make_chunk(b"IEND", b"")
    )
