"""An item's roll (perk columns, stat bars, markers), its quick view and compare, against the
fake Bungie.net, whose rolls (`tests.fakebungie.plugs.roll`) are the truth."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.test import Client
from django.utils.html import escape

from inventory.profile import Profile
from inventory.snapshots import snapshot_load, snapshot_save
from tests.fakebungie.plugs import ITEM_STATE_CRAFTED, ITEM_STATE_MASTERWORK, definition, roll

pytestmark = pytest.mark.django_db

STRANGER_ITEM = "6917529999999999999"
PLUG = re.compile(r'<li class="plug (inserted|alternative)[^"]*" tabindex="0" title="[^"]*"[^>]*>.*?'
                  r'<span class="plug-name">([^<]*)</span>', re.S)


def page_of(client: Client, url: str, **headers: str) -> str:
    response = client.get(url, **headers)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def owned(bungie, **where: Any) -> list[dict[str, Any]]:
    return [i for i in bungie.app.player_state()["items"]
            if i["instanced"] and all(i.get(k) == v for k, v in where.items())]


def truth(bungie, item: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(the item's definition, its roll) as the fake serves them."""
    spec = bungie.app.current.items
    return definition(spec, item["item_hash"]), roll(spec, item["item_hash"], item["key"])


def saved_response(player) -> dict[str, Any]:
    """The saved profile's GetProfile ``Response``: a copy to change."""
    return orjson.loads(orjson.dumps(snapshot_load(account=player).profile.response))


def plug_name(bungie, plug_hash: int) -> str:
    return definition(bungie.app.current.items, plug_hash)["displayProperties"]["name"]


def plugs_shown(page: str) -> list[tuple[str, str]]:
    """(inserted | alternative, name) of every plug on the page."""
    return PLUG.findall(page)


def weapon_with_alternatives(bungie) -> tuple[dict[str, Any], Any]:
    for item in owned(bungie, item_type=3, tier_type=5):
        _, fake_roll = truth(bungie, item)
        if fake_roll.reusable_plugs and any(
            len(p) > 1 for i, p in fake_roll.reusable_plugs["plugs"].items() if i in ("1", "2", "3", "4")
        ) and not fake_roll.state & ITEM_STATE_CRAFTED:
            return item, fake_roll
    raise AssertionError("the fake's player has no random-rolled weapon with alternatives")


# --- the item page --------------------------------------------------------------------------------
def test_a_weapon_page_shows_its_perk_columns_the_inserted_perks_and_the_alternatives(client, player, synced):
    item, fake_roll = weapon_with_alternatives(synced)
    item_def, _ = truth(synced, item)

    page = page_of(client, f"/inventory/item/{item['key']}/")

    for heading in ("Intrinsic Traits", "Weapon Perks", "Weapon Mods", "Weapon Cosmetics"):
        assert f"<h3>{heading}</h3>" in page
    shown = plugs_shown(page)
    sockets = fake_roll.sockets["sockets"]
    for category in item_def["sockets"]["socketCategories"]:
        for index in category["socketIndexes"]:
            if sockets[index]["isVisible"]:
                assert ("inserted", escape(plug_name(synced, sockets[index]["plugHash"]))) in shown
    in_columns = {str(i) for c in item_def["sockets"]["socketCategories"] for i in c["socketIndexes"]}
    for index, offered in fake_roll.reusable_plugs["plugs"].items():
        if index not in in_columns:  # the kill tracker belongs to no column, as in game
            continue
        inserted = sockets[int(index)]["plugHash"]
        for plug in offered:
            if plug["plugItemHash"] != inserted:
                assert ("alternative", escape(plug_name(synced, plug["plugItemHash"]))) in shown
    # The crafting socket of a weapon that is not shaped is hidden (isVisible false).
    assert "Empty Memento Socket" not in page
    assert "Weapon Level" not in page


