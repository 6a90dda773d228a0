"""What a saved page file says about its own capture: when, from where, as what.

A copied file keeps its bytes but not its modification time, so the capture time
is read from the file first when it says it:

- a saved HTTP response head before the body (``wget --save-headers``: a status
  line and headers, then a blank line): its ``Date:`` header is when the server
  answered; the head itself is kept as the page's status and headers, and the
  body after it is the page;
- a note the saving tool left: SingleFile's comment (``url:`` and
  ``saved date:``), Save Page WE's ``savepage-url`` / ``savepage-date`` meta
  tags, and the ``<!-- saved from url=(NNNN)... -->`` mark browsers write (a
  URL, no time);
- with ``--fetched-at-from name``, a date in the file name (``NAME_PATTERNS``).

All of it is pure (bytes and names in, values out); nothing here reads a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from scraper.config import ImportSettings

__all__ = ["NAME_PATTERNS", "TIME_FROM", "TIME_RULES", "SavedPage", "date_in_name", "read_saved"]

#: How much of a page's start is searched for a saver's note.
_NOTE_SCAN = ImportSettings().note_scan_bytes
#: Years taken as capture dates (a number outside is some other number in the name).
_YEARS = range(1990, 2200)

_STATUS_LINE = re.compile(rb"\AHTTP/\d(?:\.\d)? (\d{3})[^\r\n]*\r?\n")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_SINGLEFILE = re.compile(
    rb"<!--\s*Page saved with SingleFile\s*(?P<note>.*?)-->", re.DOTALL | re.IGNORECASE
)
_NOTE_URL = re.compile(rb"^\s*url:\s*(\S+)", re.MULTILINE)
_NOTE_DATE = re.compile(rb"^\s*saved date:\s*([^\r\n]+)", re.MULTILINE)
_SAVEPAGE = re.compile(
    rb"""<meta\s+name=["']savepage-(url|date)["']\s+content=["']([^"']*)["']""", re.IGNORECASE
)
_SAVED_FROM = re.compile(rb"<!--\s*saved from url=\(\d+\)(\S+?)\s*-->", re.IGNORECASE)
#: A JavaScript Date string, as SingleFile and Save Page WE write it:
#: ``Tue Mar 04 2025 16:31:24 GMT+0100 (Central European Standard Time)``.
_JS_DATE = re.compile(r"\w{3} (\w{3}) (\d{1,2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT([+-]\d{4})")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

#: Dates read from a file name, most precise first; every one is read as UTC.
NAME_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("YYYYMMDDhhmmss (a WARC/Wayback timestamp)", re.compile(r"(?<!\d)(\d{14})(?!\d)")),
    (
        "YYYY-MM-DDThh:mm[:ss], also with _ or a space for T and - or . for :",
        re.compile(
            r"(?<!\d)(\d{4})-(\d{2})-(\d{2})[T_ ](\d{2})[:.\-]?(\d{2})(?:[:.\-]?(\d{2}))?(?!\d)"
        ),
    ),
    ("YYYY-MM-DD", re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")),
    ("YYYYMMDD", re.compile(r"(?<!\d)(\d{8})(?!\d)")),
    ("YYYY-MM (the first of the month)", re.compile(r"(?<!\d)(\d{4})-(\d{2})(?!-?\d)")),
)


#: Where ``--fetched-at-from`` may take capture times from.
TIME_FROM = ("file", "name", "mtime")

#: The precedence of capture times, as ``reviews import --help`` prints it.
TIME_RULES = (
    "Capture time, first match wins: --fetched-at; with --fetched-at-from name, a date "
    "in the file name (" + "; ".join(label for label, _ in NAME_PATTERNS) + "; read as "
    "UTC; a file without one is refused); the Date: header of a saved HTTP response "
    "head (wget --save-headers); the date a saving tool wrote in the page (SingleFile's "
    "'saved date', Save Page WE's savepage-date); else the file's modification time "
    "(straight away with --fetched-at-from mtime), with a warning when a folder's files "
    "all carry nearly the same one, as copies do."
)


@dataclass(frozen=True, slots=True)
class SavedPage:
    """A saved file read: the page's bytes and what the file says about its capture.

    ``time_source`` names where ``fetched_at`` came from (None: the file does not
    say). ``status`` and ``headers`` are those of a saved HTTP head, else None/().
    """

    body: bytes
    url: str | None = None
    fetched_at: datetime | None = None
    time_source: str | None = None
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()


def read_saved(data: bytes, *, head_limit: int = ImportSettings().max_head_bytes) -> SavedPage:
    """Return what *data* (a saved file's bytes) says about its own capture."""
    status = _STATUS_LINE.match(data)
    if status is not None:
        end = _HEAD_END.search(data, status.end() - 2, head_limit)
        if end is not None:
            headers = _header_lines(data[status.end() : end.start()])
            body = data[end.end() :]
            note = _note(body)
            moment = _http_date(next((v for k, v in headers if k.lower() == "date"), None))
            return SavedPage(
                body=body,
                url=note.url,
                fetched_at=moment or note.fetched_at,
                time_source="its saved HTTP Date header" if moment else note.time_source,
                status=int(status.group(1)),
                headers=headers,
            )
    return _note(data)


def _header_lines(block: bytes) -> tuple[tuple[str, str], ...]:
    pairs = []
    for line in block.decode("latin-1").splitlines():
        name, colon, value = line.partition(":")
        if colon and name.strip():
            pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    # Imported here: only a saved HTTP head has a Date, and the email package costs
    # every import (and each of its parse workers) about 15 ms of start-up.
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.year not in _YEARS:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _note(body: bytes) -> SavedPage:
    """The page with the URL and time a saving tool wrote into it, when it did."""
    start = body[:_NOTE_SCAN]
    found = _SINGLEFILE.search(start)
    if found is not None:
        note = found.group("note")
        url, date = _NOTE_URL.search(note), _NOTE_DATE.search(note)
        moment = _js_date(date.group(1).decode("utf-8", "replace")) if date else None
        return SavedPage(
            body=body,
            url=url.group(1).decode("utf-8", "replace") if url else None,
            fetched_at=moment,
            time_source="its SingleFile 'saved date'" if moment else None,
        )
    metas = {key.lower(): value for key, value in _SAVEPAGE.findall(start)}
    if metas:
        moment = _js_date(metas.get(b"date", b"").decode("utf-8", "replace"))
        url = metas.get(b"url")
        return SavedPage(
            body=body,
            url=url.decode("utf-8", "replace") if url else None,
            fetched_at=moment,
            time_source="its Save Page WE 'savepage-date'" if moment else None,
        )
    marked = _SAVED_FROM.search(start)
    if marked is not None:
        return SavedPage(body=body, url=marked.group(1).decode("utf-8", "replace"))
    return SavedPage(body=body)


def _js_date(text: str) -> datetime | None:
    found = _JS_DATE.search(text)
    if found is None or found.group(1).lower() not in _MONTHS:
        return None
    month = _MONTHS.index(found.group(1).lower()) + 1
    day, year, hour, minute, second = (int(found.group(n)) for n in range(2, 7))
    try:
        moment = datetime.strptime(
            f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d} "
            f"{found.group(7)}",
            "%Y-%m-%d %H:%M:%S %z",
        )
    except ValueError:
        return None
    return moment.astimezone(UTC) if year in _YEARS else None


def date_in_name(name: str) -> datetime | None:
    """Return the capture time written in file *name* (``NAME_PATTERNS``), as UTC."""
    for _, pattern in NAME_PATTERNS:
        for found in pattern.finditer(name):
            moment = _name_date(found.groups())
            if moment is not None:
                return moment
    return None


def _name_date(groups: tuple[str | None, ...]) -> datetime | None:
    digits = [group for group in groups if group is not None]
    if len(digits) == 1:  # 14 or 8 digits in one run
        run = digits[0]
        digits = [run[:4], run[4:6], run[6:8], run[8:10], run[10:12], run[12:14]]
        digits = [part for part in digits if part]
    numbers = [int(part) for part in digits] + [1] * (3 - len(digits))
    numbers += [0] * (6 - len(numbers))
    year, month, day, hour, minute, second = numbers[:6]
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    return moment if moment.year in _YEARS else None
