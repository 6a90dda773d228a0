"""Raw page bodies: stored once per sha256 of the payload, compressed with zstandard.

Measured on real MAL review pages (``bench/bench_ingest.py`` prints the figures):
zstd level 3 alone keeps a page at about 1/4.4 of its size in under 1 ms; zlib and
lzma do no better for many times the cost. What makes the archive small is that
pages share most of their bytes with pages already stored, so a body is compressed
with an earlier body as a zstd dictionary (its *base*):

- a recapture of the same URL against the newest earlier capture (about 1/27);
- a first capture against a recent page of the same site (about 1/7): same
  header, footer, scripts and review markup.

Encodings: ``zstd`` (no base), ``zstd-ref`` (base is ``zstd``), ``zstd-ref2`` (base is
``zstd-ref``). Chains stop there, so reading any body takes at most three
decompressions. A referencing body's data is the base's 32-byte sha256 digest
followed by the zstd frame.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
import zstandard
from sqlalchemy.engine import Connection

from scraper.config import StoreSettings
from scraper.errors import StoreError
from scraper.records import FetchedPage
from scraper.schema.tables import raw_bodies, raw_pages
from scraper.store.codec import (
    DIGEST_SIZE,
    ENCODINGS,
    MAX_DEPTH,
    BodyRow,
    body_sha256,
    decode_bodies,
    decode_body,
    raw_dict,
)
from scraper.store.dialect import insert_for

__all__ = [
    "ENCODINGS",
    "ZSTD_LEVEL",
    "StoredBody",
    "body_sha256",
    "load_bodies",
    "load_body",
    "load_page",
    "store_body",
]

#: The zstd level of stored bodies (see StoreSettings).
ZSTD_LEVEL = StoreSettings().zstd_level

_BY_DEPTH = {depth: name for name, depth in ENCODINGS.items()}
#: How many of the newest raw pages are searched for a same-site base.
_RECENT_PAGES = StoreSettings().base_search_pages
#: Bodies kept in memory as bases (about 250 KB each), and ready-made dictionaries.
_CACHED_BODIES = StoreSettings().cached_bodies
_CACHED_DICTS = StoreSettings().cached_dictionaries


class _Recent:
    """A small thread-safe LRU map from body sha256 to something derived from it.

    Keys are content hashes, so an entry is right for any database: a base's bytes
    are what its sha256 says whichever archive it came from.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> object | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


#: A crawl compresses a page against one stored moments before (the same site's
#: base, or the previous capture of the URL): reading and decompressing it again,
#: and digesting it into a dictionary, cost more than compressing the page itself.
_bodies = _Recent(_CACHED_BODIES)
_dicts = _Recent(_CACHED_DICTS)


@dataclass(frozen=True, slots=True)
class StoredBody:
    """What ``store_body`` did: the key, and whether a new row was written."""

    sha256: str
    size: int
    stored_size: int | None  # None when the body was already stored
    encoding: str | None


def store_body(
    connection: Connection, body: bytes, *, url: str, digest: str | None = None
) -> StoredBody:
    """Store *body* unless an identical one is stored already; return its key.

    *url* (the page's final URL) picks the base it is compressed against; *digest*
    is the body's sha256 when the caller has it already. Runs in the caller's
    transaction; safe against a concurrent insert of the same body.
    Raises StoreError when a stored base cannot be read.
    """
    digest = digest or body_sha256(body)
    # One round trip: is this body stored already, and the URL's newest capture.
    found = {row.kind: row for row in connection.execute(_LOOKUP, {"sha": digest, "url": url})}
    if _STORED in found:
        return StoredBody(digest, len(body), None, None)
    base = _find_base(connection, url, found.get(_NEWEST))
    if base is None:
        encoding = _BY_DEPTH[0]
        data = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)
    else:
        base_sha, base_depth = base
        compressor = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL, dict_data=_compression_dict(connection, base_sha)
        )
        encoding = _BY_DEPTH[base_depth + 1]
        data = bytes.fromhex(base_sha) + compressor.compress(body)
    _bodies.put(digest, body)
    connection.execute(
        _insert_body(connection.dialect.name),
        {"sha256": digest, "size": len(body), "encoding": encoding, "data": data},
    )
    return StoredBody(digest, len(body), len(data), encoding)


