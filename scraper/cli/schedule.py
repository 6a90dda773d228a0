"""``reviews schedule show|install|remove|run``: run the jobs file's jobs on their
schedules, from cron, systemd timers, or a foreground loop."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from scraper.cli import ExitCode
from scraper.cli._common import add_command
from scraper.cli.jobs import add_jobs_option

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``schedule`` sub-command."""
    parser = add_command(
        subparsers,
        "schedule",
        help="run jobs on their schedules: crontab lines, systemd timers, or a loop",
        description="show: print the crontab lines (and systemd service + timer units) that "
        "run each scheduled job. install / remove: add or take out those lines in your "
        "crontab, between marker comments; other lines stay untouched. run: a foreground "
        "loop that runs due jobs (for containers without cron), catching up one missed run "
        "after downtime; stops on SIGTERM or Ctrl-C. Schedules are read in local time.",
        example="reviews schedule show --jobs ~/archive/reviews.toml\n"
        "reviews schedule install --jobs ~/archive/reviews.toml\n"
        "reviews schedule remove --jobs ~/archive/reviews.toml\n"
        "reviews schedule run --jobs /etc/reviews.toml    # in a container without cron",
    )
    parser.add_argument("action", choices=("show", "install", "remove", "run"))
    add_jobs_option(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--cron", action="store_true", help="show: the crontab lines only")
    which.add_argument("--systemd", action="store_true", help="show: the systemd units only")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Do the asked action; ConfigError for a broken jobs file, ScraperError when the
    crontab program fails."""
    from scraper import api

    if args.action == "show":
        if not args.systemd:
            sys.stdout.write(api.schedule_crontab(args.jobs))
        if not args.cron:
            _print_systemd(api, args.jobs, header=not args.systemd)
    elif args.action == "install":
        block = api.install_schedule(args.jobs)
        print("installed in your crontab (see `crontab -l`):", file=sys.stderr)
        sys.stdout.write(block)
    elif args.action == "remove":
        if api.remove_schedule(args.jobs):
            print("removed the jobs file's lines from your crontab", file=sys.stderr)
        else:
            print("nothing to remove: the jobs file's lines were not installed", file=sys.stderr)
    else:
        with api.logging_to("reviews schedule") as log:
            api.run_schedule(args.jobs)
            log.info("stopped")
    return ExitCode.OK


def _print_systemd(api: Any, jobs_path: str | None, *, header: bool) -> None:
    units, notes = api.schedule_systemd(jobs_path)
    if header:
        print()
        print("# --- or, with systemd: save each unit below in ~/.config/systemd/user/, then")
        print("#     systemctl --user daemon-reload && systemctl --user enable --now <timer>")
    for note in notes:
        print(f"# {note}")
    for unit in units:
        print()
        print(f"# file: {unit.name}")
        sys.stdout.write(unit.text)
