"""The shared cache as a convenience that may be away: one way to say so.

DVR's cache (Redis in production) speeds things up and shares small state between
processes (saved profiles, pacing, rate limits, alerts); none of it is worth a failed
page. `cache_or` runs one cache call and, if the cache fails, logs it (once a minute per
process and purpose, not once per call) and returns the caller's default instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

# One log line per outage and purpose, not one per call.
LOG_EVERY_SECONDS = 60.0

_last_logged: dict[str, float] = {}
_lock = threading.Lock()


def cache_or(call: Callable[[], T], default: T, *, what: str) -> T:
    """``call()``, or ``default`` when the cache backend fails (``what`` names the
    purpose in the log: "saved profile", "pacing", …)."""
    try:
        return call()
    except Exception as exc:  # any backend failure: connection refused, timeout, OOM …
        cache_failed(exc, what=what)
        return default


def cache_failed(exc: BaseException, *, what: str) -> None:
    """Log that the cache failed for ``what``, at most once a minute per purpose."""
    with _lock:
        now = time.monotonic()
        if now - _last_logged.get(what, -LOG_EVERY_SECONDS) < LOG_EVERY_SECONDS:
            return
        _last_logged[what] = now
    logger.warning("cache unavailable for %s: %s (carrying on without it)", what, type(exc).__name__)
