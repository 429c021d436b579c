"""Bungie's real limits, enforced by the fake (`FakeBungie.quirks(limits=True)`): about one
TransferItem per second per account, 25 requests a second per API key. DVR paces itself
so that none of its own moves is ever refused for going too fast (`make faults`: a bulk
move of fifty takes about a minute at Bungie's pace)."""

from __future__ import annotations

import pytest

from tests.support import fake_items, said, vault_item

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

TITAN = "2305843009262373961"


def transfers(bungie) -> int:
    return bungie.app.stats()["counts"].get("transferitem", 0)


def test_a_bulk_move_of_fifty_at_bungies_real_limits_is_never_throttled(client, bungie_limits, player):
    weapon = vault_item(bungie_limits, item_type=3)
    carried = [i for i in fake_items(bungie_limits, place="inventory", instanced=True) if i["item_type"] == 3]
    for _ in range(50 - len(carried)):
        bungie_limits.app.add_item(weapon["item_hash"], place="inventory", character_id=TITAN)
    before = transfers(bungie_limits)

    response = client.post("/inventory/vault-matching/", {"q": "is:weapon"}, follow=True)

    assert "Sent 50 items to the vault." in said(response)
    assert transfers(bungie_limits) == before + 50  # each accepted the first time: none throttled
    assert not [i for i in fake_items(bungie_limits, place="inventory", instanced=True) if i["item_type"] == 3]


def test_a_move_between_characters_at_bungies_real_limits_takes_two_unthrottled_transfers(
    client, bungie_limits, player
):
    item = next(i for i in fake_items(bungie_limits, place="inventory", character_id=TITAN, instanced=True)
                if i["item_type"] == 3)
    hunter = next(c for c in bungie_limits.app.player.character_ids if c != TITAN)
    before = transfers(bungie_limits)

    response = client.post("/inventory/move/", {"item": item["key"], "to": hunter}, follow=True)

    assert "Moved" in said(response) and "to your" in said(response)
    assert transfers(bungie_limits) == before + 2  # through the vault, a second apart, no retry
