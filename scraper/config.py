"""Every default of review-archiver, in one place, as small frozen settings objects.

Settings are passed in explicitly (never read from globals deep inside the code);
``from_env`` helpers only exist where the CLI documents an environment variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from scraper import __version__

__all__ = [
    "DEFAULT_DB_PATH",
    "DEFAULT_JOBS_FILE",
    "PROJECT_URL",
    "USER_AGENT",
    "CliSettings",
    "CrawlSettings",
    "ExportSettings",
    "FetchSettings",
    "ImportSettings",
    "JobSettings",
    "SchemaOrgLimits",
    "ServeSettings",
    "Timeouts",
    "database_url",
]

#: Where people can read what this crawler is and how to reach its operators.
PROJECT_URL = "https://github.com/review-archiver/review-archiver"

#: The product token robots.txt rules are matched against.
ROBOTS_TOKEN = "review-archiver"

#: Honest identification: product/version plus a contact URL; never a browser's string.
USER_AGENT = f"{ROBOTS_TOKEN}/{__version__} (+{PROJECT_URL})"

DEFAULT_DB_PATH = "reviews.db"
DEFAULT_JOBS_FILE = "reviews.toml"
DB_ENV_VAR = "REVIEWS_DB"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Network timeouts in seconds.

    ``connect`` / ``read`` / ``write`` / ``pool`` are httpx's, per operation (a read
    timeout starts again with every byte); ``total`` is a wall-clock deadline on one
    request, connect, headers and body together, so a server dripping bytes cannot
    hold a URL; ``robots`` the same for a robots.txt fetch, which is small and must
    not hold up the whole host for long.
    """

    connect: float = 10.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 30.0
    total: float = 60.0
    robots: float = 20.0


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """How one page is fetched: identity, limits, retries."""

    user_agent: str = USER_AGENT
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: Cap on the body, counted after decompression (a gzip bomb is refused).
    max_body_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 10
    #: Attempts per URL, the first included, for transient failures.
    max_attempts: int = 4
    #: Exponential backoff: initial wait, multiplier base and cap (seconds), with jitter.
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    #: The longest Retry-After we will sit through for one request before giving up on it.
    #: It is also the furthest ahead a host's next allowed request time is ever stored.
    max_retry_after: float = 600.0
    #: All the time one URL may take across its attempts and the waits between them.
    max_url_time: float = 300.0
    #: A refused connection (nothing listening) is tried this many times in all, this
    #: many seconds apart: it is a quick, clear failure, not minutes of backoff.
    refused_attempts: int = 2
    refused_backoff: float = 0.25
    #: The largest robots.txt Crawl-delay (or Request-rate interval) obeyed; a larger
    #: one is cut to this, with a warning (``Crawl-delay: 100000`` would stop the crawl).
    max_crawl_delay: float = 60.0
    #: robots.txt: how long a fetched file is trusted, and how much of it is read.
    robots_ttl: float = 24 * 3600.0
    robots_max_bytes: int = 512 * 1024


@dataclass(frozen=True, slots=True)
class CrawlSettings:
    """How a crawl paces itself and when it stops."""

    #: Minimum seconds between request starts to one host (robots Crawl-delay may raise it).
    delay: float = 2.0
    concurrency: int = 1
    max_pages: int | None = None
    max_time: float | None = None
    #: A leased frontier URL is given back to others after this many seconds.
    lease_seconds: float = 300.0
    #: Consecutive refusals (403/429/block pages) from one host before the crawl stops.
    max_refusals: int = 5
    #: Consecutive block pages (captcha, "access denied") from one host before the
    #: crawl stops; a URL answered with one is never asked for again.
    max_block_pages: int = 2
    #: Leases of one URL for transient failures before it is given up on.
    max_url_attempts: int = 3
    #: Leases of one URL in all (a run interrupted or killed on it counts): past this
    #: the URL is marked failed instead of being tried again, so a URL that kills its
    #: crawl cannot be retried forever by re-runs.
    max_url_leases: int = 6
    #: How long the crawl keeps trying to reach its database again (a restart, a
    #: failover) before it gives up with exit code 1.
    database_retry_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class SchemaOrgLimits:
    """Bounds on the work the schema.org reader does for one page.

    Pages are written by strangers: these keep a hostile or broken page (deep
    nesting, huge arrays, giant strings, reference cycles) from costing more
    than a real page ever needs. What is cut is named in ``PageResult.problem``.
    """

    #: Nesting depth followed into JSON-LD values and microdata/RDFa items.
    max_depth: int = 48
    #: Objects (JSON-LD nodes, microdata/RDFa items) looked at per page.
    max_nodes: int = 100_000
    #: Review records kept per page (the largest real pages show a few hundred).
    max_reviews: int = 5_000
    #: Characters of one JSON-LD script block read at all (a real block is < 1 MB).
    max_block_chars: int = 8 * 1024 * 1024
    #: Characters of one text value (a body, a name) kept after reading it.
    max_text_chars: int = 200_000
    #: Largest rating number taken as meant; anything bigger is refused.
    max_rating: float = 1_000_000.0


#: ``reviews reparse --jobs N``: the writing process parses batches too while fewer
#: than one page in this many needed writing (a busy writer would hold the workers'
#: results back).
REPARSE_BUSY_WRITER = 4

#: ``reviews sql``: how long one statement may run (seconds; ``--timeout``).
SQL_TIMEOUT = 30.0

#: ``reviews sql`` on PostgreSQL runs as this NOLOGIN role, which may only read the
#: archive's tables (created and granted on first use; one per cluster, shared).
SQL_READ_ONLY_ROLE = "reviews_readonly"

