"""A scriptable web site on 127.0.0.1 for every test that fetches.

A threaded ``http.server`` on a free port, serving routes you script, and keeping
a thread-safe log of every request as the SERVER saw it (monotonic arrival time,
method, path with query, headers), so tests assert politeness from the site's side.

Use it as a context manager::

    from siteserver import ARRIVAL_JITTER, Reply, serve

    with serve() as site:
        site.robots("User-agent: *\\nDisallow: /private\\nCrawl-delay: 0.2\\n")
        site.page("/anime/1/X/reviews", html_text)             # 200 text/html
        site.sequence("/flaky", [Reply.status(503), Reply.html("ok")])  # 503 then 200
        site.route("/slow", Reply.html("late", delay=2.0))    # headers after 2 s
        url = site.url("/anime/1/X/reviews")
        ...
        assert min(site.log.gaps("/anime/")) >= 0.2 - ARRIVAL_JITTER  # arrival gaps
        assert site.log.count("/private") == 0
        assert site.log.all()[0].header("User-Agent").startswith("review-archiver/")

or in a test module, as a fixture (do not import a fixture by name: ruff reads it
as a redefinition)::

    @pytest.fixture
    def site() -> Iterator[Site]:
        with serve() as running:
            yield running

Routes are matched on the full path with its query first, then on the path alone;
anything else is a 404 HTML page. Routes may be added while the server runs.

Replies (``Reply`` constructors): ``html``, ``text`` (any content type),
``trickling`` (a body sent a few bytes at a time, each within the read timeout),
``status`` (e.g. 404, 503 with ``retry_after``), ``redirect``, ``truncated`` (a
Content-Length larger than what is sent, then the connection closes), ``endless``
(chunked, stops only when the client hangs up or ``limit`` bytes went out),
``gzip_bomb`` (a small gzip body that inflates to ``size`` bytes), ``dripping_headers``
(status line and headers sent a byte at a time, each byte within the read timeout),
``hang_up`` (the connection closed without an answer); any of them
``.slow(seconds)`` (a wait before the status line) or ``.with_headers(...)``. ``site.page(...,
etag=..., last_modified=...)`` answers 304 to a matching If-None-Match /
If-Modified-Since. ``site.sequence`` plays replies in order, repeating the last.
``site.files({path: file})`` / ``site.folder(dir, path_of)`` serve saved pages.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path

__all__ = ["ARRIVAL_JITTER", "LoggedRequest", "Reply", "RequestLog", "Site", "serve"]

#: How much shorter than the client's spacing a gap in the log may read. Arrival
#: times are the kernel's receive times (see ``_Handler.handle_one_request``), so a
#: server thread woken late does not shorten a gap; a client whose request leaves
#: late after its turn began can, within the throttles' allowance. Both throttles
#: count an interval from a quick answer (scraper.fetch.throttle), which the server
#: sent after logging the request, so on loopback the gaps hold without it; the
#: Fetcher tests keep it for requests whose answers are slow (then intervals count
#: from the start), and it still catches any real shortfall.
ARRIVAL_JITTER = 0.01

#: Linux's SO_TIMESTAMPNS (also the SCM type of its ancillary data); Python 3.11's
#: socket module does not name it.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)

HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    """One scripted response."""

    code: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay: float = 0.0
    #: Content-Length to announce when it differs from len(body) (a truncated body).
    declared_length: int | None = None
    #: Stream this many bytes of filler with chunked encoding (an endless body).
    stream_bytes: int | None = None
    #: Send the body in chunks of ``trickle_bytes`` with ``trickle`` seconds between them.
    trickle: float = 0.0
    trickle_bytes: int = 1
    #: Send the status line and headers one byte every ``header_drip`` seconds.
    header_drip: float = 0.0
    #: Close the connection without answering.
    hang_up: bool = False

    @classmethod
    def html(
        cls, body: str | bytes, *, code: int = 200, delay: float = 0.0, **headers: str
    ) -> Reply:
        """An HTML page (``headers`` given as keyword args, ``_`` for ``-``)."""
        return cls.text(body, HTML, code=code, delay=delay, **headers)

    @classmethod
    def text(
        cls,
        body: str | bytes,
        content_type: str,
        *,
        code: int = 200,
        delay: float = 0.0,
        **headers: str,
    ) -> Reply:
        data = body.encode() if isinstance(body, str) else body
        pairs = [("Content-Type", content_type), *_header_pairs(headers)]
        return cls(code=code, headers=tuple(pairs), body=data, delay=delay)

    @classmethod
    def status(
        cls, code: int, *, retry_after: str | float | None = None, delay: float = 0.0
    ) -> Reply:
        """An error page with *code*, with a Retry-After header when given."""
        headers = [("Content-Type", HTML)]
        if retry_after is not None:
            value = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
            headers.append(("Retry-After", value))
        body = f"<html><body><h1>{code}</h1></body></html>".encode()
        return cls(code=code, headers=tuple(headers), body=body, delay=delay)

    @classmethod
    def redirect(cls, location: str, *, code: int = 302) -> Reply:
        return cls(code=code, headers=(("Location", location),))

    @classmethod
    def truncated(cls, body: str | bytes, *, declared: int) -> Reply:
        """Announce *declared* bytes, send *body* (fewer), then close the connection."""
        return replace(cls.html(body), declared_length=declared)

    @classmethod
    def trickling(cls, body: str | bytes, *, every: float, size: int = 1) -> Reply:
        """An HTML page sent *size* bytes at a time, *every* seconds (a crawling server)."""
        return replace(cls.html(body), trickle=every, trickle_bytes=size)

    @classmethod
    def endless(cls, *, limit: int = 2**31, content_type: str = HTML) -> Reply:
        """A chunked body of filler that stops only when the client leaves (or at *limit*)."""
        return cls(headers=(("Content-Type", content_type),), stream_bytes=limit)

    @classmethod
    def dripping_headers(cls, body: str | bytes = "<p>late</p>", *, every: float) -> Reply:
        """An HTML page whose status line and headers come one byte every *every* s."""
        padded = replace(cls.html(body), header_drip=every)
        return padded.with_headers(X_Padding="p" * 400)

    @classmethod
    def closed(cls) -> Reply:
        """No answer at all: the connection is closed as soon as the request is read."""
        return cls(hang_up=True)

    @classmethod
    def gzip_bomb(cls, size: int = 1 << 28) -> Reply:
        """A gzip-encoded HTML body (~256 KiB) that inflates to *size* bytes (256 MiB)."""
        headers = (("Content-Type", HTML), ("Content-Encoding", "gzip"))
        return cls(headers=headers, body=_bomb(size))

    def with_headers(self, **headers: str) -> Reply:
        """This reply with more headers (``_`` in a name stands for ``-``)."""
        return replace(self, headers=self.headers + tuple(_header_pairs(headers)))

    def slow(self, seconds: float) -> Reply:
        """This reply, sent only after *seconds* (a slow server)."""
        return replace(self, delay=seconds)


def _header_pairs(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(name.replace("_", "-"), value) for name, value in headers.items()]


@lru_cache(maxsize=4)
def _bomb(size: int) -> bytes:
    # One megabyte of zeros deflates to the same bytes every time once the stream is
    # fully flushed before it (no history to refer back to), so the body is those
    # bytes repeated, not 256 MB run through zlib (a second and a half).
    prefix, block = b"<html><body>", b"\0" * (1 << 20)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [deflate.compress(prefix) + deflate.flush(zlib.Z_FULL_FLUSH)]
    whole, rest = divmod(size - len(prefix), len(block))
    chunk = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    parts += [chunk] * whole
    parts.append(deflate.compress(block[:rest]) + deflate.flush())
    crc = zlib.crc32(prefix)
    for _ in range(whole):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(block[:rest], crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip, deflate, no name
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + b"".join(parts) + trailer


@dataclass(frozen=True)
class LoggedRequest:
    """A request as the server received it."""

    at: float  # epoch seconds when the kernel received the request's first bytes
    method: str
    path: str  # with the query string
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


class RequestLog:
    """Thread-safe list of the requests the site received, in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[LoggedRequest] = []

    def add(self, item: LoggedRequest) -> None:
        with self._lock:
            self._items.append(item)

    def all(self, prefix: str = "") -> list[LoggedRequest]:
        """The requests whose path starts with *prefix*, in arrival order."""
        with self._lock:
            return [item for item in self._items if item.path.startswith(prefix)]

    def paths(self, prefix: str = "") -> list[str]:
        return [item.path for item in self.all(prefix)]

    def gaps(self, prefix: str = "") -> list[float]:
        """Seconds between consecutive arrivals of requests under *prefix*."""
        times = [item.at for item in self.all(prefix)]
        return [later - earlier for earlier, later in pairwise(times)]

    def count(self, path: str) -> int:
        return sum(1 for item in self.all() if item.path == path)


