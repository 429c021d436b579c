"""The production shape, as `make prod` and fly.toml run it: gunicorn and two qclusters on
Postgres and Redis with DEBUG off, started by bin/prod.py, on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet

from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
NEW_DATASET = "2026-06-23"
TASK_PATH = "manifest.tasks.refresh_manifest"


def production_env(base: dict[str, str], tmp_path: Path, **overrides: str) -> dict[str, str]:
    """What fly.toml sets, plus secrets, for loopback: plain http, JSON logs to parse."""
    env = {k: v for k, v in base.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({
        "DEBUG": "false",
        "SECRET_KEY": "production-shape-test-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "STATIC_ROOT": str(tmp_path / "static"),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "WEB_CONCURRENCY": "2",
        **overrides,
    })
    return env


@dataclass
class Shape:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=20, **kwargs)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """Every JSON log line any of the processes wrote."""
        events = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                with suppress(ValueError):
                    events.append(json.loads(line))
        return events

    def child_pids(self) -> list[int]:
        return [int(pid) for pid in re.findall(r"^prod: started \S+ pid=(\d+)$", self.text(), re.M)]


@contextmanager
def production_shape(env: dict[str, str], tmp_path: Path, *, clusters: int = 2) -> Iterator[Shape]:
    """bin/prod.py (what `make prod` runs): collectstatic, migrate, gunicorn, clusters."""
    port = free_port()
    log = tmp_path / "prod.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "bin/prod.py", "--port", str(port), "--clusters", str(clusters)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    shape = Shape(process=process, url=f"http://127.0.0.1:{port}", log=log)
    try:
        wait_until(lambda: "Ctrl-C stops everything" in shape.text() or process.poll() is not None,
                   120, "the production shape to start")
        assert process.poll() is None, shape.text()[-4000:]
        yield shape
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        for pid in shape.child_pids():  # never leave a gunicorn or a cluster behind
            with suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is a process that has exited: look at its state.
    with suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_production_shape_syncs_a_new_manifest_exactly_once_and_the_web_serves_it(
    bungie, dvr_env, settings, tmp_path
):
    from django.db import connection
    from django_q.brokers import get_broker
    from django_q.models import Task

    from manifest.locking import sync_is_running
    from manifest.models import ManifestState, ManifestVersion
    from manifest.sync import manifest_sync
    from manifest.tasks import RefreshRequest, enqueue_refresh, ensure_schedule

    assert connection.vendor == "postgresql" and settings.REDIS_URL, "needs Postgres and Redis"
    first = manifest_sync()
    assert first.outcome == "live"
    settings.MANIFEST_CHECK_MINUTES = 1
    ensure_schedule()
    get_broker().purge_queue()

    # django-q2 signs queued tasks with SECRET_KEY: whoever enqueues shares the workers' key
    # (on Fly, one app-wide secret), so this test process does too.
    env = production_env(dvr_env, tmp_path, MANIFEST_CHECK_MINUTES="1", SECRET_KEY=settings.SECRET_KEY)
    with production_shape(env, tmp_path, clusters=2) as shape:
        before = shape.get("/healthz", headers={"X-Request-ID": "prodshape-before-1"})
        assert before.status_code == 200, before.text
        assert before.json()["manifest"]["active_version"] == first.version
        assert before.headers["X-Request-ID"] == "prodshape-before-1"

        # Bungie publishes; slow tables keep a sync running long enough for the others to
        # meet it. Two refreshes are queued at once and the schedule fires too.
        published = bungie.app.publish(NEW_DATASET)
        bungie.app.misbehave("slow", on="tables", seconds=0.3, count=4)
        outcomes: list[RefreshRequest] = []
        threads = [threading.Thread(target=lambda: outcomes.append(enqueue_refresh(requested_by="test")))
                   for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        queued = [o.task_id for o in outcomes if o.queued]
        assert queued, outcomes

        wait_until(lambda: ManifestState.objects.filter(active__version=published.version).exists(),
                   150, f"{published.version} to go live")
        wait_until(lambda: Task.objects.filter(id__in=queued).count() == len(queued), 60, "the queued tasks")
        wait_until(lambda: not sync_is_running() and get_broker().queue_size() == 0, 60, "the cluster to settle")

        version = ManifestVersion.objects.get(version=published.version)
        assert version.status == ManifestVersion.Status.LIVE
        went_live = [t for t in Task.objects.filter(func=TASK_PATH)
                     if isinstance(t.result, dict) and t.result.get("outcome") == "live"
                     and t.result.get("version") == published.version]
        assert len(went_live) == 1, [t.result for t in Task.objects.filter(func=TASK_PATH)]

        # The web process serves the new version, as JSON, as a page and on /healthz.
        api = shape.get("/api/manifest/")
        assert api.status_code == 200 and api.json()["version"] == published.version
        home = shape.get("/")
        assert home.status_code == 200 and published.version in home.text
        health = shape.get("/healthz", headers={"X-Request-ID": "prodshape-after-1"})
        assert health.status_code == 200 and health.json()["manifest"]["active_version"] == published.version

        # Static files are collected and served by whitenoise under hashed names.
        css = re.search(r'href="(/static/[^"]+\.css)"', home.text)
        assert css and shape.get(css.group(1)).status_code == 200

        # One structured line per event: the sync's outcome once, the request by its id.
        time.sleep(1)  # let the last access-log lines reach the file
        events = shape.events()
        synced = [e for e in events if e.get("event") == "manifest.sync" and e.get("outcome") == "live"
                  and e.get("version") == published.version]
        assert len(synced) == 1, synced
        assert synced[0]["logger"] == "manifest.sync" and synced[0]["tables_total"] >= 1
        access = [e for e in events if e.get("logger") == "gunicorn.access"
                  and e.get("request_id") == "prodshape-after-1"]
        assert access and access[0]["path"] == "/healthz" and access[0]["status"] == 200
        children = shape.child_pids()
        assert len(children) == 3  # gunicorn and two clusters; the fake Bungie is the test's

        # Ctrl-C (SIGINT) stops every process it started, cleanly.
        shape.process.send_signal(signal.SIGINT)
        assert shape.process.wait(timeout=60) == 0, shape.text()[-3000:]
        assert [pid for pid in children if alive(pid)] == []


def test_healthz_through_gunicorn_is_503_at_once_when_postgres_is_unreachable(tmp_path, collected_static):
    port = free_port()
    # Every deploy step done (dvr/startup.py refuses a deploy that missed one); Postgres down.
    env = production_env(
        dict(os.environ), tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:9/dvr?connect_timeout=2",  # nothing listens on 9
        PORT=str(port), BIND_HOST="127.0.0.1", WEB_CONCURRENCY="1", STATIC_ROOT=str(collected_static),
        BUNGIE_API_KEY="fake-api-key", BUNGIE_CLIENT_ID="12345", BUNGIE_CLIENT_SECRET="fake-client-secret",
    )
    env.pop("REDIS_URL", None)  # the embedded broker then lives in the same unreachable database
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "dvr.wsgi"],
                               cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def answered() -> tuple[requests.Response] | None:  # (a 503 Response is falsy)
            assert web.poll() is None, log.read_text()
            try:
                return (requests.get(f"{url}/healthz", timeout=20),)
            except requests.ConnectionError:
                return None

        (response,) = wait_until(answered, 60, "gunicorn to answer")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "unhealthy"
        assert body["database"] == {"ok": False, "error": "OperationalError"}
        assert body["manifest"]["error"] == "database unavailable"

        # A platform probe calls the machine by its private IP: still an answer, not a 400.
        probe = requests.get(f"{url}/healthz", headers={"Host": "172.19.17.130:8000"}, timeout=20)
        assert probe.status_code == 503 and probe.json()["database"]["ok"] is False
        other = requests.get(f"{url}/api/manifest/", headers={"Host": "172.19.17.130:8000"}, timeout=20)
        assert other.status_code == 400  # every other path still checks ALLOWED_HOSTS
    finally:
        web.send_signal(signal.SIGTERM)
        try:
            web.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait()
