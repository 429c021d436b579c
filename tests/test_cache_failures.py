"""The one way DVR survives a cache failure (dvr/lib/cache.py): the caller's default, and
one log line per outage and purpose, not one per call."""

from __future__ import annotations

import logging

from dvr.lib.cache import cache_or


def broken() -> int:
    raise ConnectionError("Redis is away")


def test_a_failing_cache_call_gives_the_default(caplog):
    assert cache_or(broken, 7, what="a test's value") == 7


def test_a_working_cache_call_gives_its_value():
    assert cache_or(lambda: 3, 7, what="a test's working value") == 3


def test_an_outage_is_logged_once_per_purpose_not_per_call(caplog):
    with caplog.at_level(logging.WARNING, logger="dvr.lib.cache"):
        for _ in range(5):
            cache_or(broken, None, what="pacing during a test")
        cache_or(broken, None, what="saved profile during a test")

    lines = [r.getMessage() for r in caplog.records if r.name == "dvr.lib.cache"]
    assert lines == [
        "cache unavailable for pacing during a test: ConnectionError (carrying on without it)",
        "cache unavailable for saved profile during a test: ConnectionError (carrying on without it)",
    ]