def test_stat_bars_show_the_values_of_304_and_the_bonus_of_the_inserted_plugs(client, player, synced):
    item = next(i for i in owned(synced, item_type=3, tier_type=5) if truth(synced, i)[1].state & ITEM_STATE_MASTERWORK)
    item_def, fake_roll = truth(synced, item)
    spec = synced.app.current.items
    intrinsic = {i for c in item_def["sockets"]["socketCategories"] if c["socketCategoryHash"] == 3956125808
                 for i in c["socketIndexes"]}
    bonus: dict[int, int] = defaultdict(int)
    for index, socket in enumerate(fake_roll.sockets["sockets"]):
        plug = definition(spec, socket["plugHash"]) or {}
        if index in intrinsic or plug.get("plug", {}).get("plugCategoryIdentifier") == "intrinsics":
            continue
        for stat in plug.get("investmentStats", []):
            bonus[stat["statTypeHash"]] += stat["value"]

    page = page_of(client, f"/inventory/item/{item['key']}/")

    assert "<h2>Stats</h2>" in page and "Power</span>" not in page
    impact = fake_roll.stats["stats"]["4043523819"]["value"]
    assert re.search(rf'<span class="stat-name">Impact</span>\s*<svg class="stat-bar"[^>]*aria-label="{impact}\b', page)
    masterworked = next(h for h, v in bonus.items() if v > 0 and str(h) in fake_roll.stats["stats"]
                        and h not in (4284893193, 3871231066))
    value = fake_roll.stats["stats"][str(masterworked)]["value"]
    base = max(0, value - bonus[masterworked])
    assert f'aria-label="{value} ({base} base, +{value - base} from perks and mods)"' in page
    assert 'class="bar-bonus"' in page
    # Rounds per minute is a number, not a bar.
    assert re.search(r'<span class="stat-name">Rounds Per Minute</span>\s*<span class="stat-bar-none">', page)
    assert '<li class="marker masterwork">Masterwork</li>' in page


def test_armor_shows_its_six_stats_a_total_and_its_energy_and_not_its_hidden_stat_rolls(client, player, synced):
    item = owned(synced, item_type=2)[0]
    _, fake_roll = truth(synced, item)

    page = page_of(client, f"/inventory/item/{item['key']}/")

    values = [fake_roll.stats["stats"][str(h)]["value"] for h in
              (2996146975, 392767087, 1943323491, 1735777505, 144602215, 4244567218)]
    assert re.search(rf'<span class="stat-name">Total</span><span class="stat-bar-none"></span>'
                     rf'<span class="stat-value">{sum(values)}</span>', page)
    energy = fake_roll.energy
    assert f"Energy {energy['energyUsed']}/{energy['energyCapacity']}" in page
    hidden = {plug_name(synced, s["plugHash"]) for s in fake_roll.sockets["sockets"] if not s["isVisible"]}
    shown = {name for _, name in plugs_shown(page)}
    assert hidden and not hidden & shown
    assert "Compare with others like this" in page
    assert "q=is%3Aarmor%20slot%3A" in page


def test_a_plug_missing_from_the_manifest_is_an_unknown_perk_and_odd_data_is_no_500(client, player, synced):
    item, _ = weapon_with_alternatives(synced)
    page_of(client, "/inventory/")  # saves the profile the item page reads
    response = saved_response(player)
    components = response["itemComponents"]
    components["sockets"]["data"][item["key"]]["sockets"][1]["plugHash"] = 123456789
    components["sockets"]["data"][item["key"]]["sockets"].append("not a socket")
    components["stats"]["data"][item["key"]]["stats"]["4043523819"]["value"] = "lots"
    components["reusablePlugs"]["data"][item["key"]] = {"plugs": {"99": [{"plugItemHash": 5}], "2": "odd"}}
    snapshot_save(account=player, profile=Profile(response))

    page = page_of(client, f"/inventory/item/{item['key']}/")

    assert ("inserted", "Unknown perk") in plugs_shown(page)
    assert '<span class="stat-name">Impact</span>' not in page  # not a number: not shown
    assert "<h2>Stats</h2>" in page


# --- the quick view -------------------------------------------------------------------------------
def test_the_quick_view_is_a_partial_for_htmx_and_the_full_page_otherwise(client, player, synced):
    item, _ = weapon_with_alternatives(synced)
    url = f"/inventory/item/{item['key']}/quick/"

    partial = page_of(client, url, HTTP_HX_REQUEST="true")
    full = page_of(client, url)

    assert partial.lstrip().startswith("<article") and "<html" not in partial
    assert 'id="quick-view-title"' in partial and 'class="actions"' in partial
    assert f'href="/inventory/item/{item["key"]}/"' in partial
    assert ('inserted', escape(plug_name(synced, truth(synced, item)[1].sockets["sockets"][0]["plugHash"]))) in \
        plugs_shown(partial)
    assert "<html" in full and "<h2>Perks</h2>" in full


def test_someone_elses_item_is_a_404_in_the_quick_view_and_compare(client, player, synced):
    mine = owned(synced, item_type=3)[0]["key"]

    assert client.get(f"/inventory/item/{STRANGER_ITEM}/quick/", HTTP_HX_REQUEST="true").status_code == 404
    assert client.get(f"/inventory/compare/?items={mine},{STRANGER_ITEM}").status_code == 404


# --- compare --------------------------------------------------------------------------------------
def two_of_a_type(bungie) -> list[dict[str, Any]]:
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in owned(bungie, item_type=3):
        by_type[truth(bungie, item)[0]["itemTypeDisplayName"]].append(item)
    return next(items[:2] for items in by_type.values() if 2 <= len(items) <= 10)


