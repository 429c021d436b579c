"""The suite's named cast, one meaning per name everywhere (shared helpers: support.py).

Bungie: ``fake`` (the fake Bungie.net on its own), ``bungie`` (the fake, DVR pointed at it),
``synced`` (its manifest synced and live), ``synced_many_items`` (with 1,300 items).
People: ``player`` (the fake's player logged in through the real OAuth flow, manifest
synced), ``player_without_manifest`` (the same login, no manifest), ``staff`` (an admin),
``plain_user`` (a Django user who is not staff and has no Bungie account).
Servers: ``site`` (DVR on a live server the fake's login returns to), ``synced_site`` (the
same, manifest synced), ``dvr_env`` (the environment for a DVR subprocess), ``browser`` and
``page`` (Chromium).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from manifest.lookup import forget_active_seq, forget_local_summaries
from tests.fakebungie.pytest_plugin import fake_bungie  # noqa: F401  (a fixture)
from tests.fakebungie.server import FakeBungieServer
from tests.support import log_in


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    # The test database is rebuilt per test, so sequence numbers repeat: start each test
    # with an empty cache (a Redis database of the tests' own, never the broker's).
    cache.clear()
    forget_active_seq()
    forget_local_summaries()
    yield
    forget_active_seq()


@pytest.fixture(autouse=True)
def _mirror_files(settings, tmp_path_factory: pytest.TempPathFactory) -> None:
    # The mirror keeps rebuilt files on disk (manifest/mirror_files.py): each test starts
    # with none, so what it downloads is built from its own rows.
    settings.MIRROR_FILE_CACHE_DIR = str(tmp_path_factory.mktemp("mirror-files"))


@pytest.fixture
def fake(fake_bungie: FakeBungieServer) -> FakeBungieServer:  # noqa: F811
    """The fake Bungie.net on its own, DVR's settings untouched (the fake's own tests)."""
    return fake_bungie


@pytest.fixture
def bungie(fake_bungie: FakeBungieServer, settings) -> FakeBungieServer:  # noqa: F811
    """The fake Bungie.net, with DVR's settings pointing at it and short retry waits."""
    settings.BUNGIE_ROOT_URL = fake_bungie.url
    settings.BUNGIE_API_KEY = "fake-api-key"
    settings.BUNGIE_CLIENT_ID = "12345"
    settings.BUNGIE_CLIENT_SECRET = "fake-client-secret"
    settings.BUNGIE_RETRY_BUDGET = 3
    settings.MANIFEST_TABLE_RETRY_SECONDS = 0.01
    # The fake's own limits (one transfer a second per account...) are off unless a test
    # switches them on (`bungie_limits`): DVR need not wait a second between transfers.
    settings.BUNGIE_TRANSFER_PACE_SECONDS = 0.02
    return fake_bungie


@pytest.fixture
def bungie_limits(bungie: FakeBungieServer, settings) -> FakeBungieServer:
    """The fake Bungie.net enforcing Bungie's real limits, and DVR pacing as in production."""
    from dvr import settings as configured  # the pace as deployed, not the tests' shortened one

    bungie.app.quirks(limits=True)
    settings.BUNGIE_TRANSFER_PACE_SECONDS = configured.BUNGIE_TRANSFER_PACE_SECONDS
    return bungie


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
    """A fresh Chromium tab (its own context) with a 15 s default timeout."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _sync_live() -> None:
    from manifest.sync import manifest_sync

    assert manifest_sync().outcome == "live"
    forget_active_seq()


@pytest.fixture
def synced(bungie: FakeBungieServer) -> FakeBungieServer:
    """The fake Bungie.net with its manifest synced and live."""
    _sync_live()
    return bungie


@pytest.fixture
def synced_many_items(bungie: FakeBungieServer) -> FakeBungieServer:
    """The fake Bungie.net publishing 1,300 items (seed 5), that manifest synced and live."""
    from tests.fakebungie.items import ItemSpec

    bungie.app.publish(items=ItemSpec(count=1300, seed=5))
    _sync_live()
    return bungie


def _player_logged_in(client, bungie: FakeBungieServer):
    from dvr.accounts.models import BungieAccount

    response = log_in(client, bungie)
    assert response.status_code == 302, response.content
    return BungieAccount.objects.get()


@pytest.fixture
def player(client, synced: FakeBungieServer):
    """The fake's player, logged in through DVR's real OAuth flow (manifest synced)."""
    return _player_logged_in(client, synced)


@pytest.fixture
def player_without_manifest(client, bungie: FakeBungieServer):
    """The fake's player, logged in through DVR's real OAuth flow, no manifest synced."""
    return _player_logged_in(client, bungie)


@pytest.fixture
def staff(db):
    """Ada, a staff superuser with a password (the admin, the refresh endpoint)."""
    return get_user_model().objects.create_user("ada", password="pw-ada-123", is_staff=True, is_superuser=True)


@pytest.fixture
def plain_user(db):
    """A Django user with a password who is not staff and has no Bungie account."""
    return get_user_model().objects.create_user("guardian", password="pw-guardian-123")


@pytest.fixture
def site(live_server, bungie: FakeBungieServer) -> str:
    """DVR on a live server, the fake's login sending players back to it; its URL."""
    bungie.app.redirect_uri = live_server.url + "/oauth/callback/"
    return live_server.url


@pytest.fixture
def synced_site(site: str) -> str:
    """DVR on a live server the fake's login returns to, manifest synced; its URL."""
    _sync_live()
    return site


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
