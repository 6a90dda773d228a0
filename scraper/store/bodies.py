"""Raw page bodies: stored once per sha256 of the payload, compressed with zstandard.

Measured on real MAL review pages (``bench/bench_ingest.py`` prints the figures):
zstd level 3 alone stores a page at about 1/4.4 of its size in under 1 ms, zlib and
lzma do no better for many times the cost. What makes an archive small is that it
keeps *captures of the same page*: a body is compressed with the newest earlier
capture of the same URL as a zstd dictionary (``zstd-ref``), which stores a
recapture at about 1/27 of its size. The base is always a plain ``zstd`` body, so
reading any body takes at most two decompressions.

``zstd-ref`` data is the base's 32-byte sha256 digest followed by the zstd frame.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
import zstandard
from sqlalchemy.engine import Connection

from scraper.errors import StoreError
from scraper.schema.tables import raw_bodies, raw_pages

__all__ = ["ZSTD_LEVEL", "StoredBody", "body_sha256", "load_body", "store_body"]

#: Level 3 is zstd's default: level 9 gains ~7% on these pages for 3x the time.
ZSTD_LEVEL = 3

PLAIN = "zstd"
REFERENCED = "zstd-ref"
_DIGEST_SIZE = 32


@dataclass(frozen=True, slots=True)
class StoredBody:
    """What ``store_body`` did: the key, and whether a new row was written."""

    sha256: str
    size: int
    stored_size: int | None  # None when the body was already stored
    encoding: str | None


def body_sha256(body: bytes) -> str:
    """Return the hex sha256 of *body*, the key it is stored under."""
    return hashlib.sha256(body).hexdigest()


def store_body(connection: Connection, body: bytes, *, url: str) -> StoredBody:
    """Store *body* unless an identical one is stored already; return its key.

    *url* (the page's final URL) picks the capture used as compression base. Runs in
    the caller's transaction; safe against a concurrent insert of the same body.
    """
    digest = body_sha256(body)
    present = connection.execute(
        sa.select(sa.literal(1)).where(raw_bodies.c.sha256 == digest)
    ).first()
    if present is not None:
        return StoredBody(digest, len(body), None, None)
    base = _find_base(connection, url)
    if base is None:
        encoding = PLAIN
        data = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)
    else:
        base_sha, base_body = base
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, dict_data=_raw_dict(base_body))
        encoding = REFERENCED
        data = bytes.fromhex(base_sha) + compressor.compress(body)
    from scraper.store.dialect import insert

    statement = insert(connection, raw_bodies).on_conflict_do_nothing(index_elements=["sha256"])
    connection.execute(
        statement, {"sha256": digest, "size": len(body), "encoding": encoding, "data": data}
    )
    return StoredBody(digest, len(body), len(data), encoding)


def load_body(connection: Connection, sha256: str) -> bytes:
    """Return the payload stored under *sha256*.

    Raises StoreError when it is missing, its encoding is unknown, or it does not
    decompress to the bytes its key promises.
    """
    encoding, data = _row(connection, sha256)
    if encoding == PLAIN:
        body = zstandard.ZstdDecompressor().decompress(data)
    elif encoding == REFERENCED:
        base_sha = data[:_DIGEST_SIZE].hex()
        base_encoding, base_data = _row(connection, base_sha)
        if base_encoding != PLAIN:
            raise StoreError(f"raw body {sha256}: its base {base_sha} is not a plain body")
        base_body = zstandard.ZstdDecompressor().decompress(base_data)
        decompressor = zstandard.ZstdDecompressor(dict_data=_raw_dict(base_body))
        body = decompressor.decompress(data[_DIGEST_SIZE:])
    else:
        raise StoreError(f"raw body {sha256}: unknown encoding {encoding!r}")
    if body_sha256(body) != sha256:
        raise StoreError(f"raw body {sha256}: stored data does not match its sha256")
    return body


def _row(connection: Connection, sha256: str) -> tuple[str, bytes]:
    row = connection.execute(
        sa.select(raw_bodies.c.encoding, raw_bodies.c.data).where(raw_bodies.c.sha256 == sha256)
    ).first()
    if row is None:
        raise StoreError(f"raw body {sha256} is missing from the database")
    return str(row.encoding), bytes(row.data)


def _find_base(connection: Connection, url: str) -> tuple[str, bytes] | None:
    """Return (sha256, body) of the newest plain-stored capture of *url*, if any."""
    row = connection.execute(
        sa.select(raw_bodies.c.sha256, raw_bodies.c.data)
        .join(raw_pages, raw_pages.c.body_sha256 == raw_bodies.c.sha256)
        .where(raw_pages.c.final_url == url, raw_bodies.c.encoding == PLAIN)
        .order_by(raw_pages.c.fetched_at.desc(), raw_pages.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return str(row.sha256), zstandard.ZstdDecompressor().decompress(bytes(row.data))


def _raw_dict(content: bytes) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(content, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