def load_page(connection: Connection, raw_page_id: int) -> FetchedPage | None:
    """Return stored raw page *raw_page_id* as it was fetched (its final URL, headers,
    so its charset, body and time), or None when there is no such page.

    Raises StoreError as ``load_body`` does.
    """
    row = connection.execute(
        sa.select(
            raw_pages.c.requested_url,
            raw_pages.c.final_url,
            raw_pages.c.status,
            raw_pages.c.headers,
            raw_pages.c.body_sha256,
            raw_pages.c.fetched_at,
        ).where(raw_pages.c.id == raw_page_id)
    ).first()
    if row is None:
        return None
    return FetchedPage(
        requested_url=str(row.requested_url),
        final_url=str(row.final_url),
        status=row.status,
        headers=tuple((str(name), str(value)) for name, value in row.headers or ()),
        body=load_body(connection, row.body_sha256),
        fetched_at=row.fetched_at,
    )


def load_body(connection: Connection, sha256: str) -> bytes:
    """Return the payload stored under *sha256*.

    Raises StoreError when it (or its base) is missing, its encoding is unknown,
    or it does not decompress to the bytes its key promises.
    """
    return decode_body(sha256, functools.partial(_row, connection))


def load_bodies(connection: Connection, digests: Iterable[str]) -> dict[str, bytes]:
    """Return the payloads stored under *digests*, read in one query (bases outside
    them one by one, each once).

    Raises StoreError as ``load_body`` does.
    """
    wanted = sorted(set(digests))
    rows: dict[str, BodyRow] = {
        str(sha): (str(encoding), bytes(data))
        for sha, encoding, data in connection.execute(_BODY_ROWS, {"shas": wanted})
    }
    return decode_bodies(wanted, rows, functools.partial(_row, connection))


def _compression_dict(connection: Connection, sha256: str) -> zstandard.ZstdCompressionDict:
    """Return the base *sha256* as a compression dictionary, from memory when recent."""
    cached = _dicts.get(sha256)
    if isinstance(cached, zstandard.ZstdCompressionDict):
        return cached
    body = _bodies.get(sha256)
    if not isinstance(body, bytes):
        body = load_body(connection, sha256)
        _bodies.put(sha256, body)
    dictionary = raw_dict(body)
    # Digested once for the level in use; shared by threads (zstd only reads it).
    dictionary.precompute_compress(level=ZSTD_LEVEL)
    _dicts.put(sha256, dictionary)
    return dictionary


_BODY_ROW = sa.select(raw_bodies.c.encoding, raw_bodies.c.data).where(
    raw_bodies.c.sha256 == sa.bindparam("sha")
)


_BODY_ROWS = sa.select(raw_bodies.c.sha256, raw_bodies.c.encoding, raw_bodies.c.data).where(
    raw_bodies.c.sha256.in_(sa.bindparam("shas", expanding=True))
)


def _row(connection: Connection, sha256: str) -> tuple[str, bytes]:
    row = connection.execute(_BODY_ROW, {"sha": sha256}).first()
    if row is None:
        raise StoreError(f"raw body {sha256} is missing from the database")
    return str(row.encoding), bytes(row.data)


