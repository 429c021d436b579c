"""The project itself: settings from the environment, the health endpoint, error pages,
and the rule that only dvr/lib/bungie/ speaks to Bungie."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import caches

from manifest.sync import manifest_sync

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-enough-0123456789abcdef",
    "ALLOWED_HOSTS": "dvr.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/dvr",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "TOKEN_ENCRYPTION_KEYS": "bWFrZS1hLXJlYWwtb25lLXdpdGgtRmVybmV0LWtleT0=",
}


def django_python(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {
        "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); from django.conf import settings; {code}"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "dvr.settings", **env},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


# --- settings -----------------------------------------------------------------------------------
def test_with_debug_off_a_missing_secret_key_stops_start_up_clearly():
    result = django_python({"ALLOWED_HOSTS": "dvr.example.com"}, "print('started')")

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_with_debug_off_missing_allowed_hosts_stops_start_up_clearly():
    result = django_python({"SECRET_KEY": "x" * 60}, "print('started')")

    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set when DEBUG is off" in result.stderr


def test_the_embedded_default_is_sqlite_local_cache_and_the_orm_broker():
    result = django_python(
        {"DEBUG": "true"},
        "print(settings.DATABASES['default']['ENGINE'], settings.CACHES['default']['BACKEND'], "
        "settings.Q_CLUSTER.get('orm'), 'redis' in settings.Q_CLUSTER)",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3", "django.core.cache.backends.locmem.LocMemCache", "default", "False"
    ]


def test_database_and_redis_urls_switch_to_postgres_and_redis_on_two_databases():
    result = django_python(
        {"DEBUG": "true", "DATABASE_URL": PRODUCTION["DATABASE_URL"], "REDIS_URL": "redis://127.0.0.1:6379/3"},
        "print(settings.DATABASES['default']['ENGINE'], settings.CACHES['default']['BACKEND'], "
        "settings.CACHES['default']['LOCATION'], settings.Q_CLUSTER['redis'], 'orm' in settings.Q_CLUSTER)",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql", "django_redis.cache.RedisCache",
        "redis://127.0.0.1:6379/3", "redis://127.0.0.1:6379/4", "False",
    ]


def test_the_production_shape_passes_check_deploy():
    # The tests' own DJANGO_ALLOW_ASYNC_UNSAFE (for Playwright) is itself a deploy error.
    unset = {"DEBUG", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={**clean, **PRODUCTION}, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# --- /healthz -------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_healthz_is_503_with_no_manifest_yet(client):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["database"]["ok"] and body["cache"]["ok"] and body["broker"]["ok"]
    assert body["manifest"]["message"] == "no manifest yet"
    assert body["manifest"]["stale"] is True


@pytest.mark.django_db
def test_healthz_is_200_with_a_fresh_manifest(client, bungie):
    manifest_sync()

    response = client.get("/healthz")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["manifest"]["active_version"] == "244122.26.06.10.2000-1-bnet.65386"
    assert body["manifest"]["stale"] is False
    assert body["manifest"]["last_checked_at"]


@pytest.mark.django_db
def test_healthz_reports_a_stale_manifest_when_checks_stop(client, bungie):
    import time_machine
    from django.utils import timezone

    manifest_sync()
    with time_machine.travel(timezone.now() + timezone.timedelta(hours=1)):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["manifest"]["stale"] is True


@pytest.mark.django_db
def test_healthz_is_503_when_the_cache_is_down(client, bungie, settings):
    manifest_sync()
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    try:
        response = client.get("/healthz")
    finally:
        caches["default"].close()

    assert response.status_code == 503
    assert response.json()["cache"]["ok"] is False
    assert response.json()["database"]["ok"] is True


# --- pages --------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_home_page_renders_before_any_manifest(client):
    response = client.get("/")

    assert response.status_code == 200
    assert "No manifest yet" in response.content.decode()


@pytest.mark.django_db
def test_an_unknown_page_is_a_friendly_404(client, settings):
    settings.DEBUG = False

    response = client.get("/no/such/page/")

    assert response.status_code == 404
    assert "There is nothing at this address" in response.content.decode()


# --- one way to Bungie -------------------------------------------------------------------------
def test_no_code_outside_the_bungie_client_builds_a_bungie_url():
    pattern = re.compile(r"bungie\.net|/Platform/|/common/destiny2_content|OAuth/Authorize", re.IGNORECASE)
    offenders = []
    for folder in ("dvr", "manifest", "inventory", "templates"):
        for path in (ROOT / folder).rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            # The manifest mirror (manifest/mirror*.py) answers Bungie's paths; it builds no URL to Bungie.
            exempt = relative.startswith(("dvr/lib/bungie/", "dvr/settings.py", "manifest/mirror"))
            if path.suffix not in (".py", ".html", ".js") or exempt:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
