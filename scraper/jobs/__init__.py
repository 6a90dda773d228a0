"""Scheduled crawl runs: the jobs file, job locks, runs and their schedules.

- ``config``: the TOML jobs file (``reviews.toml``), checked into frozen ``Job``\\ s.
- ``locks``: one lock per job in the database (``job_locks``), renewed while it runs.
- ``runner``: one run of one job under its lock (``reviews run``).
- ``history``: past runs from ``crawl_runs`` (``reviews runs``).
- ``schedule``: crontab lines, systemd units, editing the user's crontab.
- ``loop``: the foreground scheduler (``reviews schedule run``).
- ``logs``: log lines to stderr and the job's log file.

Nothing is imported here: ``config`` must stay light (no SQLAlchemy) for
``reviews jobs check``.
"""
