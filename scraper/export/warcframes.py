"""WARC records framed and checked before anything reads them.

warcio reads whatever it is given: a record cut short comes out as a shorter
record, and a plain WARC cut inside a record ends in a traceback. So each record
is framed here first, plain or gzipped (a member per record, as every tool
writes, or several records in one member), and checked:

- its block is exactly ``Content-Length`` bytes, followed by the CRLF CRLF that
  ends a record (a file that ends sooner, or a length that does not end there, is
  damage);
- ``WARC-Block-Digest`` and ``WARC-Payload-Digest``, when present, match (sha1,
  sha256, ... in base32, base16 or base64, as warcio accepts them);
- a gzip member inflates to its end with a good CRC.

A damaged record comes out as a ``DamagedRecord`` (offset, record id, reason)
and reading goes on at the next record that can be found (the next gzip member,
or the next ``WARC/1.`` line in a plain file). Memory stays bounded: a block is
kept up to a cap (``ImportSettings.warc_max_block_bytes``) and only digested
beyond it, and inflating is done in slices.
"""

from __future__ import annotations

import base64
import hashlib
import mmap
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scraper.config import ExportSettings, ImportSettings

__all__ = ["DamagedRecord", "WarcRecord", "iter_records", "record_at"]

_GZIP_MAGIC = b"\x1f\x8b\x08"
_END = b"\r\n\r\n"
#: Bytes inflated (or read) at a time, and compressed bytes fed to zlib at a time.
_SLICE = ExportSettings().warc_read_slice
_FEED = ExportSettings().warc_feed_bytes


