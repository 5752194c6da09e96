"""SillyTavern's `send_date` in every format it has written over the years.

Seen in real files: `"2023-6-2 @21h 09m 51s 363ms"` (humanizedDateTime, local time),
`"September 28, 2024 1:00am"` / `"September 28, 2024 1:00 AM"` (moment's `LL LT`), ISO 8601
(`"2024-09-28T01:00:00.000Z"`) and epoch milliseconds (a number, sometimes a string).
Zone-less formats are local time, as SillyTavern wrote them.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from app.core.appdata.english import MONTHS

_HUMANIZED = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})\s*@\s*(\d{1,2})h\s*(\d{1,2})m\s*(\d{1,2})s(?:\s*(\d{1,3})ms)?$"
)
_LL_LT = re.compile(r"^([A-Za-z]+ \d{1,2}, \d{4}),? (\d{1,2}):(\d{2})\s*([AaPp][Mm])$")
_MS_THRESHOLD = 1e11  # larger numbers are milliseconds (1e11 s is the year 5138)


def parse_send_date(value: object) -> float | None:
    """Unix seconds for a `send_date`, or None if it is in no known format."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return _from_number(float(value))
        except OverflowError:  # an integer too large for a float: no date
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return _from_number(float(text))
    for parse in (_humanized, _ll_lt, _iso):
        try:
            stamp = parse(text)
        except (ValueError, OverflowError, OSError):
            stamp = None
        if stamp is not None:
            return stamp
    return None


def _from_number(number: float) -> float | None:
    seconds = number / 1000 if number > _MS_THRESHOLD else number
    return seconds if 0 <= seconds < 253402300800 else None  # before year 10000


def _humanized(text: str) -> float | None:
    match = _HUMANIZED.match(text)
    if not match:
        return None
    y, mo, d, h, mi, s, ms = (int(g) if g else 0 for g in match.groups())
    return datetime(y, mo, d, h, mi, s, ms * 1000).timestamp()


def _ll_lt(text: str) -> float | None:
    match = _LL_LT.match(text)
    if not match:
        return None
    day, hour, minute, half = match.groups()
    hour = int(hour) % 12 + (12 if half.lower() == "pm" else 0)
    date = datetime.strptime(day, "%B %d, %Y")
    return date.replace(hour=hour, minute=int(minute)).timestamp()


def _iso(text: str) -> float | None:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    return parsed.timestamp()


def format_send_date(stamp: float) -> str:
    """ISO 8601 in UTC with milliseconds, as current SillyTavern writes it."""
    moment = datetime.fromtimestamp(stamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def humanized_date(stamp: float) -> str:
    """SillyTavern's `create_date` style (local time): `2024-9-28 @01h 00m 00s 000ms`."""
    m = datetime.fromtimestamp(stamp)
    return (
        f"{m.year}-{m.month}-{m.day} @{m.hour:02d}h {m.minute:02d}m {m.second:02d}s"
        f" {m.microsecond // 1000:03d}ms"
    )


def st_send_date(stamp: float) -> str:
    """`June 19, 2023 2:20pm` in local time: what SillyTavern 1.12 writes
    (`getMessageTimeStamp`) and the only text form besides its own humanized one that its
    `parseTimestamp` reads back (ISO 8601 shows as an invalid date there)."""
    t = datetime.fromtimestamp(stamp)
    hour = t.hour % 12 or 12
    return (
        f"{MONTHS[t.month - 1]} {t.day}, {t.year} {hour}:{t.minute:02d}"
        f"{'am' if t.hour < 12 else 'pm'}"
    )
