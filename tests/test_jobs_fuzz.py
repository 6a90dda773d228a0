"""Any jobs file, however odd its values, is read or refused with a ConfigError naming
the file (and the job and key when one is at fault), and a file that is read can be
described and scheduled: `jobs check`, `schedule show` and `run` never crash on it."""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scraper.cli.jobs import describe_job
from scraper.errors import ConfigError
from scraper.jobs.config import JOB_KEYS, load_jobs
from scraper.jobs.schedule import crontab_block, systemd_units

SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(
        [
            "3s",
            "1e400s",
            "nan",
            "@daily",
            "* * * * *",
            "61 * * * *",
            "http://[::1",
            "postgresql://h:abc/x",
            "https://myanimelist.net/anime/1/x/reviews",
            "incremental",
        ]
    ),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    escaped = "".join(
        c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in str(value)
    )
    return f'"{escaped}"'


@pytest.mark.slow  # 150 jobs files, each written and read back
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.dictionaries(st.sampled_from(sorted(JOB_KEYS)), VALUES, max_size=6),
    seeds=st.booleans(),
)
def test_any_jobs_file_is_read_or_refused_by_name(
    tmp_path: Path, values: dict[str, object], seeds: bool
) -> None:
    lines = ["[jobs.daily]"]
    if seeds and "seeds" not in values:
        lines.append('seeds = ["https://myanimelist.net/anime/1/x/reviews"]')
    lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    text = "\n".join(lines) + "\n"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:  # a value TOML cannot hold (2**70): not our case
        return
    file = tmp_path / "reviews.toml"
    file.write_text(text, encoding="utf-8")
    try:
        jobs = load_jobs(file)
    except ConfigError as error:
        assert str(file) in str(error)
        # Keys, never options (a value echoed back may hold "--" of its own).
        message = str(error).replace(str(file), "")
        for value in values.values():
            message = message.replace(repr(value), "")
        assert "--" not in message
        return
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for job in jobs.jobs:
        assert describe_job(job, now)
        assert math.isfinite(job.delay)
        job.crawl_settings()
    crontab_block(jobs)
    systemd_units(jobs)


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * 100_000 + "]" * 100_000,
        "x = " + "{a = " * 50_000 + "1" + "}" * 50_000,
        "[" + ".".join(["a"] * 50_000) + "]",
    ],
)
@pytest.mark.slow
def test_a_file_nested_too_deep_is_refused(tmp_path: Path, text: str) -> None:
    file = tmp_path / "deep.toml"
    file.write_text(text + "\n")
    with pytest.raises(ConfigError, match=r"deep\.toml"):
        load_jobs(file)