@dataclass(frozen=True, slots=True)
class WarcRecord:
    """One whole, checked record. ``block`` is None when it was past the size cap.

    ``offset`` is where the record starts in the file (gzipped: where its member
    starts) and ``index`` its place among the records that start in that member.
    """

    offset: int
    index: int
    head: bytes
    block: bytes | None
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """Return the first value of WARC header *name* (any case), or None."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    @property
    def data(self) -> bytes:
        """The record as one plain WARC record, for warcio to read."""
        assert self.block is not None
        return self.head + self.block + _END


@dataclass(frozen=True, slots=True)
class DamagedRecord:
    """A record that failed a check: where it starts, its id when known, and why."""

    offset: int
    record_id: str | None
    reason: str


class _Damage(Exception):
    """This record is damaged; reading may go on at the next one."""


class _Truncated(Exception):
    """The file ends inside this record."""


class _Plain:
    """Bytes of an uncompressed WARC file."""

    def __init__(self, data: mmap.mmap, start: int) -> None:
        self.data = data
        self.pos = start

    @property
    def position(self) -> int:
        return self.pos

    def start(self) -> tuple[int, int] | None:
        while self.data[self.pos : self.pos + 1] in (b"\r", b"\n"):
            self.pos += 1  # the blank lines between records
        return None if self.pos >= len(self.data) else (self.pos, 0)

    def read(self, size: int) -> bytes:
        chunk = self.data[self.pos : self.pos + size]
        self.pos += len(chunk)
        return chunk

    def readline(self, limit: int) -> bytes:
        end = self.data.find(b"\n", self.pos, self.pos + limit)
        return self.read(end + 1 - self.pos if end >= 0 else limit)

    def resync(self, after: int) -> bool:
        found = self.data.find(b"\nWARC/1.", after + 1)
        self.pos = found + 1 if found >= 0 else len(self.data)
        return found >= 0


class _Gzip:
    """The inflated bytes of a gzipped WARC file, member after member."""

    def __init__(self, data: mmap.mmap, start: int) -> None:
        self.data = data
        self.next_in = start  # where the bytes not yet fed to zlib start
        self.pending = b""
        self.inflater: zlib._Decompress | None = None
        self.buffer = bytearray()
        self.member = start
        self.in_member = 0

    def _more(self) -> bool:
        """Inflate some more into the buffer; False at a clean end of the file."""
        if self.inflater is None:
            rest = self.data[self.next_in : self.next_in + 512]
            if not rest.strip(b"\x00\r\n \t"):
                return False
            if not rest.startswith(_GZIP_MAGIC):
                if len(rest) < len(_GZIP_MAGIC) and _GZIP_MAGIC.startswith(rest):
                    raise _Truncated("the file ends inside its gzip member")
                raise _Damage("not a gzip member where one should start")
            self.inflater = zlib.decompressobj(wbits=31)
            self.member, self.in_member = self.next_in, 0
        if not self.pending:
            self.pending = self.data[self.next_in : self.next_in + _FEED]
            self.next_in += len(self.pending)
            if not self.pending:
                raise _Truncated("the file ends inside its gzip member")
        try:
            self.buffer += self.inflater.decompress(self.pending, _SLICE)
        except zlib.error as error:
            raise _Damage(f"corrupt gzip data ({error})") from None
        self.pending = self.inflater.unconsumed_tail
        if self.inflater.eof:
            self.next_in -= len(self.inflater.unused_data) + len(self.pending)
            self.inflater, self.pending = None, b""
        return True

    @property
    def position(self) -> int:
        return self.member if self.buffer or self.inflater is not None else self.next_in

    def start(self) -> tuple[int, int] | None:
        while True:
            while bytes(self.buffer[:1]) in (b"\r", b"\n"):
                del self.buffer[:1]
            if self.buffer:
                self.in_member += 1
                return self.member, self.in_member - 1
            if not self._more():
                return None

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size and self._more():
            pass
        chunk = bytes(self.buffer[:size])
        del self.buffer[:size]
        return chunk

    def readline(self, limit: int) -> bytes:
        end = self.buffer.find(b"\n", 0, limit)
        while end < 0 and len(self.buffer) < limit and self._more():
            end = self.buffer.find(b"\n", 0, limit)
        return self.read(end + 1 if end >= 0 else limit)

    def finish(self) -> None:
        """Inflate the rest of the member a record ended in, so its CRC is checked
        before the record is taken (a cut in the gzip trailer is a cut record)."""
        while not self.buffer and self.inflater is not None:
            self._more()

    def record_id(self, member: int) -> str | None:
        """The WARC-Record-ID of a damaged member, from what inflates before the damage."""
        inflater, out = zlib.decompressobj(wbits=31), b""
        for start in range(member, min(len(self.data), member + 65536), 256):
            try:
                out += inflater.decompress(self.data[start : start + 256])
            except zlib.error:
                break
            if _END in out or inflater.eof:
                break
        if _END not in out:
            return None  # the headers themselves are cut: no id to trust
        head = out.split(_END, 1)[0] + b"\r\n"
        found = re.search(rb"\r\nWARC-Record-ID:[ \t]*(\S+)\r\n", head, re.I)
        return found[1].decode("ascii", "replace") if found else None

    def resync(self, after: int) -> bool:
        found = self.data.find(_GZIP_MAGIC, after + 1)
        self.next_in = found if found >= 0 else len(self.data)
        self.inflater, self.pending, self.buffer = None, b"", bytearray()
        return found >= 0


def iter_records(
    path: Path, settings: ImportSettings | None = None
) -> Iterator[WarcRecord | DamagedRecord]:
    """Yield each record of the WARC file at *path*, whole and checked, or as damaged.

    Raises OSError when the file cannot be read.
    """
    yield from _records(path, 0, settings or ImportSettings())


def record_at(path: Path, offset: int, index: int) -> WarcRecord | None:
    """Return the *index*-th record starting at *offset* (as ``WarcRecord`` gave them)."""
    for number, record in enumerate(_records(path, offset, ImportSettings())):
        if number == index:
            return record if isinstance(record, WarcRecord) else None
    return None


def _records(
    path: Path, start: int, settings: ImportSettings
) -> Iterator[WarcRecord | DamagedRecord]:
    with path.open("rb") as stream:
        if path.stat().st_size == 0:
            return
        with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
            gzipped = data[start : start + 3] == _GZIP_MAGIC
            source: _Plain | _Gzip = _Gzip(data, start) if gzipped else _Plain(data, start)
            while True:
                offset, index = source.position, 0
                headers: list[tuple[str, str]] = []
                try:
                    begun = source.start()
                    if begun is None:
                        return
                    offset, index = begun
                    record = _record(source, offset, index, headers, settings)
                except (_Truncated, _Damage) as error:
                    found = _id(headers)
                    if found is None and isinstance(source, _Gzip):
                        found = source.record_id(offset)
                    yield DamagedRecord(offset, found, str(error))
                    if isinstance(error, _Truncated) or not source.resync(offset):
                        return
                    continue
                yield record


def _id(headers: list[tuple[str, str]]) -> str | None:
    return next((v for k, v in headers if k.lower() == "warc-record-id"), None)


def _record(
    source: _Plain | _Gzip,
    offset: int,
    index: int,
    headers: list[tuple[str, str]],
    settings: ImportSettings,
) -> WarcRecord:
    """Read one record; *headers* is filled as they are read (for the damage report)."""
    head = _head(source, headers, settings.max_head_bytes)
    fields = {name.lower(): value for name, value in reversed(headers)}
    try:
        length = int(fields.get("content-length", ""))
    except ValueError:
        raise _Damage("no valid Content-Length") from None
    if length < 0:
        raise _Damage("no valid Content-Length")
    block, digests = _block(
        source, length, settings.warc_max_block_bytes, fields, settings.max_head_bytes
    )
    closing = source.read(4)
    if closing != _END:
        if len(closing) < 4 and _END.startswith(closing):
            raise _Truncated(f"the file ends inside it (before the end of its {length} bytes)")
        raise _Damage(f"its Content-Length ({length}) does not end where the record ends")
    for problem in digests.problems():
        raise _Damage(problem)
    if isinstance(source, _Gzip):
        source.finish()
    return WarcRecord(offset, index, head, block, tuple(headers))


def _head(source: _Plain | _Gzip, headers: list[tuple[str, str]], limit: int) -> bytes:
    lines: list[bytes] = []
    size = 0
    while True:
        line = source.readline(limit)
        size += len(line)
        if not line.endswith(b"\n"):
            if size >= limit:
                raise _Damage("its WARC headers run past the size limit")
            raise _Truncated("the file ends inside its WARC headers")
        lines.append(line)
        if len(lines) == 1:
            if not line.startswith(b"WARC/"):
                raise _Damage("no WARC record starts here")
            continue
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)
        if size >= limit:
            raise _Damage("its WARC headers run past the size limit")
        name, colon, value = line.decode("utf-8", "replace").partition(":")
        if colon:
            headers.append((name.strip(), value.strip()))


class _Digests:
    """The block and payload digests a record declares, computed as it is read."""

    def __init__(self, fields: dict[str, str], head_limit: int) -> None:
        self.block = _digester(fields.get("warc-block-digest"))
        # A revisit's payload digest is its original's; a request's payload is not ours.
        checked = fields.get("warc-type", "") in ("response", "resource")
        self.payload = _digester(fields.get("warc-payload-digest")) if checked else None
        http = "application/http" in fields.get("content-type", "").lower()
        # An HTTP block's payload starts after its header block (as warcio counts it).
        self.http_head: bytearray | None = bytearray() if http else None
        self.head_limit = head_limit

    def update(self, chunk: bytes) -> None:
        if self.block is not None:
            self.block[1].update(chunk)
        if self.payload is None:
            return
        if self.http_head is not None:
            self.http_head += chunk
            found = self.http_head.find(_END)
            if found < 0:
                if len(self.http_head) > self.head_limit:
                    self.payload = None  # no header block: nothing to check it against
                return
            chunk = bytes(self.http_head[found + 4 :])
            self.http_head = None
        self.payload[1].update(chunk)

    def problems(self) -> list[str]:
        found = []
        for name, digest in (("block", self.block), ("payload", self.payload)):
            if digest is not None and not _same(digest[0], digest[1].digest()):
                found.append(f"its {name} digest does not match ({digest[0]})")
        return found


def _digester(value: str | None) -> tuple[str, hashlib._Hash] | None:
    if not value or ":" not in value:
        return None
    algorithm = value.split(":", 1)[0].strip().lower().replace("-", "")
    try:
        return value.strip(), hashlib.new(algorithm)
    except ValueError:
        return None  # an algorithm we cannot compute: nothing to check it with


def _same(declared: str, digest: bytes) -> bool:
    value = declared.split(":", 1)[1].strip()
    forms = {base64.b32encode(digest).decode(), digest.hex(), base64.b64encode(digest).decode()}
    forms.add(base64.urlsafe_b64encode(digest).decode())
    stripped = {form.rstrip("=") for form in forms}
    return value in forms or value.rstrip("=") in stripped or value.lower() == digest.hex()


def _block(
    source: _Plain | _Gzip, length: int, cap: int, fields: dict[str, str], head_limit: int
) -> tuple[bytes | None, _Digests]:
    digests = _Digests(fields, head_limit)
    kept: list[bytes] | None = [] if length <= cap else None
    left = length
    while left:
        chunk = source.read(min(left, _SLICE))
        if not chunk:
            raise _Truncated(f"the file ends inside it ({length - left} of {length} bytes)")
        digests.update(chunk)
        if kept is not None:
            kept.append(chunk)
        left -= len(chunk)
    return (b"".join(kept) if kept is not None else None), digests
