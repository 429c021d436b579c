"""A production deploy that missed a step refuses to start with one clear line; it never
serves errors behind a green /healthz (gunicorn with DEBUG off, as fly.toml runs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from django.test import RequestFactory, override_settings

from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
REFUSAL = "DVR refuses to start: "


# What fly.toml and the secrets set, for plain http on loopback and one worker.
PRODUCTION = {
    "DEBUG": "false", "SECRET_KEY": "deploy-refusal-test-" + "k" * 50, "ALLOWED_HOSTS": "127.0.0.1",
    "SECURE_SSL_REDIRECT": "false", "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "LOG_FORMAT": "plain", "WEB_CONCURRENCY": "1",
}


def start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=ROOT, env={**env, "PORT": str(port), "BIND_HOST": "127.0.0.1"}, stdout=out, stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


def refused(env: dict[str, str], tmp_path: Path) -> list[str]:
    """Start gunicorn; it must exit by itself. Returns its refusal lines."""
    log = tmp_path / "web.log"
    process, _ = start(env, log)
    try:
        code = process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"gunicorn kept running with a broken deploy:\n{log.read_text()[-3000:]}")
    text = log.read_text(errors="replace")
    assert code != 0, text
    assert "Traceback" not in text, text
    return [line[line.index(REFUSAL):] for line in text.splitlines() if REFUSAL in line]


@pytest.fixture
def deploy_env(dvr_env: dict[str, str], collected_static: Path) -> dict[str, str]:
    """A deploy with every step done: this test's database (migrated), cache, the fake
    Bungie's settings, static files collected."""
    env = {k: v for k, v in dvr_env.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return {**env, **PRODUCTION, "STATIC_ROOT": str(collected_static)}


@pytest.mark.django_db(transaction=True)
def test_a_complete_deploy_serves_pages_static_files_and_a_health_report(deploy_env, tmp_path):
    process, url = start(deploy_env, tmp_path / "web.log")
    try:
        (home,) = wait_until(lambda: _get(url + "/"), 60, "the web to answer")
        assert home.status_code == 200, (tmp_path / "web.log").read_text()[-3000:]
        css = requests.get(url + "/static/css/dvr.css", timeout=10)
        assert css.status_code == 200 and b"{" in css.content
        health = requests.get(url + "/healthz", timeout=10).json()
        assert health["static"] == {"ok": True} and health["migrations"] == {"ok": True}
    finally:
        process.terminate()
        process.wait(timeout=30)


def _get(url: str) -> list[requests.Response]:
    """[the response] once the server answers (a list: a 500 response is falsy itself)."""
    try:
        return [requests.get(url, timeout=30)]
    except requests.ConnectionError:
        return []


@pytest.mark.django_db(transaction=True)
def test_static_files_not_collected_refuse_to_start(deploy_env, tmp_path):
    lines = refused({**deploy_env, "STATIC_ROOT": str(tmp_path / "never-collected")}, tmp_path)

    assert len(lines) == 1 and "static files are not collected" in lines[0] and "collectstatic" in lines[0]


@pytest.mark.django_db(transaction=True)
def test_migrations_not_applied_refuse_to_start(deploy_env, tmp_path):
    lines = refused({**deploy_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"}, tmp_path)

    assert len(lines) == 1 and "not applied" in lines[0] and "manage.py migrate" in lines[0]


@pytest.mark.django_db(transaction=True)
def test_missing_bungie_settings_refuse_to_start(deploy_env, tmp_path):
    env = {k: v for k, v in deploy_env.items() if k not in ("BUNGIE_CLIENT_SECRET", "BUNGIE_API_KEY")}
    lines = refused(env, tmp_path)

    assert len(lines) == 1 and "BUNGIE_API_KEY, BUNGIE_CLIENT_SECRET not set" in lines[0]


@pytest.mark.django_db(transaction=True)
def test_a_token_key_that_is_not_a_fernet_key_refuses_to_start(deploy_env, tmp_path):
    lines = refused({**deploy_env, "TOKEN_ENCRYPTION_KEYS": "not-a-key"}, tmp_path)

    assert len(lines) == 1 and "TOKEN_ENCRYPTION_KEYS: key 1 is not a Fernet key" in lines[0]


def test_the_500_page_renders_without_static_files_or_the_database(tmp_path):
    from dvr.views import server_error

    storage = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
    with override_settings(DEBUG=False, STATIC_ROOT=str(tmp_path), STORAGES={
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}, "staticfiles": storage,
    }):
        response = server_error(RequestFactory().get("/inventory/"))

    assert response.status_code == 500
    assert b"Something went wrong" in response.content and b"/static/" not in response.content
