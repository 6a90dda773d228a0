"""A stop signal waits for the database transaction in hand (``scraper.interrupts``).

The signal is sent from inside SQLAlchemy's statement path (an ``after_cursor_execute``
listener), where a crawl met it: raised there, the stop left SQLite's write lock held
by a connection nobody could close, and the writes made while stopping waited the
busy timeout (60 s each) for it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from scraper.cli._common import stop_signals
from scraper.errors import Terminated
from scraper.interrupts import Shielded, raise_or_defer
from scraper.store.connection import write_transaction


@pytest.fixture(autouse=True)
def sigint_live() -> Iterator[None]:
    """Ctrl-C raising KeyboardInterrupt, as in a terminal, even where this test run was
    started with SIGINT ignored (a background job inherits that)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    path = tmp_path / "plain.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE notes (body TEXT)")
    made = sa.create_engine(f"sqlite:///{path}")
    yield made
    made.dispose()


def signal_after_statement(engine: sa.Engine, signum: int) -> None:
    """Send *signum* to this process once, right after the next SELECT of the notes
    starts (its rows not read yet: the driver's statement is still running)."""
    sent = []

    @sa.event.listens_for(engine, "after_cursor_execute")
    def send(*args: Any) -> None:
        if not sent and args[2].startswith("SELECT body"):
            sent.append(signum)
            os.kill(os.getpid(), signum)

    assert not sent


def write_elsewhere(engine: sa.Engine) -> None:
    """Write through a connection of its own, waiting at most 0.5 s for the lock."""
    with sqlite3.connect(engine.url.database or "", timeout=0.5) as other:
        other.execute("INSERT INTO notes VALUES ('from another connection')")


def bodies(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(sa.text("SELECT body FROM notes ORDER BY rowid"))]


@pytest.mark.parametrize(
    ("signum", "raised"), [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)]
)
def test_a_stop_inside_a_transaction_comes_after_its_commit_and_no_lock_is_left(
    engine: sa.Engine, signum: int, raised: type[BaseException]
) -> None:
    signal_after_statement(engine, signum)
    with stop_signals(), pytest.raises(raised) as stopped, write_transaction(engine) as conn:
        conn.execute(sa.text("INSERT INTO notes VALUES ('in the transaction')"))
        conn.execute(sa.text("INSERT INTO notes VALUES ('and another')"))
        conn.execute(sa.text("SELECT body FROM notes")).first()
    # The stop's traceback is alive here, as it is while a crawl closes its run.
    assert stopped.value is not None
    write_elsewhere(engine)  # raised "database is locked" when the stop broke the driver
    assert bodies(engine) == ["in the transaction", "and another", "from another connection"]


def test_a_failing_block_is_rolled_back_and_the_stop_still_comes(engine: sa.Engine) -> None:
    signal_after_statement(engine, signal.SIGTERM)
    with stop_signals(), pytest.raises(Terminated) as stopped, write_transaction(engine) as conn:
        conn.execute(sa.text("INSERT INTO notes VALUES ('rolled back')"))
        conn.execute(sa.text("SELECT body FROM notes")).first()
        raise ValueError("the block failed")
    assert isinstance(stopped.value.__context__, ValueError)  # told, not swallowed
    write_elsewhere(engine)
    assert bodies(engine) == ["from another connection"]


def test_outside_a_transaction_the_stop_is_raised_at_once() -> None:
    reached = []
    with stop_signals(), pytest.raises(Terminated):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs within a few bytecodes
            reached.append(1)
    assert len(reached) < 1000


def test_nested_sections_raise_at_the_end_of_the_outermost_and_only_the_first_stop() -> None:
    order = []
    with pytest.raises(Terminated, match="first"), Shielded():
        with Shielded():
            raise_or_defer(Terminated("first"))
            raise_or_defer(KeyboardInterrupt("second"))
            order.append("inner end")
        order.append("outer end")
    assert order == ["inner end", "outer end"]
    with Shielded():  # nothing is left pending for the next section
        order.append("next")
    assert order[-1] == "next"


def test_a_section_in_another_thread_does_not_defer_the_main_threads_stop() -> None:
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        with Shielded():
            inside.set()
            leave.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    try:
        assert inside.wait(10)
        with pytest.raises(Terminated):
            raise_or_defer(Terminated())
    finally:
        leave.set()
        worker.join()


def test_the_handlers_before_are_put_back() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with stop_signals():
        assert signal.getsignal(signal.SIGTERM) is not before[0]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_where_sigint_is_ignored_it_stays_ignored() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_signals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_stop_while_the_engine_closes_comes_after_every_connection_is_closed(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from scraper.store.engine import close_engine

    closed = []

    @sa.event.listens_for(engine, "close")
    def send(dbapi_connection: Any, record: Any) -> None:
        if not closed:
            os.kill(os.getpid(), signal.SIGTERM)
        closed.append(dbapi_connection)

    held = [engine.connect() for _ in range(2)]  # two connections in the pool
    for conn in held:
        conn.close()
    with stop_signals(), pytest.raises(Terminated):
        close_engine(engine)
    assert len(closed) == 2
    assert "Exception closing connection" not in caplog.text


def test_an_unshielded_wait_inside_a_section_raises_a_stop_at_once() -> None:
    from scraper.interrupts import Unshielded

    order = []
    with pytest.raises(Terminated, match="waiting"), Shielded():
        with Unshielded():
            order.append("waiting for a worker")
            raise_or_defer(Terminated("waiting"))  # raised here, not at the section's end
        order.append("never")
    assert order == ["waiting for a worker"]
    with pytest.raises(Terminated, match="before"), Shielded():
        raise_or_defer(Terminated("before"))  # deferred...
        order.append("statements")
        with Unshielded():  # ...and raised as the wait begins
            order.append("never")
    assert order[-1] == "statements"
    with pytest.raises(Terminated, match="after"), Shielded():
        with Unshielded():
            pass
        raise_or_defer(Terminated("after"))  # shielded again after the wait
        order.append("still running")
    assert order[-1] == "still running"
