"""The journal "What happened to my items": every Bungie write DVR makes for a player, with
Bungie's answer in its own words and in plain ones; kept JOURNAL_KEEP_DAYS, pruned by a
schedule; nobody else's to read."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from dvr.accounts.models import BungieAccount
from inventory.journal import journal_prune
from inventory.models import JournalEntry
from inventory.tasks import SCHEDULE_NAME
from manifest.lookup import definitions

pytestmark = pytest.mark.django_db

TITAN, HUNTER, WARLOCK = "2305843009262373961", "2305843009262373962", "2305843009262373963"


def fake_items(bungie, **where) -> list[dict]:
    return [i for i in bungie.app.player_state()["items"] if all(i.get(k) == v for k, v in where.items())]


def name_of(item: dict) -> str:
    return definitions("DestinyInventoryItemDefinition", [item["item_hash"]])[item["item_hash"]][
        "displayProperties"]["name"]


def entries(account) -> list[tuple]:
    """The account's journal, oldest first: (action, instance id, from, to, ok, code, status)."""
    return [(e.action, e.instance_id, e.source, e.destination, e.ok, e.error_code, e.error_status)
            for e in JournalEntry.objects.filter(account=account).order_by("at", "id")]


def someone_else() -> BungieAccount:
    user = get_user_model().objects.create_user("other-guardian")
    return BungieAccount.objects.create(user=user, membership_id="4611686018400000001", unique_name="Other#0001")


def legendary_weapon_in_vault(bungie) -> dict:
    return next(i for i in fake_items(bungie, place="vault", instanced=True, item_type=3, tier_type=5)
                if i.get("class_type", 3) == 3)


# --- what is written ------------------------------------------------------------------------------
def test_a_move_from_the_vault_is_one_entry_with_bungies_success(client, player, synced):
    item = legendary_weapon_in_vault(synced)

    client.post("/inventory/move/", {"item": item["key"], "to": TITAN})

    assert entries(player) == [("transfer", item["key"], "the vault", "your Titan", True, 1, "Success")]
    entry = JournalEntry.objects.get(account=player)
    assert (entry.item_hash, entry.item_name, entry.explanation) == (item["item_hash"], name_of(item),
                                                                     "Bungie moved it.")


def test_a_move_between_characters_is_two_entries_through_the_vault(client, player, synced):
    carried = next(i for i in fake_items(synced, place="inventory", character_id=TITAN, instanced=True)
                   if i.get("class_type", 3) == 3)

    client.post("/inventory/move/", {"item": carried["key"], "to": WARLOCK})

    assert entries(player) == [
        ("transfer", carried["key"], "your Titan", "the vault", True, 1, "Success"),
        ("transfer", carried["key"], "the vault", "your Warlock", True, 1, "Success"),
    ]


def test_an_equip_from_the_vault_is_a_transfer_then_an_equip(client, player, synced):
    item = legendary_weapon_in_vault(synced)

    client.post("/inventory/equip/", {"item": item["key"], "character": HUNTER})

    assert entries(player) == [
        ("transfer", item["key"], "the vault", "your Hunter", True, 1, "Success"),
        ("equip", item["key"], "your Hunter", "equipped on your Hunter", True, 1, "Success"),
    ]


def test_moving_an_equipped_item_records_the_item_equipped_in_its_place(client, player, synced):
    worn = next(i for i in fake_items(synced, place="equipped", character_id=TITAN, instanced=True, item_type=3))

    client.post("/inventory/move/", {"item": worn["key"], "to": "vault"})

    (equip, transfer) = entries(player)
    assert equip[0] == "equip" and equip[1] != worn["key"] and equip[3].startswith("equipped on your Titan, in place")
    assert transfer == ("transfer", worn["key"], "your Titan", "the vault", True, 1, "Success")


def test_a_pull_from_the_postmaster_is_recorded(client, player, synced):
    item = fake_items(synced, place="postmaster", instanced=True)[0]
    owner = {TITAN: "your Titan", HUNTER: "your Hunter", WARLOCK: "your Warlock"}[item["character_id"]]

    client.post("/inventory/pull/", {"item": item["key"]})

    assert entries(player) == [("pull", item["key"], f"the postmaster of {owner}", owner, True, 1, "Success")]


def test_a_refusal_keeps_bungies_error_code_and_the_words_the_player_was_told(client, player, synced):
    item = legendary_weapon_in_vault(synced)
    synced.app.misbehave("refuse", on="actions", count=1, code=1642)

    client.post("/inventory/move/", {"item": item["key"], "to": TITAN})

    entry = JournalEntry.objects.get(account=player)
    assert (entry.ok, entry.error_code, entry.error_status) == (False, 1642, "DestinyNoRoomInDestination")
    assert "There is no room for that item there" in entry.explanation


