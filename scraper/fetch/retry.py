"""When and how long to wait before trying a request again.

Transient failures (``scraper.errors.is_transient``) are retried with jittered
exponential backoff, up to ``max_attempts``. A ``Retry-After`` from the server
(429/503) is a floor for the wait; one longer than ``max_retry_after`` ends the
retries at once, with the RateLimited error that carries it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

from scraper.config import FetchSettings
from scraper.errors import RateLimited, is_transient

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
        growth = 2.0 ** (state.attempt_number - 1)
        base = min(settings.backoff_max, settings.backoff_initial * growth)
        delay = base / 2 + random_fraction() * base / 2
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay

    return wait


def _stop(settings: FetchSettings) -> Callable[[RetryCallState], bool]:
    """Stop after ``max_attempts``, or at once when Retry-After is beyond our patience."""

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= max(settings.max_attempts, 1):
            return True
        error = state.outcome.exception() if state.outcome is not None else None
        return (
            isinstance(error, RateLimited)
            and error.retry_after is not None
            and error.retry_after > settings.max_retry_after
        )

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
        stop=_stop(settings),
        wait=backoff_wait(settings, random_fraction),
        retry=retry_if_exception(is_transient),
        sleep=sleep,
        reraise=True,
    )
    return retrying(attempt)
