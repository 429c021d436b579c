"""Shared fixtures: the fake Bungie.net wired into settings, and a clean cache per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache

from manifest.lookup import forget_active_seq, forget_local_summaries
from tests.fakebungie.pytest_plugin import fake_bungie  # noqa: F401  (a fixture)
from tests.fakebungie.server import FakeBungieServer


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    # The test database is rebuilt per test, so sequence numbers repeat: start each test
    # with an empty cache (a Redis database of the tests' own, never the broker's).
    cache.clear()
    forget_active_seq()
    forget_local_summaries()
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


# The embedded shape's test database is a file under var/ (settings: SQLITE_TEST_NAME), so
# subprocesses can share it; a fresh clone has no var/ yet.
(Path(__file__).resolve().parent.parent / "var").mkdir(exist_ok=True)

# Playwright's sync API keeps an event loop on the test thread; Django would then refuse
# ORM calls from that thread. The tests know what they do.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (no browser download works here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def synced(bungie: FakeBungieServer) -> FakeBungieServer:
    """The fake Bungie.net with its manifest synced and live."""
    from manifest.sync import manifest_sync

    assert manifest_sync().outcome == "live"
    forget_active_seq()
    return bungie


@pytest.fixture
def player(client, synced: FakeBungieServer):
    """The fake's player, logged in through DVR's real OAuth flow (manifest synced)."""
    from dvr.accounts.models import BungieAccount
    from tests.support import log_in

    response = log_in(client, synced)
    assert response.status_code == 302, response.content
    return BungieAccount.objects.get()


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Static files collected once, as a deploy's build step does (`collectstatic`):
    what a production-shape process with DEBUG off needs to start."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("collected-static")
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "collectstatic-" + "k" * 50, "ALLOWED_HOSTS": "127.0.0.1",
           "TOKEN_ENCRYPTION_KEYS": "a" * 43 + "=", "STATIC_ROOT": str(root), "DATABASE_URL": "sqlite:///:memory:"}
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--no-input"], cwd=Path(__file__).parent.parent,
                   env=env, check=True, capture_output=True, timeout=120)
    return root
