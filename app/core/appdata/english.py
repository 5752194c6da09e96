"""English month names, for dates written the way SillyTavern writes them.

Not `calendar.month_name`: that follows the process locale, which Qt sets from the desktop,
and SillyTavern's dates (chat files' `send_date`, moment.js's English formats in macros) are
English whatever the user's language.
"""

from __future__ import annotations

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
