"""Each crawl recorded in ``crawl_runs``: who ran what, when, with which options, what
came of it. The figures are written as the crawl goes, so a killed run still shows
how far it got (its outcome stays ``running``, and the next run marks it
``interrupted`` when its process is gone).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from scraper.crawl._process import pid_alive
from scraper.schema.tables import crawl_runs
from scraper.store.engine import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["RunFigures", "finish_run", "mark_dead_runs", "save_figures", "start_run"]

RUNNING = "running"


@dataclass(slots=True)
class RunFigures:
    """The counters of one run (the crawl_runs columns of the same names)."""

    pages: int = 0
    reviews_new: int = 0
    reviews_updated: int = 0
    reviews_unchanged: int = 0
    not_modified: int = 0
    robots_skipped: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def start_run(
    engine: Engine,
    *,
    crawl_key: str,
    seeds: Sequence[str],
    options: Mapping[str, Any],
    job: str | None,
    command: str = "crawl",
) -> int:
    """Insert a ``running`` row for this process's crawl; return its id."""
    with write_transaction(engine) as conn:
        return int(
            conn.execute(
                sa.insert(crawl_runs)
                .values(
                    job=job,
                    command=command,
                    crawl_key=crawl_key,
                    started_at=datetime.now(UTC),
                    seeds=list(seeds),
                    options=dict(options),
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    outcome=RUNNING,
                    **RunFigures().as_dict(),
                )
                .returning(crawl_runs.c.id)
            ).scalar_one()
        )


def save_figures(engine: Engine, run_id: int, figures: RunFigures) -> None:
    """Write the run's counters so far."""
    with write_transaction(engine) as conn:
        conn.execute(
            sa.update(crawl_runs).where(crawl_runs.c.id == run_id).values(**figures.as_dict())
        )


def finish_run(
    engine: Engine, run_id: int, figures: RunFigures, *, outcome: str, message: str | None
) -> None:
    """Close the run: its end time, final counters, outcome and message."""
    with write_transaction(engine) as conn:
        conn.execute(
            sa.update(crawl_runs)
            .where(crawl_runs.c.id == run_id)
            .values(
                finished_at=datetime.now(UTC),
                outcome=outcome,
                message=message,
                **figures.as_dict(),
            )
        )


def mark_dead_runs(engine: Engine, crawl_key: str) -> int:
    """Mark this machine's ``running`` runs of *crawl_key* whose process is gone as
    ``interrupted``; return how many. Runs on other machines are left alone."""
    host = socket.gethostname()
    with write_transaction(engine) as conn:
        rows = conn.execute(
            sa.select(crawl_runs.c.id, crawl_runs.c.pid).where(
                crawl_runs.c.crawl_key == crawl_key,
                crawl_runs.c.outcome == RUNNING,
                crawl_runs.c.hostname == host,
            )
        ).all()
        dead = [row.id for row in rows if not pid_alive(row.pid)]
        if dead:
            conn.execute(
                sa.update(crawl_runs)
                .where(crawl_runs.c.id.in_(dead))
                .values(outcome="interrupted", message="the process ended without finishing")
            )
    return len(dead)
