"""A wall-clock deadline on a whole HTTP exchange: connect, headers and body.

httpx's read timeout starts again with every byte that arrives, so a server that
drips its status line and headers a byte a second never trips it. Here every socket
operation of the connection pool asks ``DeadlineBackend`` how long the current
request may still take and never waits past that: the network backend given to
httpcore wraps each stream so that its reads and writes use
``min(timeout, time left)`` and fail with a timeout once no time is left.

The deadline is per thread (``DeadlineBackend.within``), since a connection kept
alive serves several requests, each with its own deadline. The backend also notes
when this thread last finished writing (``sent_ago``): the moment a request left,
which the throttle counts the host's next interval from, and tells it (``on_sent``).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import httpcore
import httpx
from httpcore import NetworkBackend, NetworkStream

__all__ = ["DeadlineBackend", "deadline_transport", "tls_context"]

_SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class DeadlineBackend(NetworkBackend):
    """httpcore's sync backend with a per-thread deadline on every socket operation."""

    def __init__(self, *, on_sent: Callable[[], None] | None = None) -> None:
        self._inner = httpcore.SyncBackend()
        self._local = threading.local()
        self._on_sent = on_sent

    @contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        """Run the block with at most *seconds* (from now) for its socket operations."""
        previous = getattr(self._local, "deadline", None)
        deadline = time.monotonic() + max(seconds, 0.0)
        if previous is not None:
            deadline = min(deadline, previous)
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = previous

    def sent_ago(self) -> float | None:
        """Seconds since this thread's last write finished (None: no write yet)."""
        sent: float | None = getattr(self._local, "sent", None)
        return None if sent is None else time.monotonic() - sent

    def forget_sent(self) -> None:
        """Start a new request: its own write will say when it left."""
        self._local.sent = None

    def note_sent(self) -> None:
        self._local.sent = time.monotonic()
        if self._on_sent is not None:
            self._on_sent()

    def left(self, timeout: float | None, error: type[Exception]) -> float | None:
        """Return *timeout* cut to the time left; raise *error* when none is left."""
        deadline: float | None = getattr(self._local, "deadline", None)
        if deadline is None:
            return timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise error("the request's total time ran out")
        return remaining if timeout is None else min(timeout, remaining)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> NetworkStream:
        wait = self.left(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, wait, local_address, socket_options)
        return _DeadlineStream(stream, self)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> NetworkStream:  # pragma: no cover - we never use unix sockets
        wait = self.left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, wait, socket_options), self)

    def sleep(self, seconds: float) -> None:  # pragma: no cover - used by httpcore retries only
        time.sleep(seconds)


class _DeadlineStream(NetworkStream):
    def __init__(self, stream: NetworkStream, backend: DeadlineBackend) -> None:
        self._stream = stream
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wait = self._backend.left(timeout, httpcore.ReadTimeout)
        return self._stream.read(max_bytes, wait)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        wait = self._backend.left(timeout, httpcore.WriteTimeout)
        self._stream.write(buffer, wait)
        self._backend.note_sent()

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NetworkStream:
        wait = self._backend.left(timeout, httpcore.ConnectTimeout)
        secured = self._stream.start_tls(ssl_context, server_hostname, wait)
        return _DeadlineStream(secured, self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


@cache
def tls_context() -> ssl.SSLContext:
    """The one verifying TLS context of this process (httpx's default: certifi's CA
    bundle, no environment). Loading the bundle costs about 50 ms, and one context
    serves any number of connections and threads, so every fetcher shares it."""
    return httpx.create_ssl_context(trust_env=False)


def deadline_transport(backend: DeadlineBackend) -> httpx.HTTPTransport:
    """Return httpx's default transport, its connection pool using *backend*.

    httpx does not take a network backend, so the pool it built is replaced by one
    built the same way with ours (httpx is pinned; ``tests/test_fetch.py`` holds a
    server dripping its headers to catch a change).
    """
    context = tls_context()
    transport = httpx.HTTPTransport(verify=context, trust_env=False)
    limits = httpx.Limits()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    return transport