#: A page nested deeper than this many open elements is refused as "page too deep":
#: the HTML parser's work grows with tags times depth (100k levels: a minute).
#: Browsers stop nesting at 512 (Blink); real review pages nest about 20 deep.
MAX_NESTING_DEPTH = 512

#: Pages with at most this many tags are not scanned for depth: however they nest,
#: the parser is done with them in a fraction of a second (8k nested: 0.2 s).
DEPTH_SCAN_TAGS = 8_192

#: The largest saved page ``reviews import`` reads, in bytes (a fetched body stops
#: at 10 MiB; a saved one with its pictures inlined may be larger).
MAX_INPUT_FILE_BYTES = 64 * 1024 * 1024

#: The largest jobs file read, in bytes (a jobs file is a few lines).
MAX_JOBS_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """How ``reviews serve`` listens and pages (see scraper/serve)."""

    host: str = "127.0.0.1"
    port: int = 8000
    #: Reviews per page: Jikan's endpoints (MyAnimeList pages hold 20) and the search page.
    jikan_page_size: int = 20
    page_size: int = 20
    #: Counting the hits of a search stops here ("1,000+"); facets count this many hits.
    #: Both are cached per search for ``cache_seconds``, so paging through is cheap.
    count_cap: int = 1_000
    facet_cap: int = 500
    #: How many reviews /v4/top/reviews ranks, and how long a ranking or a count of a
    #: whole list is reused (seconds) before it is asked for again.
    top_reviews: int = 2_500
    cache_seconds: float = 60.0
    #: Parsed raw pages kept for histories and ``as_of`` (each holds one page's bodies).
    parsed_pages: int = 64
    #: Crawl runs shown on /runs and on the front page.
    runs_shown: int = 50
    runs_on_front: int = 5


@dataclass(frozen=True, slots=True)
class JobSettings:
    """How scheduled runs lock, wait and are listed (``reviews run``, ``schedule run``,
    ``runs``, ``jobs check``)."""

    #: A job lock not renewed for this long is abandoned and may be taken over (seconds).
    #: Longer than SQLite's busy timeout, so a heartbeat waiting behind a writer never
    #: loses it.
    lock_ttl: float = 300.0
    #: The heartbeat renews a held lock this many times per TTL (every ttl / 4 seconds).
    lock_renewals_per_ttl: int = 4
    #: The schedule loop re-checks at least this often (seconds), so a changed clock is
    #: noticed.
    loop_max_sleep: float = 60.0
    #: Past runs ``reviews runs`` lists when no --limit is given.
    runs_listed: int = 20
    #: Next run times ``reviews jobs check`` shows for each job.
    next_runs_shown: int = 3


@dataclass(frozen=True, slots=True)
class ExportSettings:
    """Limits of the WARC export and import, and of ``reviews stats``."""

    #: A WARC file is closed and the next one begun once it holds this many bytes (the
    #: customary 1 GB).
    warc_max_size: int = 1_000_000_000
    #: Raw pages read from the database at a time while writing WARC records.
    warc_rows_per_fetch: int = 200
    #: WARC import: request records waiting for their response, kept at most (memory
    #: stays bounded on a WARC whose requests are never answered).
    warc_pending_requests: int = 1000
    #: Entries ``reviews stats`` lists, those with the most reviews first.
    stats_top_entries: int = 20


@dataclass(frozen=True, slots=True)
class CliSettings:
    """How the ``reviews`` command shows results."""

    #: Rows a terminal table shows when no --limit is given (a table is built in memory).
    table_rows: int = 50


def database_url(db: str | None = None) -> str:
    """Return an SQLAlchemy URL for *db*, ``$REVIEWS_DB`` or ``./reviews.db``.

    A value with ``://`` is taken as a URL; anything else as an SQLite file path.
    Raises UsageError naming ``--db`` (or ``$REVIEWS_DB``) for a URL that cannot
    be one: a port that is not a number, an unclosed ``[`` of an IPv6 address.
    """
    value = db or os.environ.get(DB_ENV_VAR) or DEFAULT_DB_PATH
    if "://" in value:
        problem = url_problem(value)
        if problem is not None:
            from scraper.errors import UsageError

            source = "--db" if db else f"${DB_ENV_VAR}"
            raise UsageError(
                f"{source}: {hide_password(value)!r} is not a database URL ({problem})"
            )
        return value
    return f"sqlite:///{value}"


@dataclass(frozen=True, slots=True)
class ImportSettings:
    """How saved files and other tools' WARC files are read in."""

    #: A WARC record's block is kept up to this size (a page body at the fetch cap plus
    #: its headers); a larger one is still checked, then skipped as too large.
    warc_max_block_bytes: int = 10 * 1024 * 1024 + 64 * 1024
    #: A WARC header block (or a saved file's HTTP head) longer than this is damage.
    max_head_bytes: int = 64 * 1024
    #: A folder whose files' modification times all lie within this many seconds (and
    #: that holds at least ``copy_min_files`` of them) looks like a copy: warned about.
    copy_mtime_spread: float = 2.0
    copy_min_files: int = 3


def url_problem(url: str) -> str | None:
    """Return why *url* cannot be parsed as a URL with a host and port, or None."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (reading it checks it)
    except ValueError as error:
        detail = str(error)
        if "could not be cast" in detail:
            return f"port {detail.rpartition(' as ')[2]} is not a number"
        return detail[:1].lower() + detail[1:]
    return None


def hide_password(url: str) -> str:
    """Return *url* with its password (if any) replaced by ``***``."""
    head, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{head}{sep}{userinfo.split(':', 1)[0]}:***@{host}"


#: Datasette's ``truncate_cells_html`` for ``reviews datasette``: review bodies are cut
#: to this many characters in HTML tables (a row's own page shows them whole).
DATASETTE_TRUNCATE_CELLS = 300
