"""One sync at a time, across threads and processes; the cluster runs queued refreshes."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest
from django.db import connection

from manifest.models import Definition, ManifestState, ManifestTable, ManifestVersion
from manifest.sync import manifest_sync
from manifest.tasks import enqueue_refresh
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_threads_refreshing_at_once_one_syncs_and_the_other_is_told_it_is_running(bungie):
    bungie.app.misbehave("slow", on="tables", seconds=0.3, count=3)
    results = []

    def run() -> None:
        try:
            results.append(manifest_sync())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(r.outcome for r in results) == ["busy", "live"]
    busy = next(r for r in results if r.outcome == "busy")
    assert busy.temporary and "already running" in busy.summary()
    assert ManifestVersion.objects.count() == 1
    seq = ManifestState.get().active_seq
    assert Definition.objects.filter(valid_from=seq).count() == Definition.objects.count()


def test_two_processes_refreshing_at_once_one_syncs_and_the_other_exits_75(bungie, dvr_env):
    # Slow enough that the first still holds the lock while the second starts Django (the
    # downloads overlap parsing: the slow ones are most of the sync's time).
    bungie.app.misbehave("slow", on="tables", seconds=0.5, count=8)
    command = [sys.executable, "manage.py", "refresh_manifest"]
    first = subprocess.Popen(command, env=dvr_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: bungie.app.stats()["tables"], what="the first sync to download")
    second = subprocess.run(command, env=dvr_env, capture_output=True, text=True, timeout=120)
    out, _ = first.communicate(timeout=120)

    assert second.returncode == 75
    assert "already running" in second.stdout + second.stderr
    assert first.returncode == 0, out
    assert ManifestState.get().active is not None


@pytest.mark.postgres_only
def test_languages_stored_at_once_on_their_own_connections_go_live_or_fail_together(bungie, settings, tmp_path):
    settings.MANIFEST_LANGUAGES = ["en", "fr"]  # the fake's two
    settings.MANIFEST_SYNC_LANES = 2
    settings.MANIFEST_DOWNLOAD_DIR = str(tmp_path)
    bungie.app.publish(version="two-languages")

    first = manifest_sync()

    assert first.outcome == "live", first.reason
    seq = ManifestState.get().active_seq
    rows = {lang: Definition.objects.at(seq).filter(language=lang).count() for lang in ("en", "fr")}
    assert rows["en"] == rows["fr"] > 0 and first.added == sum(rows.values())
    assert first.tables_total == ManifestTable.objects.filter(version__version="two-languages").count()
    before = set(Definition.objects.values_list("pk", "valid_from", "valid_to"))

    bungie.app.publish(version="broken", raw={"DestinyRaceDefinition": b"<!doctype html><html>"})
    failed = manifest_sync()

    assert failed.outcome == "failed" and "DestinyRaceDefinition" in failed.reason
    assert set(Definition.objects.values_list("pk", "valid_from", "valid_to")) == before
    assert ManifestState.get().active.version == "two-languages"
    assert not ManifestTable.objects.filter(version__version="broken").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_refresh_queued_while_a_sync_runs_is_refused_at_once(bungie):
    from manifest.locking import sync_lock

    done = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with sync_lock():
            holding.set()
            done.wait(30)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    try:
        outcome = enqueue_refresh(requested_by="test")
    finally:
        done.set()
        holder.join(10)

    assert outcome.as_dict() == {"queued": False, "running": True, "message": "a manifest sync is already running"}


def test_a_real_qcluster_runs_an_enqueued_refresh(bungie, dvr_env):
    from django_q.brokers import get_broker

    get_broker().purge_queue()
    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], env=dvr_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        outcome = enqueue_refresh(requested_by="test")
        assert outcome.queued
        wait_until(lambda: ManifestState.objects.filter(active__isnull=False).exists(), 90, "the cluster's sync")
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cluster.kill()

    from django_q.models import Task

    wait_until(lambda: Task.objects.filter(func="manifest.tasks.refresh_manifest").exists(), 10, "the task result")
    task = Task.objects.get(func="manifest.tasks.refresh_manifest")
    assert task.success
    assert task.result["outcome"] == "live"