# Statements built once: building one costs about as much as running it.
#: The newest capture of a URL: its body, and the digest its data starts with when
#: it has a base (not the whole data: only that is needed).
_NEWEST_OF_URL = (
    sa.select(
        raw_bodies.c.sha256,
        raw_bodies.c.encoding,
        sa.func.substr(raw_bodies.c.data, 1, DIGEST_SIZE).label("head"),
    )
    .join(raw_pages, raw_pages.c.body_sha256 == raw_bodies.c.sha256)
    .where(raw_pages.c.final_url == sa.bindparam("url"))
    .order_by(raw_pages.c.fetched_at.desc(), raw_pages.c.id.desc())
    .limit(1)
    .subquery()
)
_STORED, _NEWEST = 0, 1
#: The body itself when stored (kind 0), and the newest capture of the URL (kind 1).
_LOOKUP = sa.union_all(
    sa.select(
        sa.literal(_STORED).label("kind"),
        raw_bodies.c.sha256,
        raw_bodies.c.encoding,
        sa.func.substr(raw_bodies.c.data, 1, 0).label("head"),
    ).where(raw_bodies.c.sha256 == sa.bindparam("sha")),
    sa.select(sa.literal(_NEWEST), *_NEWEST_OF_URL.c),
)


@functools.cache
def _insert_body(dialect: str) -> Any:
    return insert_for(dialect, raw_bodies).on_conflict_do_nothing(index_elements=["sha256"])


def _find_base(
    connection: Connection, url: str, same_url: sa.Row[Any] | None
) -> tuple[str, int] | None:
    """Return (sha256, depth) of the body to compress against, or None for no base.

    *same_url* is the newest capture of *url* (sha256, encoding, head), if any.
    """
    if same_url is not None:
        depth = ENCODINGS.get(same_url.encoding)
        if depth is not None and depth < MAX_DEPTH:
            return str(same_url.sha256), depth
        if depth == MAX_DEPTH:
            # The newest capture is as deep as chains go: share its own base instead.
            return bytes(same_url.head).hex(), MAX_DEPTH - 1
    return _same_site_base(connection, url)


#: Recent plain bodies, newest first (a base for a URL never captured before).
_RECENT_PLAIN = (
    sa.select(raw_pages.c.final_url, raw_bodies.c.sha256)
    .join(raw_bodies, raw_bodies.c.sha256 == raw_pages.c.body_sha256)
    .where(
        raw_bodies.c.encoding == _BY_DEPTH[0],
        raw_pages.c.id.in_(
            sa.select(raw_pages.c.id)
            .order_by(raw_pages.c.id.desc())
            .limit(_RECENT_PAGES)
            .scalar_subquery()
        ),
    )
    .order_by(raw_pages.c.id.desc())
)


_IS_PLAIN = sa.select(raw_bodies.c.sha256).where(
    raw_bodies.c.sha256 == sa.bindparam("sha"), raw_bodies.c.encoding == _BY_DEPTH[0]
)


class _SiteBases:
    """The plain body each site's new URLs were last compressed against, per database,
    for as many pages as ``_RECENT_PAGES`` would find it among: looking it up in the
    newest raw pages joined their bodies' rows, a cost that grew with the archive."""

    def __init__(self) -> None:
        self._bases: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            found = self._bases.get(key)
            if found is None:
                return None
            sha, uses = found
            if uses >= _RECENT_PAGES:
                del self._bases[key]
                return None
            self._bases[key] = (sha, uses + 1)
            return sha

    def put(self, key: str, sha: str) -> None:
        with self._lock:
            if len(self._bases) > 256:
                self._bases.clear()
            self._bases[key] = (sha, 0)


_site_bases = _SiteBases()


def _same_site_base(connection: Connection, url: str) -> tuple[str, int] | None:
    """Return a recent plain body of a page on the same site (scheme and host)."""
    site = _site(url)
    if not site:
        return None
    key = f"{connection.engine.url!r}\x00{site}"
    known = _site_bases.get(key)
    # Checked in this transaction: a body remembered from a rolled-back one is gone.
    if known is not None and connection.execute(_IS_PLAIN, {"sha": known}).first() is not None:
        return known, 0
    for page_url, sha in connection.execute(_RECENT_PLAIN):
        if _site(page_url) == site:
            _site_bases.put(key, str(sha))
            return str(sha), 0
    return None


def _site(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
