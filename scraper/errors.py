"""The one error tree of review-archiver.

Every failure the package reports on purpose is a ``ScraperError``; anything
else is a bug. Errors that concern a page carry its URL (and, once the raw page
is stored, its id) so a message can always name what went wrong where::

    ScraperError
    ├── UsageError                 bad argument or option (CLI exit code 2)
    ├── ConfigError                a broken jobs file or setting; names the job and key
    ├── ParseError                 a page could not be read into records
    │   ├── NotAReviewPage         a page with no reviews on it at all (a profile, a 404 page)
    │   ├── BlockedPage            a captcha / "access denied" page served instead of content
    │   └── LayoutNotRecognised    looks like a review page, yields nothing: the drift alarm
    ├── FetchError                 the network did not give us a usable page
    │   ├── TransientFetchError    worth retrying later: timeouts, 5xx, 429, connection errors
    │   │   ├── RateLimited        429/503 with an optional Retry-After (seconds)
    │   │   └── ConnectionRefused  nothing listens there: retried a little, quickly
    │   ├── HTTPStatusError        a final, non-retryable status (404, 410, ...)
    │   ├── RobotsDisallowed       robots.txt forbids the URL for our user agent
    │   ├── NotHTML                the response is not an HTML page
    │   ├── BodyTooLarge           the body passed the size cap (after decompression)
    │   ├── TooManyRedirects       a redirect loop or too long a redirect chain
    │   ├── BadURL                 not an http(s) URL, or not parseable at all
    │   └── SiteBlocked            the site keeps refusing us: the crawl stops
    ├── StoreError                 the database refused or is not usable
    ├── URLFailed                  anything else that went wrong with one URL: given up on
    ├── OutputError                an output file could not be written (disk full)
    ├── WorkerLost                 a worker process was killed (a signal, out of memory)
    └── JobAlreadyRunning          another run of the job holds its lock

    Terminated (a BaseException, like KeyboardInterrupt): SIGTERM asked us to stop.

Which failures are transient is decided here, in ``is_transient``, and nowhere else.
"""

from __future__ import annotations

__all__ = [
    "INTERRUPTS",
    "BadURL",
    "BlockedPage",
    "BodyTooLarge",
    "ConfigError",
    "ConnectionRefused",
    "FetchError",
    "HTTPStatusError",
    "JobAlreadyRunning",
    "LayoutNotRecognised",
    "NotAReviewPage",
    "NotHTML",
    "OutputError",
    "ParseError",
    "RateLimited",
    "RobotsDisallowed",
    "ScraperError",
    "SiteBlocked",
    "StoreError",
    "Terminated",
    "TooManyRedirects",
    "TransientFetchError",
    "URLFailed",
    "UsageError",
    "WorkerLost",
    "is_transient",
]


class ScraperError(Exception):
    """Base of every error this package raises on purpose.

    ``url`` names the page concerned (when there is one) and ``raw_page_id`` the
    stored raw page, once it has been stored. ``parameter`` names the library's
    parameter at fault (``min_score``) and ``also`` any other the message names
    (``max_score``): the library says its parameters' names, not the command line's
    spelling of them, which the CLI puts in their place (``--min-score``).
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        raw_page_id: int | None = None,
        parameter: str | None = None,
        also: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.raw_page_id = raw_page_id
        self.parameter = parameter
        self.also = also

    def __str__(self) -> str:
        if self.url and self.url not in self.message:
            return f"{self.url}: {self.message}"
        return self.message


class UsageError(ScraperError):
    """A bad argument: of a library call, or of the command line (``parameter`` names it)."""


class ConfigError(ScraperError):
    """A broken jobs file or setting. The message names the job and the key."""


class ParseError(ScraperError):
    """A page could not be read into review records."""

    @classmethod
    def parser_bug(cls, error: Exception, url: str | None) -> ParseError:
        """The ParseError for *error*, an exception a parser raised on the page at *url*
        (a bug it met there): the page is named and kept, the next one is read."""
        return cls(f"the parser failed: {type(error).__name__}: {error}", url=url)


class NotAReviewPage(ParseError):
    """The page holds no reviews and does not look like a review page."""


class BlockedPage(ParseError):
    """The site served a captcha / access-denied page instead of content."""


class LayoutNotRecognised(ParseError):
    """The page looks like a review page but no review could be read from it."""


class FetchError(ScraperError):
    """The network did not give us a usable page."""


class TransientFetchError(FetchError):
    """A failure worth retrying: timeout, connection error, 5xx, 429."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        raw_page_id: int | None = None,
    ) -> None:
        super().__init__(message, url=url, raw_page_id=raw_page_id)
        self.status = status


class RateLimited(TransientFetchError):
    """429 or 503, with the server's Retry-After in seconds when it sent one."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.retry_after = retry_after


class ConnectionRefused(TransientFetchError):
    """The host refused the connection (nothing listening on the port): worth a
    second try a moment later, not minutes of backoff."""


class HTTPStatusError(FetchError):
    """A final, non-retryable HTTP status such as 404 or 410."""

    def __init__(self, message: str, *, url: str | None = None, status: int) -> None:
        super().__init__(message, url=url)
        self.status = status


class RobotsDisallowed(FetchError):
    """robots.txt forbids this URL for our user agent."""


class NotHTML(FetchError):
    """The response is not an HTML page (its content type is given in the message)."""


class BodyTooLarge(FetchError):
    """The body passed the size cap, counted after decompression."""


class TooManyRedirects(FetchError):
    """A redirect loop, or more redirects than allowed."""


class BadURL(FetchError):
    """Not an http(s) URL, or not a URL at all."""


class SiteBlocked(FetchError):
    """The site keeps refusing us (403/429/block pages): stop instead of hammering."""


class StoreError(ScraperError):
    """The database refused an operation or is not usable."""


class URLFailed(ScraperError):
    """Something unforeseen went wrong with one URL (a value the database refused, a
    bug met on that page): the URL is given up on, recorded, and the crawl goes on.
    The message names the original error."""


class OutputError(ScraperError):
    """An output file could not be written to the end (disk full, I/O error); the
    partial file is removed. A bad output path is a UsageError instead."""


class WorkerLost(ScraperError):
    """A worker process of an import or a reparse ended abruptly (a signal, the OOM
    killer): the work stops there. What was reported before is stored, and a second
    run skips it; a page that kills its worker itself stops the second run too."""


class JobAlreadyRunning(ScraperError):
    """Another run of the same job holds its lock."""


class Terminated(BaseException):
    """SIGTERM asked the process to stop (systemd, ``docker stop``, a scheduler).

    Handled like Ctrl-C: work in flight is rolled back, the run is closed as
    interrupted, locks are released, the exit code is 130. It is a BaseException so
    ``except Exception`` never swallows it, but deliberately not a KeyboardInterrupt:
    CPython 3.11 marks the process to die by SIGINT when a KeyboardInterrupt passes
    through ``exec()`` (as a lazy import that builds a dataclass does), even after the
    exception was handled, which would turn our documented 130 into -SIGINT.
    """


#: What stops a run cleanly, as opposed to a failure.
INTERRUPTS: tuple[type[BaseException], ...] = (KeyboardInterrupt, Terminated)


def is_transient(error: BaseException) -> bool:
    """Return True when *error* is worth retrying later (the single place that decides)."""
    return isinstance(error, TransientFetchError)
