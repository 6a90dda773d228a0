"""Dates and numbers as strangers write them, read without guessing more than the text says.

Dates come back as ISO 8601 text as precise as the page gives them and in the
page's own offset (``2022-05-26T08:39:59+0000`` becomes
``2022-05-26T08:39:59+00:00``, never converted to another zone). Non-ISO
spellings are read too: ``March 3, 2023``, ``3 Mar 2023``, ``2023/03/03``,
``03/04/2023`` (all-number dates with ``/`` or ``-`` are month first on
pages in US English or with no language, as US pages write them, and day
first on pages in any other language; with ``.`` always day first; a first
number above 12 is a day whatever the page says), month names in English,
French, German, Spanish, Italian, Dutch and Portuguese (``3. März 2023``,
``3 de marzo de 2023``), RFC 2822 (``Fri, 03 Mar 2023 10:00:00
+0000``), JavaScript's ``Mon Mar 03 2023 10:00:00 GMT+0100``, two-digit years
(``1/2/20``, as Magento writes them: 1970-2069) and Unix timestamps (seconds
or milliseconds, read as UTC); a year alone or a year and month (``2023``,
``2023-06``, as some generators fill a form's date) stays that precise; a
``UTC`` / ``GMT`` after an ISO time is its offset (Judge.me writes
``2024-03-11 18:42:07 UTC``). Anything else is None: an unreadable date is
no date, never a guess and never a crash.

Numbers accept strings, decimal commas (``"4,5"``), ``"4/5"`` and ``"Rated
4 out of 5"`` (the scale given along), ``"80%"`` and the one-element arrays some generators emit.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import NamedTuple

__all__ = ["Number", "numeric_order", "parse_date", "parse_number"]

_ISO = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?(?![\d:])",
    re.IGNORECASE,
)
# Only a year, or a year and a month (``2023``, ``2023-06``): as precise as that.
_PARTIAL = re.compile(r"((?:19|20)\d{2})(?:-(0[1-9]|1[0-2]))?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})?)?\s*(Z|[+-]\d{2}:?\d{2})?$")
_NUMERIC = re.compile(r"(\d{1,4})([/.-])(\d{1,2})\2(\d{2,4})(?!\d)")
# Month names (and their usual abbreviations) in the languages review pages
# are most often written in: English, French, German, Spanish, Italian, Dutch,
# Portuguese. Names shared by two languages mean the same month in both.
_MONTH_NAMES = (
    "january jan janvier janv januar jän enero ene gennaio gen januari janeiro",
    "february feb février févr fevrier februar febrero febbraio febr februari fevereiro fev",
    "march mar mars märz maerz marzo maart março",
    "april apr avril avr abril aprile",
    "may mai mayo maggio mag mei maio",
    "june jun juin juni junio giugno giu junho",
    "july jul juillet juil juli julio luglio lug julho",
    "august aug août aout agosto ago augustus",
    "september sep sept septembre septiembre settembre set setembro",
    "october oct octobre oktober okt octubre ottobre ott oktober outubro out",
    "november nov novembre noviembre novembro",
    "december dec décembre déc decembre dezember dez diciembre dic dicembre dezembro",
)
_MONTHS = {
    name: number for number, names in enumerate(_MONTH_NAMES, start=1) for name in names.split()
}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th|er|º|\.)?"
_MONTH_FIRST = re.compile(r"\b" + _MONTH + r"\s+" + _DAY + r",?\s+(\d{4})", re.IGNORECASE)
_DAY_FIRST = re.compile(
    _DAY + r"\s+(?:of\s+|de\s+)?" + _MONTH + r",?\s+(?:de\s+)?(\d{4})", re.IGNORECASE
)
_CLOCK = re.compile(
    r"(?:,|\s|at|@)*\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([ap])?\.?(?:m\.?)?"
    r"\s*(Z|(?:GMT|UTC)?\s*[+-]\d{2}:?\d{2}|GMT|UTC)?",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"\s*([-+]?(?:\d+(?:[.,]\d+)?|[.,]\d+))\s*"
    r"(?:(?:/|out\s+of|of)\s*(\d+(?:[.,]\d+)?))?\s*(%|stars?|points?)?\s*",
    re.IGNORECASE,
)


# A label before the number: "Rated 4.5 out of 5", "Rating: 4".
_LABEL = re.compile(r"^\s*[^\W\d_]+(?:\s+[^\W\d_]+){0,2}\s*:?")


class Number(NamedTuple):
    """A number read from text, with the scale written beside it (``4/5``, ``80%``)."""

    value: float
    best: float | None = None
    percent: bool = False


def parse_number(value: object) -> Number | None:
    """Return the number *value* says (str, int, float, one-element list), or None."""
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        return Number(number) if math.isfinite(number) else None
    if not isinstance(value, str) or len(value) > 64:
        return None
    if value.isdigit() and value.isascii():  # "5", what most pages write
        return Number(float(value))
    match = _NUMBER.fullmatch(_LABEL.sub("", value, count=1))
    if match is None:
        return None
    number = float(_decimal(match.group(1)))
    if not math.isfinite(number):
        return None
    best = float(_decimal(match.group(2))) if match.group(2) else None
    percent = match.group(3) == "%"
    if best is None and percent:
        best = 100.0
    return Number(number, best, percent)


def _decimal(text: str) -> str:
    """Return *text* with a decimal comma as a point ("4,5" is four and a half)."""
    return text.replace(",", ".")


def parse_date(value: object, day_first: bool = False) -> str | None:
    """Return *value* as ISO 8601 text, as precise as it is, in its own offset; else None.

    *day_first* reads an ambiguous all-number date such as ``03/04/2023`` as
    3 April (the page's language is not US English), else as March 4.
    """
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _timestamp(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()[:100]
    if not text:
        return None
    try:
        return _parse_text(text, day_first)
    except (ValueError, OverflowError):  # a date that does not exist (2023-02-30)
        return None


def numeric_order(value: str) -> bool | None:
    """Return which order an all-number date proves: True for day first (``25/12/2023``),
    False for month first (``12/25/2023``), None when it proves neither (``03/04/2023``,
    ISO, month names, dots, which are always day first)."""
    text = value.strip()[:100]
    if text[:4].isdigit() or _MONTH_FIRST.search(text) or _DAY_FIRST.search(text):
        return None
    match = _NUMERIC.search(text)
    if match is None or len(match.group(1)) > 2 or match.group(2) == ".":
        return None
    first, second = int(match.group(1)), int(match.group(3))
    if first > 12 and 1 <= second <= 12:
        return True
    if second > 12 and 1 <= first <= 12:
        return False
    return None


def _parse_text(text: str, day_first: bool) -> str | None:
    match = _ISO.match(text)
    if match is not None:
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        return _iso(int(year), int(month), int(day), hour, minute, second, fraction, zone)
    match = _COMPACT.match(text)
    if match is not None:
        year, month, day, hour, minute, second, zone = match.groups()
        return _iso(int(year), int(month), int(day), hour, minute, second, None, zone)
    if text.isdigit() and len(text) in (9, 10, 12, 13):
        return _timestamp(float(text))
    match = _PARTIAL.fullmatch(text)
    if match is not None:
        return match.group(0)
    return _parse_words(text, day_first)


def _parse_words(text: str, day_first: bool) -> str | None:
    """Read dates with month names or all-number dates, then an optional clock time."""
    match = _MONTH_FIRST.search(text)
    if match is not None:
        month, day, year = _MONTHS[match.group(1).lower()], match.group(2), match.group(3)
    else:
        match = _DAY_FIRST.search(text)
        if match is not None:
            day, month, year = match.group(1), _MONTHS[match.group(2).lower()], match.group(3)
        else:
            match = _NUMERIC.search(text)
            if match is None:
                return None
            return _numeric(match, text[match.end() :], day_first)
    return _with_clock(date(int(year), month, int(day)), text[match.end() :])


def _numeric(match: re.Match[str], rest: str, day_first: bool) -> str | None:
    first, separator, second, third = match.groups()
    if len(first) == 4:  # 2023/03/03
        day_value = date(int(first), int(second), int(third))
        return _with_clock(day_value, rest)
    if len(third) == 4:
        year = int(third)
    elif len(third) == 2 and len(first) <= 2:  # 1/2/20, as Magento writes it
        year = 2000 + int(third) if int(third) < 70 else 1900 + int(third)
    else:
        return None
    a, b = int(first), int(second)
    if separator == "." or a > 12 or (day_first and b <= 12):  # 03.03.2023, 25/12/2023
        day_number, month_number = a, b
    else:
        month_number, day_number = a, b
    return _with_clock(date(year, month_number, day_number), rest)


def _with_clock(day: date, rest: str) -> str:
    """Return *day* in ISO form, with the clock time that follows it in the text, if any."""
    match = _CLOCK.match(rest)
    if match is None:
        return day.isoformat()
    hour, minute, second, half, zone = match.groups()
    hours = int(hour)
    if half:
        if hours > 12:
            return day.isoformat()
        hours = hours % 12 + (12 if half.lower() == "p" else 0)
    if zone is not None:
        zone = zone.upper().removeprefix("GMT").removeprefix("UTC").strip() or "Z"
    return _iso(day.year, day.month, day.day, str(hours), minute, second, None, zone)


def _iso(
    year: int,
    month: int,
    day: int,
    hour: str | None,
    minute: str | None,
    second: str | None,
    fraction: str | None,
    zone: str | None,
) -> str:
    if hour is None or minute is None:
        return date(year, month, day).isoformat()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    clock = time(int(hour), int(minute), int(second or 0), micro, tzinfo=_zone(zone))
    # As precise as given: ".512" stays three digits, not ".512000".
    spec = "auto" if not fraction or len(fraction) > 3 else "milliseconds"
    return datetime.combine(date(year, month, day), clock).isoformat(timespec=spec)


def _zone(zone: str | None) -> timezone | None:
    if zone is None:
        return None
    if zone.upper() in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"no such offset: {zone}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _timestamp(seconds: float) -> str | None:
    """Return a Unix timestamp (seconds, or milliseconds when that large) as UTC ISO text."""
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    if seconds > 1e11:
        seconds /= 1000
    try:
        moment = datetime.fromtimestamp(int(seconds), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    # Before 1995 or after 2100 a bare number is not a review's timestamp.
    return moment.isoformat() if 1995 <= moment.year <= 2100 else None
