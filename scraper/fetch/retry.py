"""When and how long to wait before trying a request again.

Transient failures (``scraper.errors.is_transient``) are retried with jittered
exponential backoff, up to ``max_attempts``. A ``Retry-After`` from the server
(429/503) is a floor for the wait; one longer than ``max_retry_after`` ends the
retries at once, with the RateLimited error that carries it. A refused connection
is tried ``refused_attempts`` times, ``refused_backoff`` apart. No retry starts
when its wait would take the URL past ``max_url_time`` in all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

from scraper.config import FetchSettings
from scraper.errors import ConnectionRefused, RateLimited, is_transient

__all__ = ["backoff_wait", "parse_retry_after", "retry_call"]

T = TypeVar("T")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for, or None when absent/invalid.

    Accepts delta-seconds (``120``) and an HTTP date; a date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return max(delta, 0.0)


def backoff_wait(
    settings: FetchSettings, random_fraction: Callable[[], float] = random.random
) -> Callable[[RetryCallState], float]:
    """Return a tenacity wait: equal-jitter exponential backoff, at least Retry-After.

    The n-th retry waits between half and all of ``backoff_initial * 2**(n-1)``
    (capped at ``backoff_max``): never zero, so a struggling server gets a real
    pause, and spread out, so many clients do not return in step.
    """

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, ConnectionRefused):
            return settings.refused_backoff
        growth = 2.0 ** (state.attempt_number - 1)
        base = min(settings.backoff_max, settings.backoff_initial * growth)
        delay = base / 2 + random_fraction() * base / 2
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay

    return wait


def _stop(
    settings: FetchSettings, longest: Callable[[RetryCallState], float]
) -> Callable[[RetryCallState], bool]:
    """Stop after ``max_attempts`` (``refused_attempts`` for a refused connection), at
    once when Retry-After is beyond our patience, or when the next wait would take
    the URL past ``max_url_time``."""

    def stop(state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome is not None else None
        attempts = settings.max_attempts
        if isinstance(error, ConnectionRefused):
            attempts = min(attempts, settings.refused_attempts)
        if state.attempt_number >= max(attempts, 1):
            return True
        if (
            isinstance(error, RateLimited)
            and error.retry_after is not None
            and error.retry_after > settings.max_retry_after
        ):
            return True
        # tenacity asks stop before wait; *longest* is the wait with the most jitter.
        elapsed = state.seconds_since_start or 0.0
        return elapsed + longest(state) > settings.max_url_time

    return stop


def retry_call(
    attempt: Callable[[], T],
    settings: FetchSettings,
    *,
    sleep: Callable[[float], None],
    random_fraction: Callable[[], float] = random.random,
) -> T:
    """Return ``attempt()``, retrying it on transient errors as the settings say.

    Raises the last error when attempts run out (or at once when it is not
    transient, or when a Retry-After exceeds ``max_retry_after``).
    """
    retrying = Retrying(
        stop=_stop(settings, backoff_wait(settings, lambda: 1.0)),
        wait=backoff_wait(settings, random_fraction),
        retry=retry_if_exception(is_transient),
        sleep=sleep,
        reraise=True,
    )
    return retrying(attempt)
