"""Importing saved pages from disk: the same store path as a fetch, with ``source="file"``.

A saved page's capture is read from what the file says (``scraper.store.saved``):
its URL from ``--url``, else the note its saving tool left (SingleFile, Save Page
WE, a browser's "saved from url"), else the page's own canonical link, else a
``file://`` URL. Its capture time, first match wins (``TIME_RULES``):

1. ``--fetched-at``, for every file;
2. with ``--fetched-at-from name``, the date in the file name (``NAME_PATTERNS``);
   a file without one is refused before anything is stored;
3. the ``Date:`` of a saved HTTP response head (``wget --save-headers``), whose
   status and headers are stored with the page and the body after it is the page;
4. the date its saving tool wrote in it (SingleFile's ``saved date``, Save Page
   WE's ``savepage-date``);
5. the file's modification time (``--fetched-at-from mtime`` goes straight here),
   which a copy replaces with the copy's time: ``looks_copied`` tells when the
   files of a folder that took it all carry nearly the same one.

Parsing is the slow step, so a large import runs in worker processes that each parse
and write their own files. On SQLite a worker takes the next batch of files
(``sqlite_batch_pages``, fewer when the files are few), parses it, then writes it in
one transaction (``scraper.store.batch``) when the batch's turn comes: the batches are
committed in file order, as one process commits them, while the next is parsed in
another worker. Nothing parsed crosses between processes but the reports: sending
every parsed page and its body to one writing process (the design before) cost the
two CPUs its pickling, its pipe and a thread to receive it (600 real-sized pages,
alternated: 6.4-7.1 s against 5.6-6.6 s now). On PostgreSQL each worker parses and
writes one file at a time, each in its own transaction, so that several transactions
run at once (the server's time per page is most of it). Either way this process
yields each file's Imported in order, once its page is committed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy.engine import Engine

from scraper.config import ImportSettings, StoreSettings
from scraper.errors import ScraperError, StoreError, UsageError
from scraper.inputs import check_page_url
from scraper.records import FetchedPage
from scraper.store.batch import PageJob, ingest_pages
from scraper.store.ingest import IngestReport, ingest_or_refusal
from scraper.store.parsing import ParsedFile, parse_file
from scraper.store.saved import TIME_FROM, TIME_RULES, date_in_name
from scraper.store.workers import finishing, import_modules, parallel_map, worker_context

__all__ = [
    "TIME_FROM",
    "TIME_RULES",
    "Imported",
    "check_page_url",
    "import_paths",
    "looks_copied",
    "parse_fetched_at",
]


@dataclass(frozen=True, slots=True)
class Imported:
    """One file handled by ``import_paths``: its report, or why it was not stored.

    ``error`` is the page's ParseError when the page was stored raw only, or the
    reason nothing was stored (an unreadable file); ``report`` is None then.
    """

    path: Path
    url: str | None
    report: IngestReport | None
    error: ScraperError | None
    #: The capture time given to the page, and where it came from ("mtime", ...).
    fetched_at: datetime | None = None
    time_source: str | None = None


def parse_fetched_at(value: str) -> datetime:
    """Return *value* (ISO 8601; no zone means UTC) as an aware UTC datetime.

    Raises UsageError naming ``fetched_at`` and the value when it is not a time.
    """
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise UsageError(
            f"fetched_at: {value!r} is not an ISO 8601 time (e.g. 2022-10-01T12:00:00Z)",
            parameter="fetched_at",
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        raise UsageError(
            f"fetched_at: {value!r} is out of the range of times", parameter="fetched_at"
        ) from None


def looks_copied(times: Sequence[datetime], settings: ImportSettings | None = None) -> bool:
    """Whether modification *times* of one folder's files look like a copy's: enough
    files, all within a few seconds (``ImportSettings.copy_mtime_spread``)."""
    settings = settings or ImportSettings()
    if len(times) < settings.copy_min_files:
        return False
    return (max(times) - min(times)).total_seconds() <= settings.copy_mtime_spread


def import_paths(
    engine: Engine,
    files: Sequence[Path],
    *,
    url: str | None = None,
    fetched_at: datetime | None = None,
    time_from: str = "file",
    workers: int = 1,
    settings: StoreSettings | None = None,
) -> Iterator[Imported]:
    """Store each file as a raw page with its records; yield one Imported per file, in order.

    Capture times follow the module's rules (*time_from* is ``Archive.import_files``'
    *fetched_at_from*); *settings* how pages are batched into transactions.
    With *workers* > 1, that many processes parse and write the files (the module's
    docstring), and a file is yielded once its page is committed. A file that
    cannot be read is yielded with its error and the next one runs.
    Raises UsageError before anything is stored when *time_from* is ``name`` and a
    file name holds no date. A page the database refuses for its own values is yielded
    with that StoreError, nothing of it stored, and the next file runs; StoreError is
    raised when the database fails for its own state (locked, full, gone).
    """
    if time_from not in TIME_FROM:
        raise UsageError(
            f"fetched_at_from: {time_from!r} is not one of {', '.join(TIME_FROM)}",
            parameter="fetched_at_from",
        )
    named: dict[Path, datetime] = {}
    if fetched_at is None and time_from == "name":
        for path in files:
            moment = date_in_name(path.name)
            if moment is None:
                raise UsageError(
                    f"{path}: fetched_at_from name: no date in the file name "
                    "(e.g. 2022-10-01, 2022-10-01T12-00-00, 20221001120000)",
                    parameter="fetched_at_from",
                )
            named[path] = moment
    settings = settings or StoreSettings()
    database = engine.url.render_as_string(hide_password=False)
    if workers > 1 and engine.dialect.name == "postgresql":
        # Several writers: each worker parses a file and stores it in its own
        # transaction, as this process would (PostgreSQL takes concurrent writers).
        tasks = [
            _Task(path, url, fetched_at, named.get(path), time_from, database) for path in files
        ]
        modules = import_modules(database)
        with finishing(parallel_map(_import_in_worker, tasks, workers, modules=modules)) as done:
            yield from done
        return
    if workers > 1 and _on_disk(engine) and len(files) > 1:
        rounds = workers * max(1, settings.sqlite_batches_per_worker)
        size = max(1, min(settings.sqlite_batch_pages, -(-len(files) // rounds)))
        chunks = [
            _Chunk(
                start // size,
                tuple((path, named.get(path)) for path in files[start : start + size]),
                url,
                fetched_at,
                time_from,
                database,
                settings,
            )
            for start in range(0, len(files), size)
        ]
        yield from _write_in_turn(chunks, workers, import_modules(database))
        return
    jobs = [(path, url) for path in files]
    parsed = map(parse_file, jobs)
    pages = (_job(item, url, fetched_at, named.get(item.path), time_from) for item in parsed)
    yield from _reported(ingest_pages(engine, pages, source="file", settings=settings))


def _on_disk(engine: Engine) -> bool:
    """Whether the SQLite archive of *engine* is a file other processes can open (not
    one in memory, which each would have for itself)."""
    name = engine.url.database or ""
    return bool(name) and name != ":memory:" and "mode=memory" not in str(engine.url)


def _reported(
    done: Iterable[tuple[Imported, IngestReport | StoreError | None]],
) -> Iterator[Imported]:
    """The Imported of each page ``ingest_pages`` handled, with its report or refusal."""
    for imported, report in done:
        if isinstance(report, StoreError):  # refused for its values: nothing of it stored
            imported = replace(imported, error=_not_stored(imported.path, report))
        elif report is not None:
            imported = replace(imported, report=report, error=report.error)
        yield imported


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Files for a worker to parse and write as one batch (``_import_chunk_in_worker``),
    each with the date in its name when capture times are read from names; *number*
    is the batch's turn to write."""

    number: int
    files: tuple[tuple[Path, datetime | None], ...]
    url: str | None
    fetched_at: datetime | None
    time_from: str
    database: str
    settings: StoreSettings


