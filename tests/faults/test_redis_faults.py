"""Redis stopped and started again while pages are served and while a sync runs: lookups fall
back to the database, the sync's lock (in Postgres) is unaffected, the endpoint says the
queue is unavailable instead of failing, and the cache and the broker are used again once
Redis is back. The Redis is the test's own (tests/faults/helpers.py), never the machine's."""

from __future__ import annotations

import re

import pytest
import redis
from django.test import Client

from manifest.locking import sync_is_running
from manifest.lookup import forget_active_seq, forget_local_summaries
from manifest.models import ManifestState, ManifestVersion
from manifest.sync import manifest_sync
from manifest.tasks import enqueue_refresh
from tests.faults.helpers import RedisServer, clusters, task_results, wait_until
from tests.support import log_in

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

NEW_DATASET = "2026-06-23"
ITEMS = "DestinyInventoryItemDefinition"


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_cache(own_redis, settings):
    """DVR's cache on the test's own Redis, with the production shape's short timeouts."""
    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": own_redis.url + "/0",
        "KEY_PREFIX": "dvr",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5, "IGNORE_EXCEPTIONS": False},
    }}
    return redis.Redis.from_url(own_redis.url + "/0")


def names_on(page: str) -> list[str]:
    return sorted(re.findall(r'<span class="name">([^<]*)</span>', page))


def test_pages_keep_answering_while_redis_is_down_and_use_the_cache_again_when_it_is_back(
    client, bungie, own_redis, redis_cache
):
    assert manifest_sync().outcome == "live"
    forget_active_seq()
    assert log_in(client, bungie).status_code == 302
    warm = client.get("/inventory/").content.decode()
    assert redis_cache.keys("dvr:*:dj*"), "the page's definitions were cached"
    item_hash = next(i["item_hash"] for i in bungie.app.player_state()["items"])

    own_redis.stop()

    down = client.get("/inventory/")
    assert down.status_code == 200
    assert names_on(down.content.decode()) == names_on(warm) and "Unknown item" not in names_on(warm)
    for path in ("/", "/manifest/", "/account/", f"/api/definitions/{ITEMS}/{item_hash}/"):
        assert client.get(path).status_code == 200, path
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["cache"]["ok"] is False and health.json()["database"]["ok"] is True
    # A new login works too (sessions live in the database).
    other = Client()
    assert log_in(other, bungie).status_code == 302 and other.get("/inventory/").status_code == 200

    own_redis.start()  # same port, empty
    # This process keeps the page's summaries in memory (manifest.lookup): as a process
    # that has not seen them yet, which reads them through Redis.
    forget_local_summaries()

    assert client.get("/inventory/").status_code == 200
    assert client.get(f"/api/definitions/{ITEMS}/{item_hash}/").status_code == 200
    assert redis_cache.keys("dvr:*:dj*"), "the cache is used again"
    assert client.get("/healthz").json()["cache"]["ok"] is True


def test_a_sync_and_the_broker_survive_redis_going_away_and_coming_back(
    bungie, dvr_env, own_redis, redis_cache, tmp_path, settings, monkeypatch
):
    from django_q.conf import Conf

    # The cluster and this process share the test's Redis: cache on 0, broker on 1.
    env = {**dvr_env, "REDIS_URL": own_redis.url + "/0", "SECRET_KEY": settings.SECRET_KEY}
    monkeypatch.setattr(Conf, "REDIS", own_redis.url + "/1")
    settings.MANIFEST_REFRESH_TOKEN = "redis-fault-token"
    first = manifest_sync()
    assert first.outcome == "live"

    with clusters(env, tmp_path) as _:
        published = bungie.app.publish(NEW_DATASET)
        bungie.app.misbehave("slow", on="tables", seconds=0.4)
        assert enqueue_refresh(requested_by="test").queued
        wait_until(lambda: ManifestVersion.objects.filter(version=published.version, status="downloading").exists(),
                   60, "the cluster's sync to start")

        own_redis.stop()  # mid-sync

        # The sync holds its lock in Postgres and finishes; pages answer meanwhile.
        wait_until(lambda: ManifestState.objects.filter(active__version=published.version).exists(), 120,
                   "the sync to go live with Redis down")
        forget_active_seq()
        assert Client().get("/api/manifest/").json()["version"] == published.version
        # With the broker down a refresh is refused clearly, not with a 500.
        refused = Client().post("/manifest/refresh/", HTTP_AUTHORIZATION="Bearer redis-fault-token")
        assert refused.status_code == 503 and refused.json()["unavailable"] is True

        own_redis.start()
        bungie.app.reset()
        def enqueued() -> bool:
            return enqueue_refresh(requested_by="after").queued

        wait_until(enqueued, 30, "the broker to take a task again")
        wait_until(lambda: any(t["result"].get("outcome") == "unchanged" for t in task_results()), 90,
                   "the cluster to run a task from the restarted broker")

    assert not sync_is_running()
    assert manifest_sync().outcome == "unchanged"
    lives = [t for t in task_results() if t["result"].get("outcome") == "live"]
    assert len(lives) == 1 and lives[0]["result"]["version"] == published.version
