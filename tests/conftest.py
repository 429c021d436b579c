"""Shared fixtures: the fake Bungie.net wired into settings, and a clean cache per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache

from manifest.lookup import forget_active_seq
from tests.fakebungie.pytest_plugin import fake_bungie  # noqa: F401  (a fixture)
from tests.fakebungie.server import FakeBungieServer


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    # The test database is rebuilt per test, so sequence numbers repeat: start each test
    # with an empty cache (a Redis database of the tests' own, never the broker's).
    cache.clear()
    forget_active_seq()
    yield
    forget_active_seq()


@pytest.fixture
def bungie(fake_bungie: FakeBungieServer, settings) -> FakeBungieServer:  # noqa: F811
    """The fake Bungie.net, with DVR's settings pointing at it and short retry waits."""
    settings.BUNGIE_ROOT_URL = fake_bungie.url
    settings.BUNGIE_API_KEY = "fake-api-key"
    settings.BUNGIE_CLIENT_ID = "12345"
    settings.BUNGIE_CLIENT_SECRET = "fake-client-secret"
    settings.BUNGIE_RETRY_BUDGET = 3
    settings.MANIFEST_TABLE_RETRY_SECONDS = 0.01
    return fake_bungie


@pytest.fixture
def dvr_env(bungie: FakeBungieServer, settings) -> dict[str, str]:
    """Environment for a DVR subprocess (command, qcluster, gunicorn) that shares this
    test's database, Redis and fake Bungie."""
    import os

    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "postgresql":
        database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    else:
        database_url = f"sqlite:///{db['NAME']}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BUNGIE_ROOT_URL": bungie.url,
        "BUNGIE_API_KEY": "fake-api-key",
        "BUNGIE_CLIENT_ID": "12345",
        "BUNGIE_CLIENT_SECRET": "fake-client-secret",
        "MANIFEST_TABLE_RETRY_SECONDS": "0.01",
        "BUNGIE_RETRY_BUDGET": "3",
        "PYTHONUNBUFFERED": "1",
    }
    if not settings.REDIS_URL:
        env.pop("REDIS_URL", None)
    return env