def _write_in_turn(
    chunks: list[_Chunk], workers: int, modules: Sequence[str]
) -> Iterator[Imported]:
    """Run ``_import_chunk_in_worker`` over *chunks* in *workers* processes; yield each
    file's Imported in order.

    The batches are committed in their order, as one process would (captures of a
    review at the same time: the last one's values are kept), through a counter of
    turns the workers share. A worker waiting for a turn that will not come (this
    process stopping: an error, a signal) is told to give up, so the pool can end.
    """
    context = worker_context(modules)
    turns = _Turns(
        context.Condition(), context.Value("q", 0, lock=False), context.Value("b", 0, lock=False)
    )
    written = parallel_map(
        _import_chunk_in_worker,
        chunks,
        workers,
        setup=(_keep_turns, (turns,)),
        stopping=functools.partial(_stop_turns, turns),
        modules=modules,
    )
    del turns  # its lock and values are the pool's alone: gone when its workers are
    with finishing(written) as done:
        for imported in done:
            yield from imported


def _stop_turns(turns: _Turns) -> None:
    """Tell the workers the import stopped: one waiting for its turn gives up."""
    with turns.condition:
        turns.stopped.value = 1
        turns.condition.notify_all()


class _Turns(NamedTuple):
    """What the workers of one import share: whose turn it is to write, and whether the
    import stopped (both read and set under *condition*)."""

    condition: Any
    next: Any
    stopped: Any


