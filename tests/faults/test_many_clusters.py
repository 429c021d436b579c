"""Many callers, many clusters, one sync at a time (`make faults`: these take minutes).

- A burst of refreshes (admin clicks, the endpoint, the schedule) with a cluster of two
  workers: one sync at a time, the rest told a sync is running, the endpoint rate-limited.
- Two qclusters on the same Postgres and Redis with the schedule at its shortest interval
  (one minute) for a few minutes while Bungie publishes: every version synced exactly once.
The production shape's own test (tests/test_production.py) covers queued refreshes through
gunicorn; these cover the schedule and the burst.
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from manifest.locking import sync_is_running
from manifest.models import ManifestState, ManifestVersion
from manifest.sync import manifest_sync
from manifest.tasks import SCHEDULE_NAME, ensure_schedule
from tests.faults.helpers import clusters, overlapping, task_results, wait_until
from tests.support import not_near_a_window_edge

pytestmark = [pytest.mark.faults, pytest.mark.postgres_only, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(420)]

TOKEN = "burst-refresh-token"


def settled() -> bool:
    from django_q.brokers import get_broker

    return not sync_is_running() and get_broker().queue_size() == 0


def due_now() -> None:
    """Make the schedule due at once (rather than waiting out its interval)."""
    from django_q.models import Schedule

    Schedule.objects.filter(name=SCHEDULE_NAME).update(next_run=timezone.now() - timedelta(seconds=1))


def test_a_burst_of_refreshes_runs_one_sync_at_a_time_and_tells_the_rest(bungie, dvr_env, tmp_path, settings):
    from django.contrib.auth.models import User
    from django_q.brokers import get_broker

    settings.MANIFEST_REFRESH_TOKEN = TOKEN
    settings.MANIFEST_CHECK_MINUTES = 1
    first = manifest_sync()
    ensure_schedule()
    get_broker().purge_queue()
    staff = User.objects.create_user("operator", password="x", is_staff=True, is_superuser=True)
    env = {**dvr_env, "SECRET_KEY": settings.SECRET_KEY, "Q_WORKERS": "2"}
    published = bungie.app.publish("2025-12-02")
    bungie.app.misbehave("slow", on="tables", seconds=0.3)

    answers: list[tuple[str, int, dict]] = []
    lock = threading.Lock()

    def endpoint() -> None:
        response = Client().post("/manifest/refresh/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        with lock:
            answers.append(("endpoint", response.status_code, response.json()))
        connection.close()

    def admin_click() -> None:
        client = Client()
        client.force_login(staff)
        # The changelist's "Refresh manifest" button (no selection needed).
        response = client.post("/admin/manifest/manifestversion/refresh/", follow=True)
        said = [str(m) for m in response.context["messages"]] if response.context else []
        with lock:
            answers.append(("admin", response.status_code, {"messages": said}))
        connection.close()

    with clusters(env, tmp_path) as _:
        due_now()
        not_near_a_window_edge()
        callers = [threading.Thread(target=endpoint) for _ in range(10)]
        callers += [threading.Thread(target=admin_click) for _ in range(3)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(60)
        wait_until(lambda: ManifestState.objects.filter(active__version=published.version).exists(), 180,
                   "the new version to go live")
        time.sleep(2)  # the cluster records the last results
        wait_until(settled, 60, "the cluster to settle")
        wait_until(lambda: any(t["name"].startswith(SCHEDULE_NAME) or not t["name"].startswith("manifest refresh")
                               for t in task_results()), 60, "the schedule's run")

    statuses = sorted(status for kind, status, _ in answers if kind == "endpoint")
    assert set(statuses) <= {202, 429} and statuses.count(429) == 10 - settings.MANIFEST_REFRESH_RATE_LIMIT
    assert all(body["queued"] or body["running"] or body.get("already_queued") for kind, status, body in answers
               if kind == "endpoint" and status == 202)
    admin = [body["messages"] for kind, status, body in answers if kind == "admin" and status == 200]
    assert len(admin) == 3 and all(m and ("queued" in m[0] or "already running" in m[0]) for m in admin)

    tasks = task_results()
    lives = [t for t in tasks if t["result"].get("outcome") == "live"]
    assert [t["result"]["version"] for t in lives] == [published.version], tasks
    assert overlapping(tasks) == [], tasks
    assert {t["result"].get("outcome") for t in tasks} <= {"live", "busy", "unchanged"}, tasks
    assert ManifestVersion.objects.filter(version=published.version).count() == 1
    assert ManifestVersion.objects.get(version=first.version).status == ManifestVersion.Status.SUPERSEDED


def test_two_clusters_on_the_shortest_schedule_sync_every_new_version_exactly_once(
    bungie, dvr_env, tmp_path, settings
):
    from django_q.brokers import get_broker

    settings.MANIFEST_CHECK_MINUTES = 1
    ensure_schedule()
    get_broker().purge_queue()
    env = {**dvr_env, "SECRET_KEY": settings.SECRET_KEY, "MANIFEST_CHECK_MINUTES": "1"}
    started = time.monotonic()
    seen = []

    with clusters(env, tmp_path, count=2) as running:
        due_now()
        # Bungie's current version, then two publishes, each picked up by the schedule alone.
        for dataset in (None, "2026-06-23", "2025-12-02"):
            if dataset:
                bungie.app.misbehave("slow", on="tables", seconds=0.2)
                version = bungie.app.publish(dataset).version
            else:
                version = bungie.app.state()["current"]["version"]
            wait_until(lambda v=version: ManifestState.objects.filter(active__version=v).exists(), 150,
                       f"{version} to go live by the schedule")
            seen.append(version)
            bungie.app.reset()
        wait_until(settled, 60, "the clusters to settle")
        assert all(process.poll() is None for process in running)
    minutes = (time.monotonic() - started) / 60

    tasks = task_results()
    lives = [t["result"]["version"] for t in tasks if t["result"].get("outcome") == "live"]
    assert lives == seen, tasks
    assert overlapping(tasks) == [], tasks
    assert all(t["success"] for t in tasks), tasks
    for version in seen:
        assert ManifestVersion.objects.filter(version=version).count() == 1
    # The schedule ran once per due time, not once per cluster.
    starts = sorted(t["started"] for t in tasks)
    assert all((later - earlier).total_seconds() > 30 for earlier, later in itertools.pairwise(starts)), starts
    assert len(tasks) <= minutes + 2, (len(tasks), minutes)
