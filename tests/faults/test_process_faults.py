"""Processes and connections dying under a sync: the cluster stopped with SIGTERM mid-task,
the sync's database connection dropped (pg_terminate_backend). The live version stays
whole, nothing half-written is ever visible, and the next run succeeds by itself.

SIGKILL mid-download and mid-write are tests/test_refresh_manifest_command.py's
test_a_sync_killed_mid_way_leaves_the_live_version_and_the_next_one_succeeds.
"""

from __future__ import annotations

import signal

import pytest
from django.db.models import Sum
from django.test import Client

from manifest.locking import sync_is_running
from manifest.lookup import forget_active_seq
from manifest.models import Definition, ManifestState, ManifestTable, ManifestVersion
from manifest.sync import manifest_sync
from manifest.tasks import enqueue_refresh
from tests.faults.helpers import clusters, stop, sync_backend_pids, task_results, terminate_backend, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

NEW_DATASET = "2025-12-02"  # many changed tables: the sync writes rows for a while


def assert_whole(version: str) -> None:
    """``version`` is live, each of its tables holds exactly its entries, and no attempt is
    left half-way."""
    state = ManifestState.get()
    assert state.active.version == version
    seq = state.active_seq
    visible = Definition.objects.at(seq).count()
    assert visible == ManifestTable.objects.filter(version=state.active).aggregate(n=Sum("entries"))["n"]
    assert not ManifestVersion.objects.filter(status__in=["checking", "downloading"]).exists()
    forget_active_seq()
    assert Client().get("/api/manifest/").json()["version"] == version


def test_a_cluster_stopped_with_sigterm_mid_task_leaves_the_live_version_and_the_next_cluster_syncs(
    bungie, dvr_env, tmp_path, settings
):
    from django_q.brokers import get_broker

    env = {**dvr_env, "SECRET_KEY": settings.SECRET_KEY}
    first = manifest_sync()
    get_broker().purge_queue()
    published = bungie.app.publish(NEW_DATASET)
    bungie.app.reset(stats=True)  # from here on, the tables downloaded are the cluster's
    bungie.app.misbehave("slow", on="tables", seconds=1.0)

    with clusters(env, tmp_path) as (cluster,):
        assert enqueue_refresh(requested_by="test").queued
        wait_until(lambda: bungie.app.stats()["tables"], 60, "the cluster's sync to download")
        stop(cluster, sig=signal.SIGTERM, seconds=60)

    # Stopped: whether the worker finished its task or was ended, the live version is whole.
    wait_until(lambda: not sync_is_running(), 30, "the lock to be released")
    live = ManifestState.get().active.version
    assert live in (first.version, published.version)
    assert_whole(live)

    bungie.app.reset()
    get_broker().purge_queue()
    with clusters(env, tmp_path) as _:
        assert enqueue_refresh(requested_by="after").queued
        wait_until(lambda: ManifestState.objects.filter(active__version=published.version).exists(), 120,
                   "the next cluster to sync")
        wait_until(lambda: not sync_is_running(), 60, "the sync to finish")
    assert_whole(published.version)


@pytest.mark.postgres_only
def test_a_dropped_database_connection_mid_sync_fails_the_attempt_and_the_same_cluster_recovers(
    bungie, dvr_env, tmp_path, settings
):
    from django_q.brokers import get_broker

    env = {**dvr_env, "SECRET_KEY": settings.SECRET_KEY}
    first = manifest_sync()
    get_broker().purge_queue()
    published = bungie.app.publish(NEW_DATASET)
    bungie.app.misbehave("slow", on="tables", seconds=0.5)

    with clusters(env, tmp_path) as (cluster,):
        assert enqueue_refresh(requested_by="test").queued
        active_seq = ManifestState.get().active_seq
        wait_until(lambda: Definition.objects.filter(valid_from__gt=active_seq).exists(), 90, "rows being written")
        (backend,) = wait_until(sync_backend_pids, 10, "the sync's backend")
        assert terminate_backend(backend)

        # The attempt fails; the server released the lock with the connection.
        wait_until(lambda: task_results(), 60, "the task to end")
        wait_until(lambda: not sync_is_running(), 30, "the lock to be released")
        assert ManifestState.get().active.version == first.version
        forget_active_seq()
        assert Client().get("/api/manifest/").json()["version"] == first.version
        failed = task_results()[0]
        assert not failed["success"] and "terminating connection" in failed["result"]["error"], failed

        # The same cluster, the same worker processes: the next task gets a new connection.
        bungie.app.reset()
        assert enqueue_refresh(requested_by="after").queued
        wait_until(lambda: ManifestState.objects.filter(active__version=published.version).exists(), 120,
                   "the same cluster to sync after the drop")
        assert cluster.poll() is None
    wait_until(lambda: not sync_is_running(), 60, "the sync to finish")
    assert_whole(published.version)