#: This worker's ``_Turns`` (``_keep_turns``).
_turns: _Turns | None = None


def _keep_turns(turns: _Turns) -> None:
    global _turns
    _turns = turns


@contextmanager
def _turn(number: int) -> Iterator[None]:
    """Wait for batch *number*'s turn to write; pass the turn on after, or, when the
    batch raised (the database failing for its own state), stop the import there: no
    later batch is written, as one process would have stopped."""
    turns = _turns
    if turns is None:  # not in a worker of ``_write_in_turn``
        yield
        return
    with turns.condition:
        turns.condition.wait_for(lambda: turns.stopped.value or turns.next.value == number)
        if turns.stopped.value:
            raise StoreError("the import stopped before this batch's turn to be written")
    passed = False
    try:
        yield
        passed = True
    finally:
        with turns.condition:
            if passed:
                turns.next.value = number + 1
            else:
                turns.stopped.value = 1
            turns.condition.notify_all()


def _import_chunk_in_worker(chunk: _Chunk) -> list[Imported]:
    """Parse the files of *chunk*, then store them in the batch's turn; return what
    ``import_paths`` yields for them, in order."""
    engine = _worker_engine(chunk.database)
    jobs = [
        _job(parse_file((path, chunk.url)), chunk.url, chunk.fetched_at, named, chunk.time_from)
        for path, named in chunk.files
    ]
    with _turn(chunk.number):
        return list(_reported(ingest_pages(engine, jobs, source="file", settings=chunk.settings)))


@dataclass(frozen=True, slots=True)
class _Task:
    """One file for a worker that parses and stores it (``_import_in_worker``)."""

    path: Path
    url: str | None
    fetched_at: datetime | None
    named: datetime | None
    time_from: str
    database: str


#: A worker's engine for each database it writes to, opened on its first file.
_worker_engines: dict[str, Engine] = {}


def _worker_engine(database: str) -> Engine:
    engine = _worker_engines.get(database)
    if engine is None:
        from scraper.store.engine import open_engine

        engine = _worker_engines[database] = open_engine(database)
    return engine


def _import_in_worker(task: _Task) -> Imported:
    """Parse and store one file in a worker process; return what ``import_paths`` yields."""
    engine = _worker_engine(task.database)
    item = parse_file((task.path, task.url))
    job = _job(item, task.url, task.fetched_at, task.named, task.time_from)
    if job.page is None:
        return job.key
    report = ingest_or_refusal(engine, job.page, source="file", parsed=job.outcome)
    return next(_reported([(job.key, report)]))


def _not_stored(path: Path, refusal: StoreError) -> StoreError:
    """*refusal* of the page of file *path*, naming the file as an unreadable file's
    error does (the CLI prints both as they are)."""
    page = f" ({refusal.url})" if refusal.url else ""
    return StoreError(f"{path}: not stored{page}: {refusal.message}", url=refusal.url)


def _job(
    item: ParsedFile,
    url: str | None,
    fetched_at: datetime | None,
    named: datetime | None,
    time_from: str,
) -> PageJob[Imported]:
    """The page to store for a parsed file (with its Imported, the report to come), or
    the Imported of a file that cannot be read (nothing to store). Its capture time
    follows the module's rules; *named* is the date in its file name when they read it."""
    saved = item.saved
    if item.outcome is None or saved is None:
        error = UsageError(f"{item.path}: cannot read: {item.read_error}")
        return PageJob(Imported(item.path, url, None, error))
    if fetched_at is not None:
        moment, source = fetched_at, "--fetched-at"
    elif named is not None:
        moment, source = named, "its file name"
    elif time_from == "file" and saved.fetched_at is not None:
        moment, source = saved.fetched_at, saved.time_source or "the file"
    else:
        moment, source = item.modified, "mtime"
    outcome = item.outcome
    page_url = url or saved.url or (outcome.result.url if outcome.result is not None else None)
    page_url = page_url or item.path.resolve().as_uri()
    if outcome.error is not None:
        outcome.error.url = outcome.error.url or page_url
    page = FetchedPage(
        requested_url=page_url,
        final_url=page_url,
        status=saved.status,
        headers=saved.headers,
        body=saved.body,
        fetched_at=moment,
    )
    imported = Imported(item.path, page_url, None, None, moment, source)
    return PageJob(imported, page, outcome, item.body_sha256, item.records_sha256)
