"""Loadouts against the fake Bungie.net: saved from a character, kept, applied (the task's
function run directly, as the cluster runs it), searched, imported from DIM; every loadout
and run is the player's own."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from dvr.accounts.models import BungieAccount
from inventory.loadout_apply import loadout_apply_run
from inventory.loadouts import Chosen, loadout_create
from inventory.models import ApplyStatus, DimLoadout, JournalEntry, Loadout, LoadoutApply, LoadoutItem
from manifest.lookup import definitions
from tests.fakebungie.items import POWER, ItemSpec
from tests.support import fake_items, log_in, said

pytestmark = pytest.mark.django_db

TITAN, HUNTER, WARLOCK = "2305843009262373961", "2305843009262373962", "2305843009262373963"


def name_of(item: dict) -> str:
    return definitions("DestinyInventoryItemDefinition", [item["item_hash"]])[item["item_hash"]][
        "displayProperties"]["name"]


def fake_item(bungie, key: str) -> dict:
    return next(i for i in fake_items(bungie) if i["key"] == key)


def where(bungie, key: str) -> tuple[str, str | None]:
    item = fake_item(bungie, key)
    return item["place"], item["character_id"]


def writes(bungie) -> int:
    counts = bungie.app.stats()["counts"]
    return counts.get("transferitem", 0) + counts.get("equipitem", 0)


def chosen(item: dict, *, equip: bool) -> Chosen:
    return Chosen(item["key"], item["item_hash"], name_of(item), equip)


def apply_via_page(client: Client, loadout: Loadout, character: str) -> LoadoutApply:
    """Press Apply on the loadout's page, then run the queued task's function (the cluster's job)."""
    response = client.post(f"/inventory/loadouts/{loadout.pk}/apply/", {"character": character})
    assert response.status_code == 302, response.content[:500]
    run = LoadoutApply.objects.latest("pk")
    assert response["Location"] == f"/inventory/loadouts/runs/{run.pk}/"
    loadout_apply_run(run.pk)
    run.refresh_from_db()
    return run


def fill_bucket(bungie, character: str, bucket: int, *, leave_out: set[str]) -> None:
    """Fill the character's bucket to Bungie's 9 with vault items."""
    while len(fake_items(bungie, place="inventory", character_id=character, bucket_hash=bucket)) < 9:
        filler = next(i for i in fake_items(bungie, place="vault", bucket_hash=bucket, instanced=True)
                      if i["key"] not in leave_out)
        bungie.app.player.transfer(item_hash=filler["item_hash"], item_id=filler["key"], character_id=character,
                                   to_vault=False)


# --- saving ---------------------------------------------------------------------------------------
def test_a_characters_equipment_and_chosen_items_are_saved_as_a_loadout_from_the_vault_page(client, player, synced):
    page = client.get("/inventory/").content.decode()
    assert f'href="/inventory/loadouts/new/{TITAN}/"' in page and "Save as a loadout" in page
    equipped = [i for i in fake_items(synced, place="equipped", character_id=TITAN) if i["instanced"]]
    carried = fake_items(synced, place="inventory", character_id=TITAN, instanced=True)[:2]

    form = client.get(f"/inventory/loadouts/new/{TITAN}/")
    response = client.post(f"/inventory/loadouts/new/{TITAN}/",
                           {"name": "  Raid  night ", "item": [c["key"] for c in carried]}, follow=True)

    assert form.status_code == 200 and all(html.escape(name_of(c)) in form.content.decode() for c in carried)
    assert "Saved the loadout “Raid night”." in said(response)
    loadout = Loadout.objects.get(account=player)
    assert (loadout.name, loadout.class_type) == ("Raid night", 0)
    items = {i.instance_id: i for i in loadout.items.all()}
    assert {k for k, i in items.items() if i.equip} == {e["key"] for e in equipped}
    assert {k for k, i in items.items() if not i.equip} == {c["key"] for c in carried}
    assert items[carried[0]["key"]].name == name_of(carried[0])


def test_saving_refuses_an_item_not_on_that_character_and_an_empty_name(client, player, synced):
    elsewhere = fake_items(synced, place="inventory", character_id=HUNTER, instanced=True)[0]

    stranger = client.post(f"/inventory/loadouts/new/{TITAN}/", {"name": "x", "item": [elsewhere["key"]]})
    nameless = client.post(f"/inventory/loadouts/new/{TITAN}/", {"name": "  "})

    assert stranger.status_code == 400 and "not on your Titan" in said(stranger)
    assert nameless.status_code == 400 and "Give the loadout a name." in said(nameless)
    assert not Loadout.objects.exists()


def test_rename_remove_items_and_delete(client, player, synced):
    items = fake_items(synced, place="vault", instanced=True, item_type=3)[:3]
    loadout = loadout_create(account=player, name="PvP", class_type=3, items=[chosen(i, equip=False) for i in items])
    loadout_create(account=player, name="PvE", class_type=3, items=[chosen(items[0], equip=False)])
    first = loadout.items.get(instance_id=items[0]["key"])

    taken = client.post(f"/inventory/loadouts/{loadout.pk}/rename/", {"name": "PvE"})
    renamed = client.post(f"/inventory/loadouts/{loadout.pk}/rename/", {"name": "Trials"}, follow=True)
    removed = client.post(f"/inventory/loadouts/{loadout.pk}/remove/", {"item": [str(first.pk), "x"]}, follow=True)

    assert taken.status_code == 400 and "You already have a loadout named “PvE”." in said(taken)
    assert "Renamed it “Trials”." in said(renamed)
    assert "Removed 1 item from the loadout." in said(removed)
    assert set(loadout.items.values_list("instance_id", flat=True)) == {items[1]["key"], items[2]["key"]}
    deleted = client.post(f"/inventory/loadouts/{loadout.pk}/delete/", follow=True)
    assert "Deleted the loadout." in said(deleted) and not Loadout.objects.filter(pk=loadout.pk).exists()


def test_an_item_that_left_the_account_stays_in_the_loadout_marked_missing(client, player, synced):
    item = fake_items(synced, place="vault", instanced=True, item_type=3)[0]
    loadout = loadout_create(account=player, name="Gone", class_type=3, items=[chosen(item, equip=False)])
    client.get("/inventory/")  # DVR saves the profile
    del synced.app.player.items[item["key"]]  # dismantled in game
    client.get("/inventory/", {"refresh": ""})  # "refresh from Bungie"

    page = said(client.get(f"/inventory/loadouts/{loadout.pk}/"))

    assert name_of(item) in page and "missing" in page and "no longer in your account" in page


# --- applying --------------------------------------------------------------------------------------
def test_applying_moves_from_the_vault_and_another_character_makes_room_and_swaps_the_second_exotic(
        client, synced_many_items):
    synced = synced_many_items  # its manifest has exotic weapons for every slot
    log_in(client, synced)
    player = BungieAccount.objects.get()
    # The Titan wears an exotic power weapon; the loadout brings an exotic kinetic one.
    exotic_power = next(s for s in ItemSpec(count=1300, seed=5).summaries()
                        if s.tier_type == 6 and s.item_type == 3 and s.bucket_hash == POWER)
    worn_key = synced.app.add_item(exotic_power.hash, place="vault", bucket_hash=POWER)
    synced.app.player.items[worn_key].tier_type = 6
    worn_exotic = fake_item(synced, worn_key)
    synced.app.player.transfer(item_hash=exotic_power.hash, item_id=worn_key, character_id=TITAN, to_vault=False)
    synced.app.player.equip(item_id=worn_key, character_id=TITAN)
    exotic = next(i for i in fake_items(synced, place="vault", instanced=True, item_type=3, tier_type=6)
                  if i["bucket_hash"] != POWER)
    slot = exotic["bucket_hash"]
    from_hunter = fake_items(synced, place="inventory", character_id=HUNTER, instanced=True, item_type=3,
                             bucket_hash=slot)[0]
    legendary = next(i for i in fake_items(synced, place="vault", instanced=True, item_type=3, tier_type=5)
                     if i["bucket_hash"] == slot)
    loadout = loadout_create(account=player, name="Exotic kinetic", class_type=0, items=[
        chosen(exotic, equip=True), chosen(from_hunter, equip=False), chosen(legendary, equip=False)])
    # The Titan's bucket for that slot is full: a non-loadout item must go to the vault first.
    fill_bucket(synced, TITAN, slot, leave_out={exotic["key"], legendary["key"]})
    before = {i["key"] for i in fake_items(synced, place="inventory", character_id=TITAN, bucket_hash=slot)}

    run = apply_via_page(client, loadout, TITAN)

    assert run.status == ApplyStatus.DONE, (run.summary, run.steps)
    assert where(synced, exotic["key"]) == ("equipped", TITAN)
    assert where(synced, from_hunter["key"]) == ("inventory", TITAN)
    assert where(synced, legendary["key"])[1] == TITAN
    assert fake_item(synced, worn_exotic["key"])["place"] == "inventory"  # swapped for a non-exotic first
    assert len(fake_items(synced, place="inventory", character_id=TITAN, bucket_hash=slot)) <= 9
    made_room = [s for s in run.steps if s["action"] == "make room"]
    assert made_room and any(s["item"] == html.unescape(name_of(worn_exotic)) for s in made_room)
    assert any(s["item"] != name_of(worn_exotic) and "to the vault" in s["message"] for s in made_room)
    sent_away = [k for k in before if fake_item(synced, k)["place"] == "vault"]
    assert sent_away and not {exotic["key"], from_hunter["key"], legendary["key"]} & set(sent_away)
    assert "every item is in place" in run.summary
    progress = said(client.get(f"/inventory/loadouts/runs/{run.pk}/"))
    assert "Done" in progress and name_of(exotic) in progress and 'hx-trigger="every 1s"' not in progress


def test_a_full_bucket_with_a_full_vault_says_the_item_has_no_room(client, player, synced):
    item = fake_items(synced, place="vault", instanced=True, item_type=3, tier_type=5)[0]
    loadout = loadout_create(account=player, name="No room", class_type=3, items=[chosen(item, equip=False)])
    fill_bucket(synced, WARLOCK, item["bucket_hash"], leave_out={item["key"]})
    synced.app.player.vault_capacity = len(fake_items(synced, place="vault", instanced=True))  # the vault is full

    run = apply_via_page(client, loadout, WARLOCK)

    assert run.status == ApplyStatus.PARTIAL
    assert f"{name_of(item)}: There is no room for it, and " in run.summary
    assert "could not go to the vault to make some." in run.summary
    assert fake_item(synced, item["key"])["place"] == "vault"


def test_applying_twice_is_harmless(client, player, synced):
    items = fake_items(synced, place="vault", instanced=True, item_type=3, tier_type=5)[:2]
    loadout = loadout_create(account=player, name="Twice", class_type=3,
                             items=[chosen(items[0], equip=True), chosen(items[1], equip=False)])
    first = apply_via_page(client, loadout, WARLOCK)
    calls = writes(synced)

    second = apply_via_page(client, loadout, WARLOCK)

    assert first.status == second.status == ApplyStatus.DONE
    assert writes(synced) == calls  # nothing asked of Bungie the second time
    # The journal keeps every Bungie write of the run: two transfers, one equip.
    journal = JournalEntry.objects.filter(account=player)
    assert [(e.action, e.ok) for e in journal.order_by("at", "id")] == [
        ("transfer", True), ("transfer", True), ("equip", True)]
    assert all("already" in s["message"] for s in second.steps), second.steps
    assert where(synced, items[0]["key"]) == ("equipped", WARLOCK)


def test_a_loadout_of_another_class_is_refused_before_anything_is_queued(client, player, synced):
    item = fake_items(synced, place="vault", instanced=True, item_type=3)[0]
    loadout = loadout_create(account=player, name="Hunter's", class_type=1, items=[chosen(item, equip=True)])

    response = client.post(f"/inventory/loadouts/{loadout.pk}/apply/", {"character": TITAN})

    assert response.status_code == 400 and "is a Hunter loadout: your Titan can't use it." in said(response)
    assert not LoadoutApply.objects.exists()


def test_bungie_throttling_is_waited_out_during_an_apply(client, player, synced):
    items = fake_items(synced, place="vault", instanced=True, item_type=3, tier_type=5)[:2]
    loadout = loadout_create(account=player, name="Slow", class_type=3, items=[chosen(i, equip=False) for i in items])
    synced.app.misbehave("throttle", on="actions", count=2, seconds=0.2)

    run = apply_via_page(client, loadout, HUNTER)

    assert run.status == ApplyStatus.DONE, run.summary
    assert all(where(synced, i["key"]) == ("inventory", HUNTER) for i in items)


def test_throttling_that_outlasts_the_retries_stops_the_run_early_saying_what_was_not_tried(
        client, player, synced):
    items = fake_items(synced, place="vault", instanced=True, item_type=3, tier_type=5)[:3]
    loadout = loadout_create(account=player, name="Stuck", class_type=3, items=[chosen(i, equip=False) for i in items])
    synced.app.misbehave("throttle", on="actions", count=50, seconds=0.2)

    run = apply_via_page(client, loadout, HUNTER)

    assert run.status == ApplyStatus.STOPPED
    assert "Stopped early: Bungie is limiting how fast items can move" in run.summary
    assert name_of(items[1]) in run.summary and name_of(items[2]) in run.summary  # not tried
    assert len(run.steps) == 1 and all(fake_item(synced, i["key"])["place"] == "vault" for i in items)


def test_a_refused_item_is_named_with_the_reason_and_the_rest_is_applied(client, player, synced):
    items = fake_items(synced, place="vault", instanced=True, item_type=3, tier_type=5)[:3]
    loadout = loadout_create(account=player, name="Partly", class_type=3, items=[chosen(i, equip=False) for i in items])
    synced.app.misbehave("refuse", on="actions", count=1, code=1642)

    run = apply_via_page(client, loadout, HUNTER)

    assert run.status == ApplyStatus.PARTIAL
    assert f"{name_of(items[0])}: There is no room for that item there." in run.summary
    assert [where(synced, i["key"]) for i in items] == [("vault", None), ("inventory", HUNTER), ("inventory", HUNTER)]
    page = said(client.get(f"/inventory/loadouts/runs/{run.pk}/"))
    assert "Done, with problems" in page and "There is no room for that item there." in page


def test_the_progress_page_polls_until_the_run_is_finished(client, player, synced):
    item = fake_items(synced, place="vault", instanced=True, item_type=3)[0]
    loadout = loadout_create(account=player, name="Poll", class_type=3, items=[chosen(item, equip=False)])
    client.post(f"/inventory/loadouts/{loadout.pk}/apply/", {"character": HUNTER})
    run = LoadoutApply.objects.get()

    queued = client.get(f"/inventory/loadouts/runs/{run.pk}/").content.decode()
    snippet = client.get(f"/inventory/loadouts/runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    loadout_apply_run(run.pk)
    done = client.get(f"/inventory/loadouts/runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()

    assert 'hx-trigger="every 1s"' in queued and "reload" in queued and "Queued" in queued
    assert snippet.startswith('<div id="loadout-run"') and "<html" not in snippet
    assert 'hx-trigger="every 1s"' not in done and "Done" in done


def test_a_run_the_cluster_lost_is_said_to_have_stopped_and_its_page_stops_polling(client, player, synced):
    from datetime import timedelta

    item = fake_items(synced, place="vault", instanced=True, item_type=3)[0]
    loadout = loadout_create(account=player, name="Lost", class_type=3, items=[chosen(item, equip=False)])
    client.post(f"/inventory/loadouts/{loadout.pk}/apply/", {"character": HUNTER})
    run = LoadoutApply.objects.get()
    LoadoutApply.objects.filter(pk=run.pk).update(status=ApplyStatus.RUNNING,
                                                  created_at=run.created_at - timedelta(hours=2))

    page = said(client.get(f"/inventory/loadouts/runs/{run.pk}/"))

    assert "This run did not finish" in page and 'hx-trigger="every 1s"' not in page
    assert LoadoutApply.objects.get(pk=run.pk).status == ApplyStatus.FAILED


def test_apply_needs_csrf(player, synced, bungie):
    client = Client(enforce_csrf_checks=True)
    log_in(client, bungie)
    item = fake_items(synced, place="vault", instanced=True, item_type=3)[0]
    loadout = loadout_create(account=BungieAccount.objects.get(), name="C", class_type=3,
                             items=[chosen(item, equip=False)])

    assert client.post(f"/inventory/loadouts/{loadout.pk}/apply/", {"character": HUNTER}).status_code == 403
    assert client.post(f"/inventory/loadouts/{loadout.pk}/delete/").status_code == 403
    assert client.get(f"/inventory/loadouts/{loadout.pk}/delete/").status_code == 405


# --- search ----------------------------------------------------------------------------------------
def test_is_inloadout_and_inloadout_name_find_the_loadouts_items(client, player, synced):
    items = fake_items(synced, place="vault", instanced=True, item_type=3)[:3]
    loadout_create(account=player, name="Crota raid", class_type=3, items=[chosen(items[0], equip=False)])
    loadout_create(account=player, name="PvP", class_type=3, items=[chosen(items[1], equip=False)])

    def shown(query: str) -> set[str]:
        page = client.get("/inventory/", {"q": query}).content.decode()
        return {i["key"] for i in items if f'data-item="{i["key"]}"' in page or f"/inventory/item/{i['key']}/" in page}

    assert shown("is:inloadout") == {items[0]["key"], items[1]["key"]}
    assert shown('inloadout:"crota raid"') == {items[0]["key"]}
    assert shown("inloadout:pvp") == {items[1]["key"]}
    assert items[2]["key"] not in shown("is:inloadout") and items[2]["key"] in shown("not:inloadout")
    help_page = said(client.get("/inventory/search/help/"))
    assert "is:inloadout" in help_page and "inloadout:" in help_page


# --- DIM -------------------------------------------------------------------------------------------
def test_dim_loadouts_kept_aside_are_imported_in_one_click(client, player, synced):
    items = fake_items(synced, place="vault", instanced=True, item_type=3)[:2]
    DimLoadout.objects.create(account=player, dim_id="a1", name="From DIM", data={
        "id": "a1", "name": "From DIM", "classType": 2,
        "equipped": [{"id": items[0]["key"], "hash": items[0]["item_hash"]}],
        "unequipped": [{"id": items[1]["key"], "hash": items[1]["item_hash"]}, {"id": "0", "hash": 1}]})
    DimLoadout.objects.create(account=player, dim_id="b2", name="Empty", data={"equipped": [], "unequipped": []})

    page = said(client.get("/inventory/loadouts/"))
    response = client.post("/inventory/loadouts/import-dim/", follow=True)

    assert "2 loadouts from your DIM backup are waiting." in page
    assert "1 imported." in said(response) and "1 skipped" in said(response)
    loadout = Loadout.objects.get(account=player)
    assert (loadout.name, loadout.class_type, loadout.dim_id) == ("From DIM", 2, "a1")
    assert [(i.instance_id, i.equip, i.name) for i in loadout.items.all()] == [
        (items[0]["key"], True, name_of(items[0])), (items[1]["key"], False, name_of(items[1]))]
    assert not DimLoadout.objects.exists()


# --- every loadout and run is the player's own --------------------------------------------------------
def test_another_players_loadout_and_run_are_404_on_every_view(client, player, synced):
    other_user = get_user_model().objects.create_user("other")
    other = BungieAccount.objects.create(user=other_user, membership_id="999", unique_name="Other#0001")
    item = fake_items(synced, place="vault", instanced=True, item_type=3)[0]
    theirs = loadout_create(account=other, name="Theirs", class_type=3, items=[chosen(item, equip=False)])
    run = LoadoutApply.objects.create(account=other, loadout=theirs, loadout_name="Theirs", character_id=TITAN,
                                      character_name="their Titan")
    their_item = LoadoutItem.objects.get(loadout=theirs)

    for url, data in ((f"/inventory/loadouts/{theirs.pk}/rename/", {"name": "Mine"}),
                      (f"/inventory/loadouts/{theirs.pk}/remove/", {"item": [str(their_item.pk)]}),
                      (f"/inventory/loadouts/{theirs.pk}/delete/", {}),
                      (f"/inventory/loadouts/{theirs.pk}/apply/", {"character": TITAN})):
        assert client.post(url, data).status_code == 404, url
    assert client.get(f"/inventory/loadouts/{theirs.pk}/").status_code == 404
    assert client.get(f"/inventory/loadouts/runs/{run.pk}/").status_code == 404
    assert client.get("/inventory/loadouts/new/1234567890/").status_code == 404
    assert "Theirs" not in said(client.get("/inventory/loadouts/"))
    assert Loadout.objects.get(pk=theirs.pk).name == "Theirs" and LoadoutItem.objects.filter(loadout=theirs).exists()
    # Their loadout's items are not "in a loadout" for this player.
    assert f"/inventory/item/{item['key']}/" not in client.get("/inventory/", {"q": "is:inloadout"}).content.decode()
