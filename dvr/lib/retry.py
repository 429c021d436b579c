"""One retry policy for everything DVR tries again: Bungie GETs, actions Bungie throttled,
table downloads right after a publish.

A `RetryPolicy` says how often and how long; `call_with_retries` runs a call under it.
The wait before another try is the server's own hint when it gave one (Bungie's
``ThrottleSeconds``), else exponential backoff. The clock and the sleep are the policy's,
so a test can pass its own instead of sleeping real seconds.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``tries`` calls at most (None: as many as the budget allows); waits of ``base`` * 2**n,
    at most ``cap`` each, halved at random when ``jitter``; another try only while the
    clock stays within ``budget`` seconds of the first call."""

    budget: float
    tries: int | None = None
    base: float = 1.0
    cap: float = 8.0
    jitter: bool = False
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def backoff(self, attempt: int) -> float:
        """The wait after failed call number ``attempt`` (1-based), when no hint was given."""
        wait = min(self.base * 2.0 ** (attempt - 1), self.cap)
        return wait * (0.5 + random.random() / 2) if self.jitter else wait


def call_with_retries(
    call: Callable[[int], T],
    *,
    policy: RetryPolicy,
    retryable: Callable[[Exception], bool],
    hint: Callable[[Exception], float] = lambda exc: 0.0,
    what: str = "call",
) -> T:
    """``call(attempt)`` until it returns; an exception ``retryable`` says yes to is tried
    again after ``hint(exc)`` seconds (or the policy's backoff) while tries and budget
    last; otherwise it propagates."""
    deadline = policy.clock() + policy.budget
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(attempt)
        except Exception as exc:
            if not retryable(exc):
                raise
            wait = hint(exc) or policy.backoff(attempt)
            if (policy.tries is not None and attempt >= policy.tries) or policy.clock() + wait > deadline:
                raise
            logger.warning("retry what=%r attempt=%d wait=%.2fs reason=%s", what, attempt, wait, exc)
            policy.sleep(wait)
