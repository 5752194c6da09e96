"""Reading a SillyTavern `.jsonl` chat into checked lines, collecting every problem.

Nothing is imported here: the caller sees all malformed lines (with their numbers) before
deciding whether to import the rest.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.cards.surrogates import scrub
from app.core.chat_io.errors import ChatIOError, LineProblem

MAX_FILE_BYTES = 512 * 1024 * 1024
_META_KEYS = ("chat_metadata", "user_name", "character_name", "create_date")


@dataclass
class StLine:
    """One message line, normalized: `swipes` is never empty and `swipes[swipe_id]` is the
    text shown (`mes` wins over a disagreeing swipe, as SillyTavern shows `mes`)."""

    line: int
    row: dict[str, Any]
    role: str
    swipes: list[str]
    swipe_id: int


@dataclass
class StFile:
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)
    messages: list[StLine] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_st_file(path: str | Path) -> StFile:
    """Read and check every line; raises ChatIOError only if the file cannot be read."""
    try:
        size = Path(path).stat().st_size  # before reading: a 6 GB file must not be loaded
        if size > MAX_FILE_BYTES:
            raise ChatIOError(f"{path}: {size // 1_000_000} MB is too large for a chat")
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ChatIOError(f"{path}: could not be read ({exc.strerror or exc})") from None
    return parse_st_bytes(data, str(path))


def parse_st_bytes(data: bytes, source: str = "chat") -> StFile:
    out = StFile(source)
    first = True
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        row = _decode(raw, number, out)
        if row is None:
            first = False
            continue
        if first and "mes" not in row and any(k in row for k in _META_KEYS):
            out.metadata = row
        else:
            if first:
                out.warnings.append(f"{source}: no metadata line; line {number} is a message")
            _add_message(row, number, out)
        first = False
    return out


def _decode(raw: bytes, number: int, out: StFile) -> dict[str, Any] | None:
    # As SillyTavern's JSON.parse: NaN and Infinity are not JSON; a number too large for a
    # double (1e999) is Infinity there, which its JSON.stringify saves as null: so None here.
    try:
        row = json.loads(
            raw.decode("utf-8-sig" if number == 1 else "utf-8"),
            parse_constant=_not_json,
            parse_float=_finite_or_none,
        )
    except UnicodeDecodeError:
        out.problems.append(LineProblem(number, "not UTF-8 text"))
        return None
    except json.JSONDecodeError as exc:
        out.problems.append(LineProblem(number, f"not valid JSON ({exc.msg})"))
        return None
    except RecursionError:
        out.problems.append(LineProblem(number, "nested too deeply"))
        return None
    except ValueError as exc:  # NaN/Infinity, or an integer of thousands of digits
        out.problems.append(LineProblem(number, f"not valid JSON ({exc})"))
        return None
    if not isinstance(row, dict):
        out.problems.append(LineProblem(number, f"a JSON {type(row).__name__}, not an object"))
        return None
    scrubbed: dict[str, Any]
    scrubbed, replaced = scrub(row)
    if replaced:
        out.warnings.append(
            f"{out.source}, line {number}: {replaced} broken character(s) "
            "(lone surrogates) replaced with \N{REPLACEMENT CHARACTER}"
        )
    return scrubbed


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def _finite_or_none(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None


def _add_message(row: dict[str, Any], number: int, out: StFile) -> None:
    if "mes" not in row:
        out.problems.append(LineProblem(number, "no `mes` field (not a message)"))
        return
    mes = "" if row["mes"] is None else row["mes"]
    if not isinstance(mes, str):
        out.problems.append(LineProblem(number, f"`mes` is a {type(mes).__name__}, not text"))
        return
    swipes = row.get("swipes")
    if swipes is not None and not isinstance(swipes, list):
        out.problems.append(LineProblem(number, "`swipes` is not a list"))
        return
    role = "system" if row.get("is_system") else "user" if row.get("is_user") else "assistant"
    texts = [s if isinstance(s, str) else "" if s is None else str(s) for s in swipes or []]
    index = _swipe_index(row.get("swipe_id"), texts, mes, number, out)
    texts[index] = mes
    out.messages.append(StLine(number, row, role, texts, index))


def _swipe_index(value: Any, texts: list[str], mes: str, number: int, out: StFile) -> int:
    """Where `mes` sits among the swipes; `texts` grows by `mes` when it is in none of them."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(texts):
        return value
    if mes not in texts:
        texts.append(mes)
    guess = texts.index(mes)
    if value is not None and len(texts) > 1:
        out.warnings.append(
            f"{out.source}, line {number}: swipe_id {value!r} is not one of"
            f" the swipes; showing swipe {guess + 1}"
        )
    return guess
