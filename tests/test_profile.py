"""A player's profile parsed once (`Profile`), its moved copies, and the saved `Snapshot`,
on the fake Bungie.net's player."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from django.core.cache import cache

from dvr.accounts.models import BungieAccount
from inventory.fetch import PROFILE_COMPONENTS
from inventory.profile import POSTMASTER_BUCKET, VAULT_BUCKET, OwnedItem, Profile, ProfileOutOfStep
from inventory.snapshots import Snapshot, minted_key, snapshot_key, snapshot_load, snapshot_save
from tests.fakebungie.app import FakeBungie

TITAN, HUNTER, WARLOCK = "2305843009262373961", "2305843009262373962", "2305843009262373963"
LATER = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
PLACES = {"vault": ("vault", False), "inventory": ("character", False), "equipped": ("character", True),
          "postmaster": ("postmaster", False)}


@pytest.fixture(scope="module")
def fake_app() -> FakeBungie:
    """The fake's app alone, no server: its player's GetProfile answer, built in process."""
    return FakeBungie()


@pytest.fixture
def profile(fake_app: FakeBungie) -> Profile:
    return Profile(fake_app.profile_response({int(c) for c in PROFILE_COMPONENTS.split(",")}))


def where(profile: Profile, instance_id: str) -> tuple[str, str | None, bool, int] | None:
    item = profile.find(instance_id)
    return None if item is None else (item.location, item.owner, item.equipped, item.bucket_hash)


def carried(profile: Profile, character: str, *, equipped: bool) -> list[OwnedItem]:
    return [i for i in profile.items if i.owner == character and i.equipped == equipped and i.location == "character"]


# --- parsing ---------------------------------------------------------------------------------------
def test_a_profile_lists_every_instanced_item_the_player_owns_where_it_is(fake_app, profile):
    expected = {
        i["key"]: (*PLACES[i["place"]], i["character_id"])
        for i in fake_app.player_state()["items"] if i["instanced"]
    }

    found = {i.key: (i.location, i.equipped, i.owner) for i in profile.items}

    assert found == expected


def test_an_item_carries_its_hash_quantity_and_bucket(fake_app, profile):
    state = next(i for i in fake_app.player_state()["items"] if i["place"] == "inventory" and i["instanced"])

    item = profile.find(state["key"])

    assert item is not None
    assert (item.item_hash, item.quantity, item.bucket_hash) == (state["item_hash"], 1, state["bucket_hash"])
    assert item.key == item.instance_id == state["key"]


def test_a_profile_reads_characters_instances_sockets_and_its_minted_time(fake_app, profile):
    assert list(profile.characters) == [TITAN, HUNTER, WARLOCK]
    assert profile.characters[TITAN]["classHash"] == 3655393761
    some = next(i for i in profile.items if i.location == "vault")
    assert profile.instances[some.instance_id or ""]["primaryStat"]["value"] > 0
    assert any(profile.sockets[i.instance_id or ""]["sockets"] for i in profile.items)
    assert profile.minted is not None and profile.minted.tzinfo is not None


def test_an_id_the_player_does_not_own_is_not_found(profile):
    assert profile.find("6917529999999999999") is None


def test_a_profile_with_private_or_missing_components_is_empty_not_an_error():
    profile = Profile({"profileInventory": {"privacy": 2}, "characters": {"data": None},
                       "responseMintedTimestamp": "2026-13-40T00:00:00Z"})

    assert (profile.items, profile.characters, profile.instances, profile.minted) == ((), {}, {}, None)


# --- moved copies ----------------------------------------------------------------------------------
def test_moving_to_the_vault_takes_the_item_off_the_character(profile):
    item = carried(profile, TITAN, equipped=False)[0]

    moved = profile.moved(item, to="vault", at=LATER)

    assert where(moved, item.key) == ("vault", None, False, VAULT_BUCKET)
    assert moved.find(item.key).raw["location"] == 2
    assert len(carried(moved, TITAN, equipped=False)) == len(carried(profile, TITAN, equipped=False)) - 1
    assert len(moved.items) == len(profile.items)
    assert moved.minted == LATER


def test_a_moved_copy_leaves_the_original_as_it_was(profile):
    item = carried(profile, TITAN, equipped=False)[0]
    before = profile.to_json()

    profile.moved(item, to="vault", at=LATER)

    assert profile.to_json() == before
    assert where(profile, item.key) == ("character", TITAN, False, item.bucket_hash)


def test_moving_to_a_character_puts_the_item_in_its_own_bucket(profile):
    item = next(i for i in profile.items if i.location == "vault")

    moved = profile.moved(item, to="character", character=HUNTER, bucket=1498876634, at=LATER)

    assert where(moved, item.key) == ("character", HUNTER, False, 1498876634)
    assert moved.find(item.key).raw["transferStatus"] == 0


def test_equipping_sends_the_item_equipped_in_that_bucket_to_the_characters_inventory(profile):
    before, item = next(
        (e, i) for e in carried(profile, WARLOCK, equipped=True) for i in carried(profile, WARLOCK, equipped=False)
        if i.bucket_hash == e.bucket_hash
    )

    moved = profile.moved(item, to="equipped", character=WARLOCK, bucket=item.bucket_hash, at=LATER)

    assert where(moved, item.key) == ("character", WARLOCK, True, item.bucket_hash)
    assert moved.find(item.key).raw["transferStatus"] == 1
    assert where(moved, before.key) == ("character", WARLOCK, False, before.bucket_hash)
    assert len(carried(moved, WARLOCK, equipped=True)) == len(carried(profile, WARLOCK, equipped=True))


def test_pulling_from_the_postmaster_puts_the_item_on_its_character(profile):
    item = next(i for i in profile.items if i.location == "postmaster")
    assert item.bucket_hash == POSTMASTER_BUCKET

    moved = profile.moved(item, to="character", character=item.owner, bucket=953998645, at=LATER)

    assert where(moved, item.key) == ("character", item.owner, False, 953998645)


def test_moving_an_item_that_is_no_longer_where_it_was_is_out_of_step(profile):
    item = carried(profile, TITAN, equipped=False)[0]
    moved = profile.moved(item, to="vault", at=LATER)

    with pytest.raises(ProfileOutOfStep):
        moved.moved(item, to="vault", at=LATER)  # ``item`` still says it is on the Titan


# --- as bytes, and saved -----------------------------------------------------------------------------
def test_a_profile_round_trips_through_json_bytes(profile):
    moved = profile.moved(carried(profile, HUNTER, equipped=False)[0], to="vault", at=LATER)

    again = Profile.from_json(moved.to_json())

    assert again.items == moved.items
    assert (again.characters, again.instances, again.sockets, again.minted) == (
        moved.characters, moved.instances, moved.sockets, LATER)
    assert orjson.loads(again.to_json())["responseMintedTimestamp"] == "2030-01-02T03:04:05Z"


def test_a_saved_snapshot_is_read_back_with_its_minted_time_also_on_its_own(profile):
    account = BungieAccount(pk=424242)
    snapshot_save(account=account, profile=profile)

    saved = snapshot_load(account=account)

    assert saved is not None and saved.minted == profile.minted
    assert saved.profile.items == profile.items
    assert cache.get(minted_key(account)) == profile.minted.isoformat()


def test_a_snapshot_of_another_shape_is_no_snapshot(profile):
    account = BungieAccount(pk=424242)
    cache.set(snapshot_key(account), {"minted": "2026-01-01T00:00:00+00:00", "data": {"characters": {}}})

    assert snapshot_load(account=account) is None
    assert Snapshot.from_cached(None) is None
    assert Snapshot.from_cached({"minted": "not a time", "json": b"{}"}) is None


def test_a_profile_read_from_bungies_envelope_is_saved_as_it_came_and_read_back(fake_app, profile):
    body = orjson.dumps({"Response": profile.response, "ErrorCode": 1, "ErrorStatus": "Success",
                         "ThrottleSeconds": 0, "Message": "Ok", "MessageData": {}})

    read = Profile.from_json(body)

    assert read.to_json() is body  # not encoded again
    again = Profile.from_json(read.to_json())
    assert [o.key for o in again.items] == [o.key for o in profile.items] and again.minted == profile.minted
