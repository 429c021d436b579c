"""A small fixed-window rate limit, kept in the cache (the refresh endpoint uses it).

Each client (the bearer token's digest, or the caller's IP for a session) may call a few
times per window; more is answered 429 with ``Retry-After``. The counter lives in the
shared cache so every web process counts together. With the cache down the limit is not
enforced: the sync lock still keeps it to one sync at a time, and refusing every staff
click because Redis is away would be worse.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from django.core.cache import cache

from dvr.lib.cache import cache_failed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    allowed: bool
    retry_after: int  # seconds until the window resets (0 when allowed)


def rate_limit_hit(*, scope: str, client: str, limit: int, window: int) -> Limit:
    """Count one call of ``client`` in ``scope``; allowed while at most ``limit`` calls fell
    in the current ``window`` seconds."""
    now = time.time()
    window_start = int(now // window) * window
    client_key = hashlib.sha256(client.encode()).hexdigest()[:32]  # never a token in a key
    key = f"ratelimit:{scope}:{client_key}:{window_start}"
    try:
        # add() creates the counter only if absent (atomic in Redis: SET NX), then incr().
        cache.add(key, 0, timeout=window + 1)
        count = cache.incr(key)
    except ValueError:
        # The key expired between add() and incr(): this is the first call of a new window.
        return Limit(True, 0)
    except Exception as exc:  # cache down: do not refuse everyone
        cache_failed(exc, what=f"rate limit {scope} (not enforced)")
        return Limit(True, 0)
    if count > limit:
        return Limit(False, max(1, int(window_start + window - now + 0.999)))
    return Limit(True, 0)
