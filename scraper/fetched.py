"""A page as fetched: kept apart from ``scraper.records`` so that parsing saved
files never pays for importing ``dataclasses`` (``reviews parse`` has a start-up
goal). Import it as ``scraper.records.FetchedPage``, as everyone does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["FetchedPage"]


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """A page as it came off the network (or from a saved file / WARC record).

    ``body`` is the decoded-from-transfer-encoding payload (what the server
    meant to send, after gzip/br removal), ``headers`` the response headers as
    (name, value) pairs in order. ``status`` is None for pages imported from
    disk with no HTTP exchange behind them.
    """

    requested_url: str
    final_url: str
    status: int | None
    headers: tuple[tuple[str, str], ...]
    body: bytes
    fetched_at: datetime
    request_headers: tuple[tuple[str, str], ...] = field(default=())

    def header(self, name: str) -> str | None:
        """Return the first header called *name* (case-insensitive), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    @property
    def charset(self) -> str | None:
        """The charset named by the Content-Type header, if any."""
        content_type = self.header("content-type") or ""
        for part in content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.strip().lower() == "charset" and value.strip():
                return value.strip().strip("\"'")
        return None