def test_maintenance_is_recorded_as_bungie_said_it(client, player, synced):
    item = legendary_weapon_in_vault(synced)
    synced.app.misbehave("maintenance", on="actions")

    client.post("/inventory/move/", {"item": item["key"], "to": TITAN})

    entry = JournalEntry.objects.get(account=player)
    assert (entry.ok, entry.error_code) == (False, 5)
    assert "down for maintenance" in entry.explanation


def test_no_answer_from_bungie_is_recorded_as_no_answer(client, player, synced):
    item = legendary_weapon_in_vault(synced)
    synced.app.misbehave("html", on="actions", count=1)

    client.post("/inventory/move/", {"item": item["key"], "to": TITAN})

    entry = JournalEntry.objects.get(account=player)
    assert (entry.ok, entry.error_code) == (False, None)
    assert "can't tell whether that worked" in entry.explanation


# --- the page ---------------------------------------------------------------------------------------
def test_the_page_lists_every_step_newest_first_and_filters_by_item(client, player, synced):
    first, second = fake_items(synced, place="vault", instanced=True, item_type=3)[:2]
    client.post("/inventory/move/", {"item": first["key"], "to": "vault"})  # already there: nothing asked
    client.post("/inventory/move/", {"item": first["key"], "to": TITAN})
    client.post("/inventory/move/", {"item": second["key"], "to": HUNTER})

    page = html.unescape(client.get("/inventory/journal/").content.decode()).split('<table class="journal">')[1]
    assert page.index(name_of(second)) < page.index(name_of(first))
    assert "Success (1): Bungie moved it." in page
    only_first = html.unescape(client.get("/inventory/journal/", {"item": first["key"]}).content.decode()
                               ).split("<main>")[1]
    assert name_of(first) in only_first and "your Hunter" not in only_first
    by_hash = client.get("/inventory/journal/", {"item": str(second["item_hash"])}).content.decode()
    assert "your Hunter" in html.unescape(by_hash)


def test_the_vault_the_item_page_and_the_account_page_link_to_it(client, player, synced):
    item = fake_items(synced, place="vault", instanced=True)[0]

    assert 'href="/inventory/journal/"' in client.get("/inventory/").content.decode()
    assert 'href="/inventory/journal/"' in client.get("/account/").content.decode()
    assert f'href="/inventory/journal/?item={item["key"]}"' in client.get(
        f"/inventory/item/{item['key']}/").content.decode()
    assert f'href="/inventory/journal/?item={item["key"]}"' in client.get(
        f"/inventory/item/{item['key']}/quick/", headers={"HX-Request": "true"}).content.decode()


def test_an_entry_has_a_page_of_its_own(client, player, synced):
    item = legendary_weapon_in_vault(synced)
    client.post("/inventory/move/", {"item": item["key"], "to": TITAN})
    entry = JournalEntry.objects.get(account=player)

    page = html.unescape(client.get(f"/inventory/journal/{entry.pk}/").content.decode())

    assert "ErrorCode 1 Success" in page and name_of(item) in page and str(item["item_hash"]) in page


def test_another_players_entry_is_a_404_and_never_listed(client, player, synced):
    other = someone_else()
    theirs = JournalEntry.objects.create(account=other, action="transfer", item_hash=1, instance_id="69175299",
                                         item_name="Their Secret Gun", source="the vault", destination="their Titan",
                                         ok=True, error_code=1, error_status="Success", explanation="Bungie moved it.")

    assert client.get(f"/inventory/journal/{theirs.pk}/").status_code == 404
    assert "Their Secret Gun" not in client.get("/inventory/journal/").content.decode()
    assert "Their Secret Gun" not in client.get("/inventory/journal/", {"item": "69175299"}).content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    response = client.get("/inventory/journal/")

    assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- keeping and pruning ------------------------------------------------------------------------------
def test_pruning_removes_entries_older_than_the_setting(player, settings):
    settings.JOURNAL_KEEP_DAYS = 30
    now = timezone.now()
    for days in (1, 29, 31, 400):
        JournalEntry.objects.create(account=player, at=now - timedelta(days=days), action="transfer",
                                    item_name=f"{days} days", source="a", destination="b", ok=True, error_code=1,
                                    explanation="x")

    assert journal_prune() == 2

    assert sorted(JournalEntry.objects.values_list("item_name", flat=True)) == ["1 days", "29 days"]


def test_the_prune_schedule_exists_exactly_once_after_migrating_twice():
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)

    schedule = Schedule.objects.get(name=SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "inventory.tasks.prune_journal", Schedule.DAILY, -1)


def test_an_odd_item_filter_is_not_a_500(client, player, synced):
    for odd in ("²", "9" * 30, "\u0663", "' or 1=1 --"):
        assert client.get("/inventory/journal/", {"item": odd}).status_code == 200
