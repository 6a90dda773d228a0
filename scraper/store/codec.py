"""Decoding stored raw bodies (``bodies.py`` describes the encodings), with no database
library: the rows come from whatever read them (SQLAlchemy in ``bodies.py``, the stdlib
``sqlite3`` module in a reparse worker, which so never imports SQLAlchemy).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import zstandard

from scraper.errors import StoreError

__all__ = [
    "DIGEST_SIZE",
    "ENCODINGS",
    "MAX_DEPTH",
    "BodyRow",
    "body_sha256",
    "decode_bodies",
    "decode_body",
    "raw_dict",
    "readable_bodies",
]

#: Encoding → how many bases stand behind a body stored that way.
ENCODINGS = {"zstd": 0, "zstd-ref": 1, "zstd-ref2": 2}
MAX_DEPTH = max(ENCODINGS.values())
#: A referencing body's data starts with its base's sha256 digest (raw bytes).
DIGEST_SIZE = 32

#: A stored body's (encoding, data).
BodyRow = tuple[str, bytes]
#: Reads one body's row by its sha256; raises StoreError when there is none.
FetchRow = Callable[[str], BodyRow]


def body_sha256(body: bytes) -> str:
    """Return the hex sha256 of *body*, the key it is stored under."""
    return hashlib.sha256(body).hexdigest()


def raw_dict(content: bytes) -> zstandard.ZstdCompressionDict:
    """A zstd dictionary of *content* as it is (a base body)."""
    return zstandard.ZstdCompressionDict(content, dict_type=zstandard.DICT_TYPE_RAWCONTENT)


def decode_body(sha256: str, fetch: FetchRow, rows: dict[str, BodyRow] | None = None) -> bytes:
    """Return the payload stored under *sha256*, its row (and its bases') from *rows*
    or else read by *fetch*.

    Raises StoreError when it (or its base) is missing, its encoding is unknown,
    or it does not decompress to the bytes its key promises.
    """
    body = _decode(sha256, MAX_DEPTH, fetch, rows or {}, None)
    _check(sha256, body)
    return body


def decode_bodies(
    digests: Iterable[str], rows: dict[str, BodyRow], fetch: FetchRow
) -> dict[str, bytes]:
    """Return the payloads stored under *digests*, their rows in *rows* (bases outside
    them read by *fetch*, each once). Raises StoreError as ``decode_body`` does."""
    done: dict[str, bytes] = {}
    wanted = sorted(set(digests))
    for sha in wanted:
        _check(sha, _decode(sha, MAX_DEPTH, fetch, rows, done))
    return {sha: done[sha] for sha in wanted}


def readable_bodies(
    digests: Iterable[str], rows: dict[str, BodyRow], fetch: FetchRow
) -> tuple[dict[str, bytes], dict[str, str]]:
    """Return the payloads *digests* name, and for those that cannot be read, why:
    all at once, or one by one when one of them is damaged (the others still come)."""
    wanted = list(digests)
    try:
        return decode_bodies(wanted, rows, fetch), {}
    except StoreError:
        pass
    bodies: dict[str, bytes] = {}
    damaged: dict[str, str] = {}
    for sha in dict.fromkeys(wanted):
        try:
            bodies[sha] = decode_body(sha, fetch, rows)
        except StoreError as error:
            damaged[sha] = error.message
    return bodies, damaged


def _check(sha256: str, body: bytes) -> None:
    if body_sha256(body) != sha256:
        raise StoreError(f"raw body {sha256}: stored data does not match its sha256")


def _decode(
    sha256: str,
    depth_left: int,
    fetch: FetchRow,
    rows: dict[str, BodyRow],
    done: dict[str, bytes] | None,
) -> bytes:
    if done is not None and sha256 in done:
        return done[sha256]
    row = rows.get(sha256)
    encoding, data = row if row is not None else fetch(sha256)
    depth = ENCODINGS.get(encoding)
    if depth is None:
        raise StoreError(f"raw body {sha256}: unknown encoding {encoding!r}")
    if depth > depth_left:
        raise StoreError(f"raw body {sha256}: its chain of bases is too long")
    try:
        if depth == 0:
            body = zstandard.ZstdDecompressor().decompress(data)
        else:
            base_body = _decode(data[:DIGEST_SIZE].hex(), depth - 1, fetch, rows, done)
            decompressor = zstandard.ZstdDecompressor(dict_data=raw_dict(base_body))
            body = decompressor.decompress(data[DIGEST_SIZE:])
    except zstandard.ZstdError as error:
        raise StoreError(f"raw body {sha256}: cannot decompress: {error}") from error
    if done is not None:
        done[sha256] = body
    return body