def test_compare_shows_two_weapons_of_a_type_with_the_best_value_marked(client, player, synced):
    first, second = two_of_a_type(synced)
    rolls = [truth(synced, i)[1].stats["stats"] for i in (first, second)]

    page = page_of(client, f"/inventory/compare/?items={first['key']},{second['key']}")

    for item in (first, second):
        assert f'href="/inventory/item/{item["key"]}/"' in page
        assert escape(truth(synced, item)[0]["displayProperties"]["name"]) in page
    stats = {"Impact": "4043523819", "Range": "1240592695", "Stability": "155624089", "Handling": "943549884"}
    differing = next(name for name, h in stats.items() if rolls[0][h]["value"] != rolls[1][h]["value"])
    row = re.search(rf'<th scope="row">{differing}</th>(.*?)</tr>', page, re.S)
    assert row is not None
    cells = re.findall(r'<td class="compare-stat( best)?">', row.group(1))
    best = max(range(2), key=lambda n: rolls[n][stats[differing]]["value"])
    assert [bool(c) for c in cells] == [n == best for n in range(2)]


def test_compare_of_mixed_kinds_is_a_400_that_says_why(client, player, synced):
    weapon = owned(synced, item_type=3)[0]
    armor = owned(synced, item_type=2)[0]

    response = client.get(f"/inventory/compare/?items={weapon['key']},{armor['key']}")

    assert response.status_code == 400
    assert "not of one kind" in response.content.decode()


def test_compare_by_filter_takes_the_largest_group_and_says_so(client, player, synced):
    page = page_of(client, "/inventory/compare/?q=is:weapon")

    assert "kinds of items; comparing the largest group" in page
    assert 2 <= page.count('<th scope="col" class="compare-item') <= 10


def test_the_compare_link_of_a_weapon_finds_weapons_of_its_type(client, player, synced):
    first, _ = two_of_a_type(synced)
    item_page = page_of(client, f"/inventory/item/{first['key']}/")
    link = re.search(r'href="(/inventory/compare/\?q=[^"]+)">Compare with others like this', item_page)
    assert link is not None

    page = page_of(client, link.group(1).replace("&amp;", "&"))

    assert f'href="/inventory/item/{first["key"]}/"' in page
    assert escape(truth(synced, first)[0]["itemTypeDisplayName"]) in page


# --- rolls kept from one profile to the next -------------------------------------------------------
HANDLING = "943549884"


def resaved_with(player, item_key: str, *, handling: int) -> None:
    """The saved profile again, minted a second later, with one item's handling changed
    (what the next GetProfile would bring after the player changed a perk in the game)."""
    response = saved_response(player)
    response["itemComponents"]["stats"]["data"][item_key]["stats"][HANDLING] = {"statHash": int(HANDLING),
                                                                              "value": handling}
    minted = Profile(response).minted
    response["responseMintedTimestamp"] = (minted + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    snapshot_save(account=player, profile=Profile(response))


def test_a_stat_filter_after_a_new_profile_reads_the_roll_that_changed(client, player, synced, settings):
    settings.PROFILE_REUSE_SECONDS = 30
    item, _ = weapon_with_alternatives(synced)
    page_of(client, "/inventory/")
    filtered = page_of(client, "/inventory/?q=stat:handling:>=150", HTTP_HX_REQUEST="true")  # every roll built
    assert f'data-item="{item["key"]}"' not in filtered

    resaved_with(player, item["key"], handling=150)
    filtered = page_of(client, "/inventory/?q=stat:handling:>=150", HTTP_HX_REQUEST="true")

    assert re.findall(r'data-item="(\d+)"', filtered) == [item["key"]]


def test_rolls_unchanged_since_the_last_profile_are_reused_and_a_changed_one_is_rebuilt(client, player, synced):
    from inventory.page import attach_rolls, built_items
    from manifest.lookup import active_seq

    item, _ = weapon_with_alternatives(synced)
    page_of(client, "/inventory/")
    first = snapshot_load(account=player).profile
    before = built_items(account=player, profile=first, seq=active_seq())
    before.roll_prints = attach_rolls(before.items.values(), profile=first, seq=active_seq())
    before.rolls = True
    resaved_with(player, item["key"], handling=150)
    second = snapshot_load(account=player).profile
    after = built_items(account=player, profile=second, seq=active_seq())
    assert after is not before  # another profile: its own tiles

    attach_rolls(after.items.values(), profile=second, seq=active_seq(), earlier=before)

    assert after.items[item["key"]].stats["handling"] == 150
    assert before.items[item["key"]].stats["handling"] != 150
    others = [key for key, view in after.items.items() if view.instance_id and key != item["key"]]
    assert others and all(after.items[key].perks is before.items[key].perks for key in others)
