"""Time in macros, as SillyTavern writes it with moment.js in English.

`{{time}}`, `{{date}}`, `{{weekday}}`, `{{isotime}}`, `{{isodate}}` (moment's `LT`, `LL`,
`dddd`, `HH:mm`, `YYYY-MM-DD`), `{{datetimeformat FORMAT}}` (moment's format tokens),
`{{time_UTC+N}}` (moment's `utcOffset`: hours when |N| < 16, else minutes),
`{{timeDiff::a::b}}` and `{{idle_duration}}` (moment's `duration.humanize`). The OS locale
never changes the words: SillyTavern's default locale is English.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from app.core.appdata.english import MONTHS

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# moment's long date formats in English (`longDateFormat` of the "en" locale)
_LONG = {
    "LTS": "h:mm:ss A",
    "LT": "h:mm A",
    "L": "MM/DD/YYYY",
    "LL": "MMMM D, YYYY",
    "LLL": "MMMM D, YYYY h:mm A",
    "LLLL": "dddd, MMMM D, YYYY h:mm A",
    "l": "M/D/YYYY",
    "ll": "MMM D, YYYY",
    "lll": "MMM D, YYYY h:mm A",
    "llll": "ddd, MMM D, YYYY h:mm A",
}
_LONG_TOKEN = re.compile(r"(\[[^\]]*\])|(\\)?(LTS|LT|LL?L?L?|l{1,4})")
# moment's `formattingTokens`, the tokens Parlor writes; any other character is kept as is.
_TOKEN = re.compile(
    r"(\[[^\[]*\])|(\\)?(Mo|MM?M?M?|Do|DDDo|DD?D?D?|ddd?d?|do?|w[o|w]?|W[o|W]?|Qo?|"
    r"YYYY|YY|gg(?:gg)?|GG(?:GG)?|e|E|a|A|hh?|HH?|kk?|mm?|ss?|S{1,9}|x|X|ZZ?|.)",
    re.S,
)
INVALID = "Invalid date"  # moment's `invalidDate` in English


def local(moment: datetime) -> datetime:
    """An aware time: a naive one is the computer's local time, as in moment()."""
    return moment if moment.tzinfo is not None else moment.astimezone()


def format_moment(moment: datetime, fmt: str) -> str:
    """`moment().format(fmt)` in the English locale."""
    moment = local(moment)
    fmt = _LONG_TOKEN.sub(
        lambda m: m.group(1) or (m.group(2) and m.group(3)) or _LONG[m.group(3)], fmt
    )
    return _TOKEN.sub(lambda m: _token(moment, m), fmt)


def _token(t: datetime, m: re.Match[str]) -> str:
    if m.group(1):
        return m.group(1)[1:-1]
    if m.group(2):
        return m.group(3)
    fn = _FORMATS.get(m.group(3))
    if fn is not None:
        return fn(t)
    if m.group(3).startswith("S"):
        return f"{t.microsecond:06d}000"[: len(m.group(3))]
    return m.group(3)


