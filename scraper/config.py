"""Every default of review-archiver, in one place, as small frozen settings objects.

The settings classes are ``NamedTuple``s, changed with ``._replace(...)``: twelve of
them load in about 5 ms, where frozen dataclasses cost 40 ms (``dataclasses`` itself
included), so every command, ``reviews parse`` and its parsers too, reads its numbers
from here without paying for it at start-up.

Settings are passed in explicitly (never read from globals deep inside the code);
``from_env`` helpers only exist where the CLI documents an environment variable.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from scraper import __version__

__all__ = [
    "BLOCK_PAGE_MAX_CHARS",
    "DEFAULT_DB_PATH",
    "DEFAULT_JOBS_FILE",
    "DEPTH_SCAN_TAGS",
    "MAL_ENTITY_CACHE",
    "MAL_ENTITY_PROBES",
    "MAL_ENTITY_ROUNDS",
    "MAX_NESTING_DEPTH",
    "META_CHARSET_SCAN_BYTES",
    "PROBLEMS_NAMED",
    "PROJECT_URL",
    "USER_AGENT",
    "CliSettings",
    "CrawlSettings",
    "CrawlTuning",
    "ExportSettings",
    "FetchSettings",
    "HttpStatuses",
    "ImportSettings",
    "JobSettings",
    "SchemaOrgLimits",
    "ServeSettings",
    "StoreSettings",
    "Timeouts",
    "database_url",
    "default_workers",
    "usable_cpus",
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


class Timeouts(NamedTuple):
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


class HttpStatuses(NamedTuple):
    """What an HTTP status means to the fetcher and the crawl, decided in one place."""

    #: Answers that ask the client to come back later: their Retry-After (or the
    #: backoff) is waited out and the URL tried again (``RateLimited``).
    retry_later: frozenset[int] = frozenset({429, 503})
    #: Answers that mean "you, go away" rather than "this page is broken": each counts
    #: towards the host's ``CrawlSettings.max_refusals`` and slows the host down.
    refusal: frozenset[int] = frozenset({403, 429})


class FetchSettings(NamedTuple):
    """How one page is fetched: identity, limits, retries."""

    user_agent: str = USER_AGENT
    timeouts: Timeouts = Timeouts()
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
    #: How long a failed robots.txt fetch (5xx, 429, network error) keeps a host
    #: disallowed before it is fetched again (seconds).
    robots_failure_ttl: float = 60.0
    #: Redirects followed for robots.txt (RFC 9309 asks for at least five).
    robots_max_redirects: int = 5
    #: Added once to every non-zero interval between requests, against clock rounding.
    #: Jitter on the way to the server is covered by counting intervals from quick
    #: answers (``transit_*``); more margin would be idle time politeness does not ask for.
    pacing_margin: float = 0.001
    #: How far after a request left its answer may move the next start (seconds; see
    #: scraper.fetch.throttle), and at most this share of the interval.
    transit_allowance: float = 0.05
    transit_share: float = 0.025
    #: Which HTTP answers mean "come back later" and which "go away".
    statuses: HttpStatuses = HttpStatuses()


class CrawlSettings(NamedTuple):
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
    #: What to crawl: ``full`` reads every page of every chain, ``incremental`` reads
    #: listings newest first and stops a chain at the first page holding a known review
    #: (``archive``, set by ``reviews archive`` itself: the given URLs, no link followed).
    mode: str = "full"
    #: Seconds after which a stored page is asked for again (conditionally); None: never.
    refresh_after: float | None = None
    #: Continue an unfinished crawl of the same seeds (False: forget it, start over).
    resume: bool = True


class CrawlTuning(NamedTuple):
    """Fixed numbers of the crawl's machinery: pacing of its loop, its hold on a host,
    how it rides out a lost database. Not options a user sets."""

    #: How often the run's figures are written to ``crawl_runs`` while it goes (seconds).
    save_every: float = 2.0
    #: Longest single wait for a queued URL to come due (limits and stops are seen).
    idle_poll: float = 0.25
    #: URLs leased at once with ``--delay 0``, when a page takes milliseconds and one
    #: lease transaction per page is a good share of them. (With a delay, one at a time:
    #: the database is idle anyway, and other processes get their share sooner.)
    lease_batch: int = 8
    #: How long a claimed turn holds the host before the holder releases it: longer
    #: than any request takes to reach the server, short enough that a killed holder
    #: does not stall the host for long (seconds).
    host_hold: float = 1.0
    #: The longest a fetched page's store waits for the worker's next request to have
    #: its turn, so the store does not share the interpreter with the few milliseconds
    #: before that request (seconds; see ``crawl._store_behind``).
    store_hold: float = 1.0
    #: The interval stops doubling after this many refusals (2**6 = 64 times slower).
    max_slowdown_steps: int = 6
    #: The interval refusals stretch when the crawl runs with no delay at all.
    min_slowdown_base: float = 0.05
    #: A wait for a host's turn is cut into sleeps of at most this long, so a pushed-back
    #: or relaxed schedule is seen (seconds).
    max_turn_sleep: float = 5.0
    #: Waits between attempts to reach a lost database: from the first, doubling to
    #: the longest (seconds; ``CrawlSettings.database_retry_seconds`` in all).
    database_retry_first: float = 0.25
    database_retry_longest: float = 5.0


class SchemaOrgLimits(NamedTuple):
    """Bounds on the work the schema.org reader does for one page.

    Pages are written by strangers: these keep a hostile or broken page (deep
    nesting, huge arrays, giant strings, reference cycles) from costing more
    than a real page ever needs. What is cut is named in ``PageResult.problem``.
    """

    #: Nesting depth followed into JSON-LD values and microdata/RDFa items.
    max_depth: int = 48
    #: How far up from a microdata/RDFa property its item may sit (real pages nest a
    #: few dozen deep).
    max_climb: int = 256
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
    #: Entries of a list value looked at for the first usable one (a name, a date).
    list_look: int = 8
    #: Characters of a folded body that key the search for its duplicates: a body
    #: cut short ("...") still shares its first characters with the whole one.
    duplicate_key_chars: int = 48
    #: Rounds of entity decoding for text escaped more than once (``&amp;amp;``).
    entity_rounds: int = 12
    #: Short names of schema.org terms kept (pages spell the same few dozen terms).
    term_cache: int = 4096


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

#: How far into a page its ``<meta charset>`` is looked for (bytes). The HTML
#: standard's prescan reads 1024; real pages put dozens of ``<link>`` tags first.
META_CHARSET_SCAN_BYTES = 8192

#: A page with less text than this (characters) has all of it searched for a block
#: page's phrases ("access denied"); a longer one only its title and headlines, so a
#: review or a forum post that mentions a captcha is not taken for a block page.
BLOCK_PAGE_MAX_CHARS = 3000

#: MyAnimeList text: rounds of entity decoding for text escaped more than once (no
#: page needs more than a handful; ``&amp;amp;amp;...`` must not cost more), and the
#: decoded references kept (a page repeats the same few hundreds of times).
MAL_ENTITY_ROUNDS = 16
MAL_ENTITY_CACHE = 4096
#: The ``&`` of a text looked at one by one for a reference before the regex scans
#: the rest: a body holds a few (``Black & White``), a hostile one thousands.
MAL_ENTITY_PROBES = 8

#: Problems of a page's reviews named in its one-line message; the rest are counted.
PROBLEMS_NAMED = 3

#: The largest saved page ``reviews import`` reads, in bytes (a fetched body stops
#: at 10 MiB; a saved one with its pictures inlined may be larger).
MAX_INPUT_FILE_BYTES = 64 * 1024 * 1024

#: The largest jobs file read, in bytes (a jobs file is a few lines).
MAX_JOBS_FILE_BYTES = 1024 * 1024


class ServeSettings(NamedTuple):
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
    #: The largest ``per_page`` and ``page`` a request may ask for.
    max_per_page: int = 100
    max_page: int = 100_000
    #: Answers kept before the oldest is dropped: search counts and facets, and the
    #: few whole lists (Jikan's list counts and rankings, the front page's totals).
    cache_entries: int = 1024
    list_cache_entries: int = 64
    #: Characters of review text a search hit shows around the first searched word.
    snippet_chars: int = 240
    #: Compiled patterns of searched words kept for marking hits in snippets.
    word_patterns: int = 256


class JobSettings(NamedTuple):
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


class ExportSettings(NamedTuple):
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
    #: Parquet export: records converted and written at a time.
    parquet_batch_records: int = 1000
    #: WARC reading: bytes inflated (or read) at a time, and compressed bytes fed to
    #: zlib at a time (a gzip member is often ~2 KB).
    warc_read_slice: int = 1 << 20
    warc_feed_bytes: int = 1 << 16


class CliSettings(NamedTuple):
    """How the ``reviews`` command shows results."""

    #: Rows a terminal table shows when no --limit is given (a table is built in memory).
    table_rows: int = 50
    #: The fewest characters of review text a table row shows, and how many it keeps
    #: while optional columns (item, author, tags) are given room.
    table_review_min: int = 24
    table_review_room: int = 40
    #: ``reviews parse``, ``import`` and ``reparse`` without ``--jobs``: from this many
    #: files (or pages) on, they run one process per CPU this process may use
    #: (``usable_cpus``; ``parse`` at most ``parse_max_workers``), ``parse`` handing
    #: ``parse_chunk`` files at a time (enough to make the hand-over cheap). Fewer
    #: than that run in one process: starting a worker costs about as much as
    #: parsing a few dozen pages. (The load average is not asked: it lags a minute
    #: behind, so a command run just after another one ran alone on two cores.)
    parse_parallel_from: int = 24
    parse_max_workers: int = 8
    parse_chunk: int = 8
    #: ``reviews parse``'s workers write their chunks themselves, in order
    #: (``scraper.cli._inturn``): a worker waiting for its turn goes on parsing while it
    #: holds fewer finished chunks than this, and looks every so many seconds whether
    #: its parent is still there.
    parse_chunks_ahead: int = 4
    parse_watch_interval: float = 0.5


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity on this platform
        return os.cpu_count() or 1


def default_workers(work: int | None = None) -> int:
    """Processes for parse, import or reparse when none are asked for: one per usable
    CPU, or 1 when the *work* (files to read) is too small to pay for starting workers
    (``CliSettings.parse_parallel_from``)."""
    if work is not None and work < CliSettings().parse_parallel_from:
        return 1
    return usable_cpus()


def database_url(db: str | None = None) -> str:
    """Return an SQLAlchemy URL for *db*, ``$REVIEWS_DB`` or ``./reviews.db``.

    A value with ``://`` is taken as a URL; anything else as an SQLite file path.
    Raises UsageError naming ``db`` (or ``$REVIEWS_DB``) for a URL that cannot
    be one: a port that is not a number, an unclosed ``[`` of an IPv6 address.
    """
    value = db or os.environ.get(DB_ENV_VAR) or DEFAULT_DB_PATH
    if "://" in value:
        problem = url_problem(value)
        if problem is not None:
            from scraper.errors import UsageError

            source = "db" if db else f"${DB_ENV_VAR}"
            raise UsageError(
                f"{source}: {hide_password(value)!r} is not a database URL ({problem})",
                parameter="db" if db else None,
            )
        return value
    return f"sqlite:///{value}"


class StoreSettings(NamedTuple):
    """How the store compresses, caches, batches and retries."""

    #: zstd level of stored bodies: 3 is zstd's default; 9 gains ~7% on these pages
    #: for 3x the time.
    zstd_level: int = 3
    #: How many of the newest raw pages are searched for a same-site base body.
    base_search_pages: int = 200
    #: Bodies kept in memory as bases (about 250 KB each), and ready-made dictionaries.
    cached_bodies: int = 16
    cached_dictionaries: int = 4
    #: How long a SQLite writer waits for another one before giving up (milliseconds).
    sqlite_busy_timeout_ms: int = 60_000
    #: Tries of one page's transaction on a PostgreSQL deadlock or serialization failure,
    #: waiting this many seconds times the attempt's number between them.
    ingest_attempts: int = 5
    ingest_retry_wait: float = 0.05
    #: Rows read per query when streaming reviews out (query, export).
    read_chunk_rows: int = 1000
    #: Raw pages read (with their bodies) and parsed per batch by ``reviews reparse``:
    #: small enough that the batches spread evenly over the workers.
    reparse_batch_pages: int = 32
    #: ``reviews reparse --jobs N``: the writing process parses batches too while fewer
    #: than one page in this many needed writing (a busy writer would hold the workers'
    #: results back).
    reparse_busy_writer: int = 4
    #: ``reviews import`` into SQLite: pages written per transaction (each in its own
    #: savepoint, ``scraper.store.batch``), and the longest a batch stays open
    #: (seconds), so other writers wait little for the lock.
    sqlite_batch_pages: int = 32
    batch_seconds: float = 0.5
    #: ``reviews import --jobs N`` into SQLite: each of the N processes gets at least
    #: this many batches (smaller ones when the files are few), so that one parses
    #: while another writes.
    sqlite_batches_per_worker: int = 2
    #: Statements a batch's writer (``scraper.store.driverexec``) remembers having seen
    #: once, to run them through the ``sqlite3`` driver when they come again.
    driver_seen_once: int = 256
    #: SQLite's full-text index (FTS5) merges this many segments of a level at a time
    #: (FTS5's default: 4), and all of a level at once only when it holds
    #: ``sqlite_fts_crisismerge`` (default 16; above the first, the merging stays
    #: incremental: the longest batch insert was 0.14 s). Each review is rewritten once
    #: per level, and the levels grow with the log of the archive to the base
    #: ``sqlite_fts_automerge``. The index alone (``bench/bench_fts_growth.py``,
    #: 32-page batches, load 3-12), database pages written a page (a count the load
    #: does not change) over pages 1-1k, 1k-2k, 2k-5k, 5k-10k, 10k-20k, 20k-50k: with
    #: 4 and 16, 32, 47, 55, 63, 69, 69 (insert and commit 2.84 ms CPU a page over the
    #: first 1k, 4.27-4.74 from 10k to 50k); with 64 and 128, 9, 27, 27, 27, 27, 27
    #: (1.78 ms, then 2.30-2.72): every review is merged once from 2k pages to 131k.
    #: At 50k pages the index is in 101 segments, not 15: the same searches (same
    #: counts, same reviews) took 2-9% more CPU (47-96 ms each, best of 5, load 1.2).
    #: Set in each archive by schema revision 0007, which keeps the numbers literal (a
    #: test checks).
    sqlite_fts_automerge: int = 64
    sqlite_fts_crisismerge: int = 128
    #: Parse jobs in flight per worker: enough to keep it busy while the writer catches up.
    #: A parent that parses its share holds at most as many results it computed itself.
    #: An SQLite import's writer stops for its batch's full-text insert and commit (about
    #: 40 ms, eight pages' parse): with 4 in flight its parser sat idle meanwhile (117-128
    #: pages/s), with 16 it does not (139-145); reparse is the same with both (``reviews
    #: parse`` has a pool of its own).
    jobs_in_flight: int = 16
    #: How often a worker process looks whether its parent is still there (seconds).
    parent_watch_interval: float = 0.5
    #: ``reviews sql`` on SQLite: steps between two looks at the clock (a few µs of work).
    sql_progress_steps: int = 1000


class ImportSettings(NamedTuple):
    """How saved files and other tools' WARC files are read in."""

    #: A WARC record's block is kept up to this size (a page body at the fetch cap plus
    #: its headers); a larger one is still checked, then skipped as too large.
    warc_max_block_bytes: int = 10 * 1024 * 1024 + 64 * 1024
    #: A WARC header block (or a saved file's HTTP head) longer than this is damage.
    max_head_bytes: int = 64 * 1024
    #: How much of a saved page's start is searched for a saver's note (bytes).
    note_scan_bytes: int = 64 * 1024
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
