"""A loadout applied at Bungie's real limits (`FakeBungie.quirks(limits=True)`): DVR's
pacing keeps every transfer under one a second per account, so none is throttled (`make
faults`: ten items through the vault take a dozen seconds at Bungie's pace)."""

from __future__ import annotations

import pytest

from inventory.loadout_apply import loadout_apply_run
from inventory.loadouts import Chosen, loadout_create
from inventory.models import ApplyStatus, LoadoutApply
from tests.support import fake_items

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

TITAN, HUNTER = "2305843009262373961", "2305843009262373962"


def test_a_ten_item_loadout_at_bungies_real_limits_is_applied_with_no_throttled_call(client, bungie_limits, player):
    fake = bungie_limits
    # Eight weapons from the vault (at most three a slot, so no bucket fills up) and two from the Hunter.
    from_vault: list[dict] = []
    for item in fake_items(fake, place="vault", instanced=True, item_type=3, tier_type=5):
        if sum(1 for i in from_vault if i["bucket_hash"] == item["bucket_hash"]) < 3 and len(from_vault) < 8:
            from_vault.append(item)
    from_hunter = fake_items(fake, place="inventory", character_id=HUNTER, instanced=True, item_type=3)[:2]
    items = from_vault + from_hunter
    assert len(items) == 10
    loadout = loadout_create(account=player, name="Ten", class_type=0, items=[
        Chosen(i["key"], i["item_hash"], str(i["key"]), equip=n < 2) for n, i in enumerate(items)])
    client.post(f"/inventory/loadouts/{loadout.pk}/apply/", {"character": TITAN})
    run = LoadoutApply.objects.get()
    counts_before = dict(fake.app.stats()["counts"])

    assert loadout_apply_run(run.pk) == ApplyStatus.DONE
    run.refresh_from_db()

    counts = fake.app.stats()["counts"]
    made_room = sum(1 for s in run.steps if s["action"] == "make room")
    needed = len(from_vault) + 2 * len(from_hunter) + made_room
    # Each transfer accepted the first time: exactly the calls needed, none repeated after a throttle.
    assert counts.get("transferitem", 0) - counts_before.get("transferitem", 0) == needed
    assert counts.get("equipitem", 0) - counts_before.get("equipitem", 0) == 2
    assert all(s["outcome"] == "done" for s in run.steps), run.steps
    assert all(next(f for f in fake_items(fake) if f["key"] == i["key"])["character_id"] == TITAN for i in items)
