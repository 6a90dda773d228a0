"""The fetch room: the only code that touches the network.

``Fetcher`` fetches one URL politely (robots.txt, per-host interval, retries with
backoff and Retry-After, size cap after decompression, redirect limits) and
returns a ``FetchedPage`` or raises a ``FetchError`` (``scraper.errors``).
``Throttle`` and ``RobotsPolicy`` / ``RobotsStore`` are the protocols other rooms
implement to share the per-host budget and robots.txt between processes.
"""

from scraper.fetch.client import HTML_TYPES, Fetcher, honest_user_agent
from scraper.fetch.retry import parse_retry_after
from scraper.fetch.robots import RobotsCache, RobotsFile, RobotsLoader, RobotsPolicy, RobotsStore
from scraper.fetch.throttle import LocalThrottle, Throttle
from scraper.fetch.urls import canonicalize, host_key, require_http, robots_url

__all__ = [
    "HTML_TYPES",
    "Fetcher",
    "LocalThrottle",
    "RobotsCache",
    "RobotsFile",
    "RobotsLoader",
    "RobotsPolicy",
    "RobotsStore",
    "Throttle",
    "canonicalize",
    "honest_user_agent",
    "host_key",
    "parse_retry_after",
    "require_http",
    "robots_url",
]
