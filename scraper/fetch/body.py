"""Reading a response body under a size cap that counts decompressed bytes.

We decompress ourselves (instead of letting httpx do it) so that no single network
chunk can inflate past the cap: zlib is asked for at most the bytes still allowed,
and a gzip bomb is refused after inflating just over the cap, whatever its ratio.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from scraper.errors import FetchError

__all__ = ["ACCEPT_ENCODING", "CappedBody", "read_capped"]

#: What we tell servers we can decode (and so all we need to handle here).
ACCEPT_ENCODING = "gzip, deflate"


class CappedBody(Exception):
    """The body went past the cap; ``partial`` holds the first ``limit`` bytes."""

    def __init__(self, limit: int, partial: bytes) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit
        self.partial = partial


class _Inflater:
    """Streaming gzip/deflate decoder that never returns more than asked for."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._raw_fallback = encoding == "deflate"
        self._decoder = self._new()
        self._started = False
        self._carry = b""

    def _new(self) -> zlib._Decompress:
        # 16 + MAX_WBITS: a gzip member; MAX_WBITS: a zlib stream ("deflate" as sent).
        return zlib.decompressobj(16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS)

    def feed(self, data: bytes, allowed: int) -> bytes:
        """Return up to *allowed* decoded bytes for *data* (plus anything pending)."""
        try:
            out = self._decoder.decompress(data, allowed)
        except zlib.error:
            if self._started or not self._raw_fallback:
                raise
            # Some servers send raw deflate without the zlib header.
            self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._decoder.decompress(data, allowed)
        self._started = True
        if self._decoder.eof and self._decoder.unused_data and self._gzip:
            # A gzip body may hold several members, one after another: the rest is
            # fed again (by the caller, through ``pending``) to a fresh decoder.
            self._carry = self._decoder.unused_data
            self._decoder = self._new()
        return out

    def pending(self) -> bytes:
        """Return input fed but not decoded yet (to feed again), emptying it."""
        tail = self._decoder.unconsumed_tail
        if tail:
            return tail
        carry, self._carry = self._carry, b""
        return carry


def read_capped(chunks: Iterable[bytes], encoding: str, limit: int) -> bytes:
    """Return the decoded body from raw *chunks*, at most *limit* bytes.

    *encoding* is the Content-Encoding ("" or "identity" for none). Raises
    CappedBody as soon as the decoded body would pass *limit*, and FetchError for
    an encoding we cannot decode or a corrupt compressed stream.
    """
    encoding = encoding.strip().lower()
    parts: list[bytes] = []
    total = 0
    if encoding in ("", "identity"):
        for chunk in chunks:
            total += len(chunk)
            if total > limit:
                parts.append(chunk)
                raise CappedBody(limit, b"".join(parts)[:limit])
            parts.append(chunk)
        return b"".join(parts)
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(f"unsupported Content-Encoding {encoding!r}")
    inflater = _Inflater(encoding)
    try:
        for chunk in chunks:
            data = chunk
            while data:
                out = inflater.feed(data, limit - total + 1)
                total += len(out)
                parts.append(out)
                if total > limit:
                    raise CappedBody(limit, b"".join(parts)[:limit])
                data = inflater.pending()
    except zlib.error as error:
        raise FetchError(f"corrupt {encoding} body: {error}") from None
    return b"".join(parts)
