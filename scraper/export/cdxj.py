"""CDXJ indexes of the WARC files we write (the format pywb reads from ``indexes/``).

One line per captured URL: its SURT key, a 14-digit timestamp, and a JSON object
saying where the record sits (file, offset, length) and what it holds (status,
MIME type, payload digest). Lines are kept for one WARC file at a time, so the
memory used is bounded by the rollover size, and written sorted when it closes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["CdxjIndex", "surt"]


def surt(url: str) -> str:
    """Return the SURT sort key of *url*: ``net,myanimelist)/anime/1/x/reviews?p=2``.

    Host reversed and lower-cased without ``www.``, scheme and fragment dropped,
    query arguments sorted.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    key = ",".join(reversed(host.split("."))) + ")" + (parts.path or "/").lower()
    if parts.query:
        key += "?" + urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True))).lower()
    return key


class CdxjIndex:
    """The index lines of one WARC file, written beside it as ``<name>.cdxj``."""

    def __init__(self, warc: Path) -> None:
        self.warc = warc
        self.lines: list[str] = []

    @property
    def path(self) -> Path:
        name = self.warc.name.removesuffix(".gz").removesuffix(".warc")
        return self.warc.with_name(f"{name}.cdxj")

    def add(self, record: Any, offset: int, length: int) -> None:
        """Index one written response, revisit or resource *record*."""
        headers = record.rec_headers
        url = headers.get_header("WARC-Target-URI")
        timestamp = "".join(ch for ch in headers.get_header("WARC-Date") if ch.isdigit())[:14]
        fields: dict[str, Any] = {"url": url}
        if record.http_headers is not None and record.rec_type != "resource":
            fields["status"] = record.http_headers.get_statuscode()
            mime = record.http_headers.get_header("Content-Type") or ""
        else:
            mime = headers.get_header("Content-Type") or ""
        fields["mime"] = mime.split(";")[0].strip() or "unk"
        if record.rec_type == "revisit":
            fields["mime"] = "warc/revisit"
        # With its algorithm prefix, as pywb's indexer writes it.
        fields["digest"] = headers.get_header("WARC-Payload-Digest") or ""
        fields.update(length=str(length), offset=str(offset), filename=self.warc.name)
        self.lines.append(f"{surt(url)} {timestamp} {json.dumps(fields)}\n")

    def write(self, target: Path | None = None) -> Path:
        """Write the sorted index to *target* (default: beside its WARC file); return it."""
        target = target or self.path
        with target.open("w", encoding="utf-8") as out:
            out.writelines(sorted(self.lines))
        return target
