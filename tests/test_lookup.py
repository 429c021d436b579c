"""Definition lookups: one cache round trip warm, one query cold, never two versions at
once, and the database when the cache is down."""

from __future__ import annotations

import orjson
import pytest
from django.core.cache import caches
from django.db import connection

from manifest.lookup import (
    VALID_FROM,
    definitions,
    forget_active_seq,
    forget_local_summaries,
    local_summary_count,
    lookup,
    normalize_hash,
    summarize,
)
from manifest.models import Definition, ManifestState
from manifest.sync import manifest_sync
from tests.fakebungie.items import ItemSpec
from tests.support import RedisCommands

pytestmark = pytest.mark.django_db

ITEMS = "DestinyInventoryItemDefinition"


# What `synced_many_items` publishes: the generated items, not the plug catalogue the fake
# serves beside them (plugs follow the items' rolls, so they change when items do).
MANY_ITEMS = ItemSpec(count=1300, seed=5)


def item_hashes(count: int = 1200) -> list[int]:
    """Hashes of live generated items, ``count`` of them."""
    seq = ManifestState.get().active_seq
    live = set(Definition.objects.at(seq).filter(entity_type=ITEMS).values_list("hash", flat=True))
    return [h for h in sorted(MANY_ITEMS.hashes()) if h in live][:count]


def test_hashes_are_normalised_from_the_signed_sqlite_form():
    assert normalize_hash(-1) == 4294967295
    assert normalize_hash("3373582085") == 3373582085
    assert normalize_hash(-921385211) == 3373582085
    for bad in ("x", 1 << 32, -(1 << 31) - 1, ""):
        with pytest.raises(ValueError):
            normalize_hash(bad)


def test_a_page_sized_lookup_makes_one_query_when_cold_and_none_when_warm(synced_many_items, django_assert_num_queries):
    hashes = item_hashes()
    seq = ManifestState.get().active_seq

    with django_assert_num_queries(1):
        cold = definitions(ITEMS, hashes, seq=seq)
    with django_assert_num_queries(0):
        warm = definitions(ITEMS, hashes, seq=seq)

    assert len(cold) == len(hashes) == 1200
    assert warm == cold
    assert cold[hashes[0]]["hash"] == hashes[0]


@pytest.mark.postgres_only
def test_a_warm_page_sized_lookup_is_one_redis_round_trip(synced_many_items, monkeypatch, settings):
    assert settings.REDIS_URL, "the Postgres run uses Redis"
    hashes = item_hashes()
    seq = ManifestState.get().active_seq
    definitions(ITEMS, hashes, seq=seq)
    redis_commands = RedisCommands(monkeypatch)

    definitions(ITEMS, hashes, seq=seq)

    assert redis_commands.commands == ["MGET"]


@pytest.mark.postgres_only
def test_definitions_sit_in_redis_as_their_json_bytes_under_the_caches_own_keys(synced_many_items, settings):
    assert settings.REDIS_URL, "the Postgres run uses Redis"
    hashes = item_hashes(5)
    found = definitions(ITEMS, hashes)
    redis = caches["default"].client.get_client()

    stored = {key: redis.get(key) for key in redis.scan_iter(match=caches["default"].make_key("dj:*"))}

    assert len(stored) == 5
    assert sorted(orjson.loads(value)["hash"] for value in stored.values()) == sorted(hashes)
    assert all(orjson.loads(v) == found[orjson.loads(v)["hash"]] for v in stored.values())
    caches["default"].clear()  # the cache's own clear() reaches them
    assert not list(redis.scan_iter(match=caches["default"].make_key("dj:*")))


def test_the_summary_view_is_the_full_definitions_projection_cold_and_warm(
    synced_many_items, django_assert_num_queries
):
    hashes = item_hashes()
    seq = ManifestState.get().active_seq
    full = definitions(ITEMS, hashes, seq=seq)  # warm full definitions are not summaries

    with django_assert_num_queries(1):  # projected in the database on Postgres
        cold = definitions(ITEMS, hashes, seq=seq, view="summary")
    with django_assert_num_queries(0):
        warm = definitions(ITEMS, hashes, seq=seq, view="summary")

    rows = dict(Definition.objects.at(seq).filter(entity_type=ITEMS, hash__in=hashes).values_list("hash", "valid_from"))
    assert cold == warm == {h: summarize(full[h], rows[h]) for h in hashes}
    some = cold[hashes[0]]
    assert some["displayProperties"]["name"] == full[hashes[0]]["displayProperties"]["name"]
    assert some[VALID_FROM] == seq
    assert "description" not in some["displayProperties"] and "stats" not in some
    assert definitions(ITEMS, hashes[:1], seq=seq)[hashes[0]] == full[hashes[0]]  # the full view is untouched


@pytest.mark.postgres_only
def test_warm_summaries_come_from_the_process_memory_then_one_redis_round_trip(synced_many_items, monkeypatch):
    hashes = item_hashes()
    seq = ManifestState.get().active_seq
    cold = definitions(ITEMS, hashes, seq=seq, view="summary")
    redis_commands = RedisCommands(monkeypatch)

    assert definitions(ITEMS, hashes, seq=seq, view="summary") == cold
    assert redis_commands.commands == []

    forget_local_summaries()  # another process: Redis has them
    assert definitions(ITEMS, hashes, seq=seq, view="summary") == cold
    assert redis_commands.commands == ["MGET"]


