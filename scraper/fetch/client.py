"""The Fetcher: the only object in review-archiver that talks to the network.

One ``fetch(url)`` is: check the URL, then for each redirect hop (at most
``max_redirects``, loops refused) ask robots.txt, wait for the host's turn, send
the request (retrying transient failures with backoff, each retry waiting its turn
again) and read the body under the size cap. What comes back is a ``FetchedPage``;
every failure is one of the ``FetchError`` classes of ``scraper.errors``.

Time is bounded at three levels: each request has one wall-clock deadline for
connect, headers and body (``Timeouts.total``; robots.txt ``Timeouts.robots``), see
``scraper.fetch.deadline``; one URL's attempts and waits together stay within
``FetchSettings.max_url_time``; a refused connection is retried once, quickly.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self
from urllib.parse import urljoin

import httpx

from scraper.config import CrawlSettings, FetchSettings
from scraper.errors import (
    BadURL,
    BodyTooLarge,
    ConnectionRefused,
    FetchError,
    HTTPStatusError,
    NotHTML,
    RateLimited,
    RobotsDisallowed,
    TooManyRedirects,
    TransientFetchError,
    UsageError,
)
from scraper.fetch.body import ACCEPT_ENCODING, CappedBody, read_capped
from scraper.fetch.deadline import DeadlineBackend, deadline_transport
from scraper.fetch.retry import parse_retry_after, retry_call
from scraper.fetch.robots import (
    REFUSED,
    RobotsCache,
    RobotsFile,
    RobotsPolicy,
    capped_crawl_delay,
)
from scraper.fetch.throttle import LocalThrottle, Throttle
from scraper.fetch.urls import canonicalize, host_key, require_http
from scraper.records import FetchedPage

__all__ = ["HTML_TYPES", "PACING_MARGIN", "Fetcher", "honest_user_agent"]

#: Content types we accept as pages; anything else is refused as NotHTML.
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_DELAY = CrawlSettings().delay
#: Added once to every non-zero interval, against clock rounding (see FetchSettings).
PACING_MARGIN = FetchSettings().pacing_margin
_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"


def honest_user_agent(user_agent: str) -> str:
    """Return *user_agent* stripped, if it honestly names a tool rather than a browser.

    Raises UsageError for an empty string, one with line breaks, or one that
    pretends to be a browser (``Mozilla/...``): sites must be able to tell who we are.
    """
    text = user_agent.strip()
    if not text or "\n" in text or "\r" in text:
        raise UsageError("the user agent must be one non-empty line naming your tool")
    if text.lower().startswith("mozilla/"):
        raise UsageError(
            f"user agent {text!r} looks like a browser's: name your tool and a contact URL, "
            "e.g. 'mybot/1.0 (+https://example.org/contact)'"
        )
    return text


@dataclass(frozen=True, slots=True)
class _Hop:
    """One HTTP answer: the request sent and what came back (body already capped)."""

    url: str
    status: int
    headers: tuple[tuple[str, str], ...]
    request_headers: tuple[tuple[str, str], ...]
    body: bytes
    at: datetime

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def _pairs(raw: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)


class Fetcher:
    """Fetches pages politely. Use it as a context manager (it holds a connection pool).

    ``delay`` is the minimum interval between request starts to one host; a
    robots.txt Crawl-delay larger than it wins. ``throttle`` and ``robots`` default
    to in-process ones; ``transport`` replaces httpx's network transport; ``sleep``
    is what retry waits call (tests inject a fast or recording one);
    ``total_timeout`` bounds one attempt, headers and body together (default
    ``settings.timeouts.total``); ``on_sent`` is called each time a request has left
    (its bytes written), in the thread that sent it.
    """

    def __init__(
        self,
        settings: FetchSettings | None = None,
        *,
        delay: float = _DEFAULT_DELAY,
        throttle: Throttle | None = None,
        robots: RobotsPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random_fraction: Callable[[], float] = random.random,
        total_timeout: float | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings or FetchSettings()
        self.total_timeout = total_timeout or self.settings.timeouts.total
        self.delay = max(delay, 0.0)
        self.throttle: Throttle = throttle or LocalThrottle()
        if robots is None:
            robots = RobotsCache(self.settings)
        self.robots: RobotsPolicy = robots
        self._sleep = sleep
        self._random = random_fraction
        timeouts = self.settings.timeouts
        self._deadline = DeadlineBackend(on_sent=on_sent)
        self._client = httpx.Client(
            transport=transport or deadline_transport(self._deadline),
            follow_redirects=False,  # each hop is robots-checked and throttled here
            timeout=httpx.Timeout(
                connect=timeouts.connect,
                read=timeouts.read,
                write=timeouts.write,
                pool=timeouts.pool,
            ),
            headers={
                "User-Agent": self.settings.user_agent,
                "Accept": _ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            trust_env=False,  # no proxies or netrc picked up from the environment
        )
        # Last: once bound, another thread sharing the cache may call load_robots at
        # once, so everything it uses must exist by then.
        self._bind_robots()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (and stop lending it to a shared RobotsCache)."""
        if isinstance(self.robots, RobotsCache) and self.robots.loader == self.load_robots:
            self.robots.loader = None
        self._client.close()

    def _bind_robots(self) -> None:
        # A RobotsCache shared by several Fetchers (crawl workers) loads through
        # whichever open Fetcher binds it; a closing Fetcher unbinds itself.
        if isinstance(self.robots, RobotsCache) and self.robots.loader is None:
            self.robots.loader = self.load_robots

    def interval(self, host: str) -> float:
        """Return the seconds to keep between request starts to *host* (a host key):
        the larger of ``delay`` and robots.txt's Crawl-delay, plus a small margin."""
        return _paced(max(self.delay, self.robots.crawl_delay(host) or 0.0))

    def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchedPage:
        """Return the page at *url*, following redirects; a 304 comes back with status 304.

        *etag* / *last_modified* are sent as If-None-Match / If-Modified-Since on
        the first hop. Raises BadURL, RobotsDisallowed, NotHTML, BodyTooLarge,
        TooManyRedirects, HTTPStatusError (a final 4xx), RateLimited or
        TransientFetchError (after retries, or when robots.txt is unreadable).
        """
        requested = require_http(url)
        conditional: dict[str, str] = {}
        if etag:
            conditional["If-None-Match"] = etag
        if last_modified:
            conditional["If-Modified-Since"] = last_modified
        with self._deadline.within(self.settings.max_url_time):
            return self._follow(requested, conditional)

    def _follow(self, requested: str, conditional: dict[str, str]) -> FetchedPage:
        current = requested
        seen = {canonicalize(current)}
        for _ in range(self.settings.max_redirects + 1):
            self._check_robots(current)
            hop = self._request(current, conditional)
            if hop.status == 304 and not conditional:
                # Nothing of ours to be "not modified" from: a broken cache or server.
                raise HTTPStatusError(
                    "304 to a request that was not conditional", url=current, status=304
                )
            if hop.status not in _REDIRECTS:
                return self._page(requested, hop)
            location = hop.header("location")
            if not location:
                raise HTTPStatusError(
                    f"{hop.status} redirect without a Location", url=current, status=hop.status
                )
            try:
                target = require_http(urljoin(current, location))
            except BadURL as error:
                raise BadURL(f"redirected to a bad URL: {error.message}", url=requested) from None
            key = canonicalize(target)
            if key in seen:
                raise TooManyRedirects(f"redirect loop: {current} -> {target}", url=requested)
            seen.add(key)
            current, conditional = target, {}
        raise TooManyRedirects(
            f"more than {self.settings.max_redirects} redirects (last: {current})", url=requested
        )

    def _check_robots(self, url: str) -> None:
        self._bind_robots()
        if self.robots.allowed(url):
            return
        host = host_key(url)
        reason = self.robots.unavailable(host)
        if reason is not None:
            if reason.endswith(REFUSED):
                raise ConnectionRefused(f"{reason}; nothing seems to listen at {host}", url=url)
            # RFC 9309: an unreachable robots.txt means "disallow all for now"; the
            # URL itself is fine, so this is worth retrying later.
            raise TransientFetchError(f"{reason}; not fetching from {host} for now", url=url)
        raise RobotsDisallowed("robots.txt disallows this URL for our user agent", url=url)

    def _request(self, url: str, conditional: dict[str, str]) -> _Hop:
        host = host_key(url)

        def attempt() -> _Hop:
            self.throttle.wait_turn(host, self.interval(host))
            self._deadline.forget_sent()
            try:
                return self._send(url, conditional)
            finally:
                self.throttle.answered(sent_ago=self._deadline.sent_ago())

        return retry_call(attempt, self.settings, sleep=self._sleep, random_fraction=self._random)

    def _send(self, url: str, conditional: dict[str, str]) -> _Hop:
        """Send one GET and classify the answer; raises the FetchError that fits."""
        try:
            request = self._client.build_request("GET", url, headers=conditional)
        except (httpx.InvalidURL, ValueError) as error:  # require_http passed, httpx did not
            raise BadURL(f"not a URL we can request: {error}", url=url) from None
        deadline = time.monotonic() + self.total_timeout
        with self._deadline.within(self.total_timeout):
            try:
                response = self._client.send(request, stream=True)
            except httpx.TimeoutException as error:
                raise TransientFetchError(
                    f"timed out ({type(error).__name__}: {error})", url=url
                ) from None
            except (httpx.InvalidURL, ValueError) as error:  # e.g. a bad IDNA host
                raise BadURL(f"not a URL we can request: {error}", url=url) from None
            except httpx.TransportError as error:
                cause = error.__cause__ or error.__context__
                if isinstance(cause, httpx.InvalidURL):
                    # httpx reads a redirect's Location even when not following it.
                    raise BadURL(f"redirected to a bad URL: {cause}", url=url) from None
                if _refused(error):
                    raise ConnectionRefused(
                        f"connection refused by {host_key(url)}", url=url
                    ) from None
                detail = str(error) or type(error).__name__
                raise TransientFetchError(f"network error: {detail}", url=url) from None
            try:
                return self._read(url, request, response, deadline)
            finally:
                response.close()

    def _read(
        self, url: str, request: httpx.Request, response: httpx.Response, deadline: float
    ) -> _Hop:
        status = response.status_code
        hop = _Hop(
            url=url,
            status=status,
            headers=_pairs(response.headers.raw),
            request_headers=_pairs(request.headers.raw),
            body=b"",
            at=datetime.now(UTC),
        )
        reason = f"{status} {response.reason_phrase}".strip()
        if status in self.settings.statuses.retry_later:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            message = reason
            if retry_after is not None:
                message = f"{reason} (Retry-After {retry_after:g} s)"
                if retry_after > self.settings.max_retry_after:
                    message += f", longer than the {self.settings.max_retry_after:g} s we wait"
            raise RateLimited(message, url=url, status=status, retry_after=retry_after)
        if status >= 500 or status == 408:
            raise TransientFetchError(reason, url=url, status=status)
        if status >= 400:
            raise HTTPStatusError(reason, url=url, status=status)
        if status in _REDIRECTS or status == 304 or status == 204:
            return hop
        if status >= 300:
            raise HTTPStatusError(f"{reason} (not a redirect we follow)", url=url, status=status)
        self._check_html(url, response)
        return _replace_body(hop, self._body(url, response, deadline))

    def _check_html(self, url: str, response: httpx.Response) -> None:
        content_type = response.headers.get("content-type")
        if content_type is None:
            return  # unlabelled: the parser decides what it is
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in HTML_TYPES:
            raise NotHTML(f"not an HTML page (Content-Type: {content_type})", url=url)

    def _body(self, url: str, response: httpx.Response, deadline: float) -> bytes:
        limit = self.settings.max_body_bytes
        encoding = response.headers.get("content-encoding", "")
        declared = response.headers.get("content-length", "")
        plain = encoding.strip().lower() in ("", "identity")
        if plain and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(
                f"body of {int(declared)} bytes is over the {limit}-byte cap", url=url
            )
        try:
            chunks = _before(response.iter_raw(), deadline)
            return read_capped(chunks, encoding, limit)
        except CappedBody:
            raise BodyTooLarge(
                f"body passed the {limit}-byte cap (counted after decompression)", url=url
            ) from None
        except FetchError as error:
            raise FetchError(error.message, url=url) from None
        except (httpx.TimeoutException, _Overtime):
            raise TransientFetchError("timed out while reading the body", url=url) from None
        except httpx.TransportError as error:
            # A body cut short (fewer bytes than Content-Length) lands here.
            raise TransientFetchError(f"body cut short: {error}", url=url) from None

    def _page(self, requested: str, hop: _Hop) -> FetchedPage:
        return FetchedPage(
            requested_url=requested,
            final_url=hop.url,
            status=hop.status,
            headers=hop.headers,
            body=hop.body,
            fetched_at=hop.at,
            request_headers=hop.request_headers,
        )

    def load_robots(self, host: str) -> RobotsFile:
        """Fetch ``host``'s robots.txt once (throttled, redirects followed, no retries).

        Returns a RobotsFile; network trouble gives ``status=None`` with ``error``.
        """
        url = f"{host}/robots.txt"
        now = datetime.now(UTC)
        try:
            for _ in range(self.settings.robots_max_redirects + 1):
                hop_host = host_key(url)
                self.throttle.wait_turn(hop_host, _paced(self.delay))
                status, body = 0, b""
                self._deadline.forget_sent()
                try:
                    with self._deadline.within(self.settings.timeouts.robots):
                        status, location, body = self._robots_hop(url)
                finally:
                    # The host's next request already keeps robots.txt's Crawl-delay.
                    self.throttle.answered(
                        self._robots_interval(status, body), sent_ago=self._deadline.sent_ago()
                    )
                if status in _REDIRECTS and location:
                    url = require_http(urljoin(url, location))
                    continue
                if 200 <= status < 300:
                    text = body.decode("utf-8", errors="replace")
                    return RobotsFile(host=host, status=status, body=text, fetched_at=now)
                if status in _REDIRECTS:
                    status = 404  # a redirect with no target: RFC 9309 treats it as unavailable
                return RobotsFile(host=host, status=status, body=None, fetched_at=now)
        except (httpx.HTTPError, FetchError, RuntimeError) as error:
            # RuntimeError: this Fetcher was closed while another thread borrowed it.
            text = f"{type(error).__name__}: {error}".rstrip(": ")
            if isinstance(error, httpx.TransportError) and _refused(error):
                text = REFUSED
            return RobotsFile(host=host, status=None, body=None, fetched_at=now, error=text)
        # Too many redirects: RFC 9309 says to treat robots.txt as unavailable (4xx).
        return RobotsFile(host=host, status=404, body=None, fetched_at=now)

    def _robots_interval(self, status: int, body: bytes) -> float | None:
        """The interval robots.txt asks for (None: the one claimed stands)."""
        if not 200 <= status < 300:
            return None
        text = body.decode("utf-8", errors="replace")
        delay = capped_crawl_delay(text, self.robots_token, self.settings.max_crawl_delay)
        return _paced(max(self.delay, delay or 0.0))

    @property
    def robots_token(self) -> str:
        from scraper.fetch.robots import robots_token

        return robots_token(self.settings.user_agent)

    def _robots_hop(self, url: str) -> tuple[int, str | None, bytes]:
        with self._client.stream("GET", url) as response:
            body = b""
            if 200 <= response.status_code < 300:
                encoding = response.headers.get("content-encoding", "")
                try:
                    body = read_capped(
                        response.iter_raw(), encoding, self.settings.robots_max_bytes
                    )
                except CappedBody as capped:
                    body = capped.partial  # parse the first robots_max_bytes, as RFC 9309 allows
            return response.status_code, response.headers.get("location"), body


class _Overtime(Exception):
    """The body was still arriving when the attempt's total time ran out."""


def _before(chunks: Iterator[bytes], deadline: float) -> Iterator[bytes]:
    for chunk in chunks:
        if time.monotonic() > deadline:
            raise _Overtime
        yield chunk


def _refused(error: BaseException) -> bool:
    """True when *error* (or what caused it) is a refused TCP connection."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _paced(interval: float) -> float:
    return interval + PACING_MARGIN if interval > 0 else 0.0


def _replace_body(hop: _Hop, body: bytes) -> _Hop:
    return _Hop(hop.url, hop.status, hop.headers, hop.request_headers, body, hop.at)