@dataclass
class _Route:
    replies: list[Reply]
    etag: str | None = None
    last_modified: str | None = None
    served: int = 0

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


@dataclass
class Site:
    """The scripted site; ``url(path)`` gives an absolute URL on the running server."""

    base: str = ""
    log: RequestLog = field(default_factory=RequestLog)
    _routes: dict[str, _Route] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: Paths whose answers wait (see ``holding``); "" while nothing is held.
    _held_prefix: str = ""
    _released: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def holding(self, prefix: str) -> Iterator[None]:
        """Keep requests for paths under *prefix* waiting for their answers until the
        block ends (they are logged on arrival): a client stays mid-request for as long
        as a test needs, instead of a guessed delay."""
        self._released.clear()
        self._held_prefix = prefix
        try:
            yield
        finally:
            self._held_prefix = ""
            self._released.set()

    def _wait_if_held(self, path: str) -> None:
        prefix = self._held_prefix
        if prefix and path.startswith(prefix):
            self._released.wait(timeout=120)

    def url(self, path: str = "/") -> str:
        return f"{self.base}{path}"

    @property
    def host(self) -> str:
        """``scheme://netloc`` of the site (its host key)."""
        return self.base

    def route(self, path: str, reply: Reply) -> None:
        """Answer every request for *path* with *reply*."""
        self.sequence(path, [reply])

    def sequence(self, path: str, replies: Sequence[Reply]) -> None:
        """Answer requests for *path* with *replies* in turn, repeating the last."""
        with self._lock:
            self._routes[path] = _Route(list(replies))

    def page(
        self,
        path: str,
        body: str | bytes,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        content_type: str = HTML,
    ) -> None:
        """Serve an HTML (or other) page, with validators that earn a 304 when sent back."""
        headers = {}
        if etag:
            headers["ETag"] = etag
        if last_modified:
            headers["Last-Modified"] = last_modified
        with self._lock:
            reply = Reply.text(body, content_type, **headers)
            self._routes[path] = _Route([reply], etag=etag, last_modified=last_modified)

    def robots(self, text: str | None = None, *, code: int = 200) -> None:
        """Serve ``/robots.txt``: *text* with 200, or an error page with *code*."""
        if text is None or code != 200:
            self.route("/robots.txt", Reply.status(code))
        else:
            self.route("/robots.txt", Reply.text(text, "text/plain"))

    def files(self, mapping: Mapping[str, Path]) -> None:
        """Serve each file's bytes as HTML under its path (``{"/anime/1/X/reviews": file}``)."""
        for path, file in mapping.items():
            self.page(path, Path(file).read_bytes())

    def folder(self, folder: Path, path_of: Callable[[Path], str]) -> list[str]:
        """Serve every ``*.html`` below *folder* at ``path_of(file)``; return the paths."""
        mapping = {path_of(file): file for file in sorted(Path(folder).rglob("*.html"))}
        self.files(mapping)
        return list(mapping)

    def _lookup(self, path: str) -> _Route | None:
        with self._lock:
            return self._routes.get(path) or self._routes.get(path.split("?", 1)[0])

    def _answer(self, path: str, headers: Mapping[str, str]) -> Reply:
        route = self._lookup(path)
        if route is None:
            return Reply.status(404)
        with self._lock:
            reply = route.next_reply()
        if route.etag and headers.get("if-none-match") == route.etag:
            return Reply(code=304, headers=(("ETag", route.etag),))
        if route.last_modified and headers.get("if-modified-since") == route.last_modified:
            return Reply(code=304, headers=(("Last-Modified", route.last_modified),))
        return reply


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "siteserver/1"
    site: Site  # set on a subclass per server

    def log_message(self, format: str, *args: object) -> None:
        return  # tests read the RequestLog, not stderr

    def handle_one_request(self) -> None:
        # Stamp the request with the kernel's receive time before reading it: a time
        # read once this thread runs would be late by however long a loaded machine
        # took to wake it, and a late stamp followed by a prompt one reads as a gap
        # shorter than the client kept.
        self._arrived = self._receive_time()
        super().handle_one_request()

    def _receive_time(self) -> float:
        """When the next request's first bytes arrived (waiting for them), in epoch
        seconds; now, where the kernel gives no timestamp."""
        try:
            _, ancillary, _, _ = self.connection.recvmsg(1, socket.CMSG_SPACE(16), socket.MSG_PEEK)
        except OSError:
            return time.time()
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
                seconds, nanoseconds = struct.unpack("qq", data[:16])
                return float(seconds) + nanoseconds / 1e9
        return time.time()

    def do_GET(self) -> None:
        pairs = tuple((k, v) for k, v in self.headers.items())
        self.site.log.add(LoggedRequest(self._arrived, self.command, self.path, pairs))
        self.site._wait_if_held(self.path)
        lowered = {k.lower(): v for k, v in pairs}
        reply = self.site._answer(self.path, lowered)
        try:
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client left: nothing to do

    def _send(self, reply: Reply) -> None:
        if reply.delay:
            # Counted from the request's arrival: the time this server took to wake up
            # and build the reply is part of the answer's time, not added to it.
            time.sleep(max(0.0, self._arrived + reply.delay - time.time()))
        if reply.hang_up:
            self.close_connection = True
            return
        if reply.header_drip:
            self._drip_headers(reply)
            return
        self.send_response(reply.code)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.stream_bytes is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._stream(reply.stream_bytes)
            return
        declared = reply.declared_length if reply.declared_length is not None else len(reply.body)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        if reply.trickle:
            self._trickle(reply)
        else:
            self.wfile.write(reply.body)
        if declared != len(reply.body):
            self.wfile.flush()
            self.close_connection = True

    def _drip_headers(self, reply: Reply) -> None:
        lines = [f"HTTP/1.1 {reply.code} OK"]
        lines += [f"{name}: {value}" for name, value in reply.headers]
        lines.append(f"Content-Length: {len(reply.body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        for byte in range(len(head)):
            self.wfile.write(head[byte : byte + 1])
            self.wfile.flush()
            time.sleep(reply.header_drip)
        self.wfile.write(reply.body)
        self.close_connection = True

    def _trickle(self, reply: Reply) -> None:
        body, size = reply.body, max(reply.trickle_bytes, 1)
        for start in range(0, len(body), size):
            self.wfile.write(body[start : start + size])
            self.wfile.flush()
            time.sleep(reply.trickle)

    def _stream(self, limit: int) -> None:
        chunk = b"<p>" + b"x" * 65533
        sent = 0
        while sent < limit:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def server_bind(self) -> None:
        # Accepted connections inherit the option, so even a request that arrives
        # before its connection is accepted carries its receive time.
        with suppress(OSError):  # no kernel timestamps: arrivals are stamped when read
            self.socket.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        super().server_bind()

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client hanging up mid-reply is what several tests do on purpose


@contextmanager
def serve(site: Site | None = None) -> Iterator[Site]:
    """Run *site* (a new empty one by default) on 127.0.0.1 until the block ends."""
    site = site or Site()
    handler = type("Handler", (_Handler,), {"site": site})
    server = _Server(("127.0.0.1", 0), handler)
    host, port = server.server_address[:2]
    site.base = f"http://{host}:{port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