def test_the_process_memory_keeps_only_the_most_recent_summaries(synced_many_items, django_assert_num_queries):
    forget_local_summaries(size=100)
    hashes = item_hashes(150)
    definitions(ITEMS, hashes[:100], view="summary")
    definitions(ITEMS, hashes[100:], view="summary")

    assert local_summary_count() == 100
    with django_assert_num_queries(0):  # the 50 it let go are still in the cache
        assert len(definitions(ITEMS, hashes, view="summary")) == 150
    forget_local_summaries(size=100)
    definitions(ITEMS, hashes[:100], view="summary")
    definitions(ITEMS, hashes[100:], view="summary")
    caches["default"].clear()  # only the process's memory is left
    with django_assert_num_queries(0):  # the newest 50 are kept in memory: the oldest went
        assert len(definitions(ITEMS, hashes[100:], view="summary")) == 50


def test_a_summary_leaves_out_what_is_absent_or_null():
    assert summarize({"hash": 1, "displayProperties": {"name": "X", "icon": None}, "itemType": None}, 3) == {
        "hash": 1, "displayProperties": {"name": "X"}, "inventory": {}, VALID_FROM: 3,
    }


def test_summaries_say_which_version_each_definition_appeared_in(synced_many_items):
    first = ManifestState.get().active_seq
    spec = ItemSpec(count=1300, seed=5, changed=0.01, added=0.01)
    synced_many_items.app.publish(items=spec)
    assert manifest_sync().outcome == "live"
    forget_active_seq()
    seq = ManifestState.get().active_seq
    changed, added = sorted(spec.changed_hashes()), sorted(spec.added_hashes())
    same = [h for h in item_hashes(50) if h not in spec.changed_hashes()]

    found = definitions(ITEMS, changed + added + same, view="summary")

    assert {found[h][VALID_FROM] for h in changed + added} == {seq}
    assert {found[h][VALID_FROM] for h in same} == {first}
    assert found[changed[0]]["displayProperties"]["name"] == spec.item(changed[0])["displayProperties"]["name"]


def test_an_unknown_view_is_refused(synced_many_items):
    with pytest.raises(ValueError):
        lookup({ITEMS: [1]}, view="everything")


def test_many_entity_types_share_one_lookup(synced_many_items, django_assert_num_queries):
    seq = ManifestState.get().active_seq
    wanted = {ITEMS: item_hashes(10), "DestinyClassDefinition": [671679327, 2271682572, 3655393761]}

    with django_assert_num_queries(1):
        found = lookup(wanted, seq=seq)

    assert len(found[ITEMS]) == 10
    assert {d["displayProperties"]["name"] for d in found["DestinyClassDefinition"].values()} == {
        "Hunter", "Titan", "Warlock"
    }


def test_unknown_and_malformed_hashes_are_simply_absent(synced_many_items):
    found = definitions("DestinyClassDefinition", [671679327, 12345, "nope", -1])

    assert list(found) == [671679327]


def test_nothing_is_found_before_the_first_sync(db):
    assert definitions("DestinyClassDefinition", [671679327]) == {}


def test_the_signed_form_finds_the_same_definition(synced_many_items):
    signed = 671679327 - (1 << 32) if 671679327 >= 1 << 31 else 671679327
    assert definitions("DestinyClassDefinition", [signed]) == definitions("DestinyClassDefinition", [671679327])


def test_an_activation_between_lookups_never_mixes_versions(synced_many_items, django_assert_num_queries):
    old_seq = ManifestState.get().active_seq
    hashes = item_hashes(200)
    before = definitions(ITEMS, hashes, seq=old_seq)

    changed = ItemSpec(count=1300, seed=5, changed=0.5)
    synced_many_items.app.publish(items=changed)
    assert manifest_sync().outcome == "live"
    new_seq = ManifestState.get().active_seq

    still_old = definitions(ITEMS, hashes, seq=old_seq)
    new = definitions(ITEMS, hashes, seq=new_seq)

    assert still_old == before
    changed_here = set(changed.changed_hashes()) & set(hashes)
    assert changed_here
    for item_hash in hashes:
        assert (new[item_hash] != before[item_hash]) == (item_hash in changed_here)


def test_the_active_version_is_picked_up_after_an_activation(synced_many_items):
    first = definitions(ITEMS, item_hashes(5))
    synced_many_items.app.publish(items=ItemSpec(count=1300, seed=5, changed=1.0))
    manifest_sync()
    forget_active_seq()

    assert definitions(ITEMS, list(first)) != first


def test_with_the_cache_down_lookups_answer_from_the_database(synced_many_items, settings, caplog):
    hashes = item_hashes(50)
    expected = definitions(ITEMS, hashes)
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    try:
        first = definitions(ITEMS, hashes)
        second = definitions(ITEMS, hashes)
    finally:
        caches["default"].close()

    assert first == second == expected
    warnings = [r for r in caplog.records if "cache unavailable" in r.getMessage()]
    assert len(warnings) <= 1
    assert connection.vendor in ("postgresql", "sqlite")