def _ordinal(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def _day_of_week(t: datetime) -> int:  # moment's `d`: Sunday is 0
    return (t.weekday() + 1) % 7


def _locale_week(t: datetime) -> tuple[int, int]:
    """The "en" locale's week and week-year: weeks start on Sunday; the week holding
    January 1st is the first (moment's `dow: 0, doy: 6`)."""
    start = (t - timedelta(days=_day_of_week(t))).date()  # this week's Sunday
    year = (start + timedelta(days=6)).year  # the week belongs to the year of its Saturday
    jan1 = datetime(year, 1, 1).date()
    first = jan1 - timedelta(days=(jan1.weekday() + 1) % 7)
    return (start - first).days // 7 + 1, year


def _offset(t: datetime, sep: str) -> str:
    minutes = int((t.utcoffset() or timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}{sep}{abs(minutes) % 60:02d}"


_FORMATS: dict[str, Callable[[datetime], str]] = {
    "M": lambda t: str(t.month),
    "Mo": lambda t: _ordinal(t.month),
    "MM": lambda t: f"{t.month:02d}",
    "MMM": lambda t: MONTHS[t.month - 1][:3],
    "MMMM": lambda t: MONTHS[t.month - 1],
    "Q": lambda t: str((t.month - 1) // 3 + 1),
    "Qo": lambda t: _ordinal((t.month - 1) // 3 + 1),
    "D": lambda t: str(t.day),
    "Do": lambda t: _ordinal(t.day),
    "DD": lambda t: f"{t.day:02d}",
    "DDD": lambda t: str(t.timetuple().tm_yday),
    "DDDo": lambda t: _ordinal(t.timetuple().tm_yday),
    "DDDD": lambda t: f"{t.timetuple().tm_yday:03d}",
    "d": lambda t: str(_day_of_week(t)),
    "do": lambda t: _ordinal(_day_of_week(t)),
    "dd": lambda t: WEEKDAYS[t.weekday()][:2],
    "ddd": lambda t: WEEKDAYS[t.weekday()][:3],
    "dddd": lambda t: WEEKDAYS[t.weekday()],
    "e": lambda t: str(_day_of_week(t)),
    "E": lambda t: str(t.isoweekday()),
    "w": lambda t: str(_locale_week(t)[0]),
    "wo": lambda t: _ordinal(_locale_week(t)[0]),
    "ww": lambda t: f"{_locale_week(t)[0]:02d}",
    "W": lambda t: str(t.isocalendar()[1]),
    "Wo": lambda t: _ordinal(t.isocalendar()[1]),
    "WW": lambda t: f"{t.isocalendar()[1]:02d}",
    "YYYY": lambda t: f"{t.year:04d}",
    "YY": lambda t: f"{t.year % 100:02d}",
    "gg": lambda t: f"{_locale_week(t)[1] % 100:02d}",
    "gggg": lambda t: f"{_locale_week(t)[1]:04d}",
    "GG": lambda t: f"{t.isocalendar()[0] % 100:02d}",
    "GGGG": lambda t: f"{t.isocalendar()[0]:04d}",
    "A": lambda t: "AM" if t.hour < 12 else "PM",
    "a": lambda t: "am" if t.hour < 12 else "pm",
    "H": lambda t: str(t.hour),
    "HH": lambda t: f"{t.hour:02d}",
    "h": lambda t: str(t.hour % 12 or 12),
    "hh": lambda t: f"{t.hour % 12 or 12:02d}",
    "k": lambda t: str(t.hour or 24),
    "kk": lambda t: f"{t.hour or 24:02d}",
    "m": lambda t: str(t.minute),
    "mm": lambda t: f"{t.minute:02d}",
    "s": lambda t: str(t.second),
    "ss": lambda t: f"{t.second:02d}",
    "X": lambda t: str(int(t.timestamp())),
    "x": lambda t: str(int(t.timestamp() * 1000)),
    "Z": lambda t: _offset(t, ":"),
    "ZZ": lambda t: _offset(t, ""),
}


def clock_macro(name: str, now: datetime) -> str | None:
    """The plain clock macros (`{{time}}` ... `{{isodate}}`), or None for another name."""
    fmt = {"time": "LT", "date": "LL", "weekday": "dddd", "isotime": "HH:mm"}.get(name)
    if name == "isodate":
        fmt = "YYYY-MM-DD"
    return format_moment(now, fmt) if fmt else None


def utc_offset_time(offset: str, now: datetime) -> str:
    """`{{time_UTC+N}}`: moment's `utc().utcOffset(N).format('LT')`; |N| < 16 is hours."""
    n = int(offset)
    minutes = n * 60 if -16 < n < 16 else n
    if abs(minutes) >= 24 * 60:  # past what a time zone can be: Python refuses it
        return INVALID
    shifted = local(now).astimezone(timezone(timedelta(minutes=minutes)))
    return format_moment(shifted, "LT")


# -- durations ------------------------------------------------------------------------------
def humanize(delta: timedelta, *, suffix: bool = False) -> str:
    """moment's `duration.humanize()` in English, with its default thresholds (45 seconds,
    45 minutes, 22 hours, 26 days, 11 months) and its month length (146097/4800 days)."""
    ms = delta.total_seconds() * 1000
    text = _relative(abs(ms))
    if not suffix:
        return text
    return f"in {text}" if ms > 0 else f"{text} ago"


def _round(x: float) -> int:
    return int(x + 0.5)  # JavaScript's Math.round, for the positive values used here


def _relative(ms: float) -> str:
    seconds, minutes, hours = _round(ms / 1000), _round(ms / 60000), _round(ms / 3_600_000)
    days_exact = ms / 86_400_000
    days = _round(days_exact)
    months_exact = days_exact * 4800 / 146097
    months, years = _round(months_exact), _round(months_exact / 12)
    for test, text in (
        (seconds <= 44, "a few seconds"),
        (seconds < 45, f"{seconds} seconds"),
        (minutes <= 1, "a minute"),
        (minutes < 45, f"{minutes} minutes"),
        (hours <= 1, "an hour"),
        (hours < 22, f"{hours} hours"),
        (days <= 1, "a day"),
        (days < 26, f"{days} days"),
        (months <= 1, "a month"),
        (months < 11, f"{months} months"),
        (years <= 1, "a year"),
    ):
        if test:
            return text
    return f"{years} years"


def time_diff(first: str, second: str) -> str:
    """`{{timeDiff::a::b}}`: how far a is from b ("in 2 hours", "3 days ago")."""
    a, b = parse_moment(first), parse_moment(second)
    if a is None or b is None:
        return INVALID
    return humanize(a - b, suffix=True)


def idle_duration(since: datetime | None, now: datetime) -> str:
    """`{{idle_duration}}` (`getTimeSinceLastMessage`): since the user's message before the
    last one, or "just now" when there is none."""
    if since is None:
        return "just now"
    return humanize(local(now) - local(since))


_ISO = re.compile(
    r"(\d{4})-(\d\d)(?:-(\d\d))?(?:[T ](\d\d)(?::(\d\d)(?::(\d\d)(?:[.,](\d+))?)?)?)?"
    r"\s*(Z|[+-]\d\d(?::?\d\d)?)?",
    re.I,
)
_RFC_2822 = re.compile(r"(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d{1,2}:\d\d")
# What JavaScript's `Date` reads besides ISO and RFC 2822 (moment's last resort), including
# what `{{date}}` and `{{time}}` write.
_LOOSE = (
    "%B %d %Y %I:%M %p",
    "%B %d %Y %I:%M:%S %p",
    "%B %d %Y %H:%M",
    "%B %d %Y %H:%M:%S",
    "%B %d %Y",
    "%b %d %Y %I:%M %p",
    "%b %d %Y %H:%M",
    "%b %d %Y",
    "%d %B %Y",
    "%d %b %Y",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%A %B %d %Y %I:%M %p",
    "%A %B %d %Y",
    "%a %b %d %Y %H:%M:%S",
    "%a %b %d %Y",
)


def parse_moment(text: str) -> datetime | None:
    """`moment(text)`: ISO 8601, then RFC 2822, then the forms `Date` reads; None if invalid.
    A time without an offset is local time."""
    text = text.strip()
    iso = _ISO.fullmatch(text)
    if iso:
        return _from_iso(iso)
    if _RFC_2822.match(text):
        try:
            return local(parsedate_to_datetime(text))
        except (TypeError, ValueError, IndexError):
            pass
    loose = re.sub(r"\s+", " ", text.replace(",", " ")).strip()
    for fmt in _LOOSE:
        try:
            return local(datetime.strptime(loose, fmt))
        except ValueError:
            continue
    return None


def _from_iso(m: re.Match[str]) -> datetime | None:
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
        )
    except ValueError:
        return None
    if not zone:
        return local(moment)
    if zone.upper() == "Z":
        return moment.replace(tzinfo=timezone.utc)
    digits = zone[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
    sign = -1 if zone[0] == "-" else 1
    return moment.replace(tzinfo=timezone(timedelta(minutes=sign * minutes)))
