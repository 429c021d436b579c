"""The fake's item rolls: sockets (305), reusable plugs (310), stats (304), state bits,
armour energy, the plug/plug-set/socket tables behind them, and the generated icons.

No Django needed: ``python -m pytest -p no:django tests/test_fakebungie_rolls.py``.
"""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import orjson
import pytest
from PIL import Image
from werkzeug.test import Client

from tests.fakebungie import FakeBungie, icons
from tests.fakebungie.items import ARMOR_BUCKETS, POWER_STAT, WEAPON_BUCKETS
from tests.fakebungie.plugs import ITEM_STATE_CRAFTED, ITEM_STATE_LOCKED, ITEM_STATE_MASTERWORK, roll

KEY = {"X-API-Key": "fake-api-key"}
PROFILE = "/Platform/Destiny2/3/Profile/4611686018467260757/"
ROLL_COMPONENTS = "102,201,205,300,304,305,310"


def _get(client: Client, path: str, headers: dict[str, str] | None = None) -> Any:
    response = client.get(path, headers=headers or KEY)
    return orjson.loads(response.get_data())


@cache
def _world() -> tuple[FakeBungie, dict[str, Any], dict[str, dict[str, Any]]]:
    """One fake, its signed-in profile with every roll component, and its served tables."""
    app = FakeBungie()
    client = Client(app)
    token = app.issue_token()["access_token"]
    profile = _get(client, f"{PROFILE}?components={ROLL_COMPONENTS}", {**KEY, "Authorization": f"Bearer {token}"})
    assert profile["ErrorCode"] == 1
    paths = _get(client, "/Platform/Destiny2/Manifest/")["Response"]["jsonWorldComponentContentPaths"]["en"]
    tables = {
        t: orjson.loads(client.get(paths[t]).get_data())
        for t in (
            "DestinyInventoryItemDefinition",
            "DestinyPlugSetDefinition",
            "DestinySocketTypeDefinition",
            "DestinySocketCategoryDefinition",
            "DestinyStatDefinition",
        )
    }
    return app, profile["Response"], tables


def _owned(response: dict[str, Any]) -> list[dict[str, Any]]:
    items = list(response["profileInventory"]["data"]["items"])
    for section in ("characterInventories", "characterEquipment"):
        for inventory in response[section]["data"].values():
            items.extend(inventory["items"])
    return [i for i in items if "itemInstanceId" in i]


def test_every_instance_has_a_roll_for_each_socket_of_its_definition() -> None:
    _, response, tables = _world()
    items = tables["DestinyInventoryItemDefinition"]
    sockets = response["itemComponents"]["sockets"]["data"]
    owned = _owned(response)
    assert len(owned) > 600
    for item in owned:
        entries = items[str(item["itemHash"])]["sockets"]["socketEntries"]
        states = sockets[item["itemInstanceId"]]["sockets"]
        assert len(states) == len(entries)
        for entry, state in zip(entries, states, strict=True):
            assert state["isEnabled"] is True and state["plugHash"]
            socket_type = tables["DestinySocketTypeDefinition"][str(entry["socketTypeHash"])]
            if not entry["defaultVisible"] and not item["state"] & ITEM_STATE_CRAFTED:
                assert state["isVisible"] is False, socket_type
            if entry.get("randomizedPlugSetHash"):
                plug_set = tables["DestinyPlugSetDefinition"][str(entry["randomizedPlugSetHash"])]
                assert state["plugHash"] in {p["plugItemHash"] for p in plug_set["reusablePlugItems"]}


def test_rolls_differ_between_instances_but_are_deterministic_per_instance_id() -> None:
    _, response, _ = _world()
    again = FakeBungie()  # a fresh fake, same player seed: same instance ids, same rolls
    roll.cache_clear()
    for item in _owned(response)[:200]:
        fresh = roll(again.current.items, item["itemHash"], item["itemInstanceId"])
        assert fresh.sockets == response["itemComponents"]["sockets"]["data"][item["itemInstanceId"]]
        assert fresh.stats == response["itemComponents"]["stats"]["data"][item["itemInstanceId"]]
        assert fresh.state == item["state"]
    weapons = [i for i in _owned(response) if i["bucketHash"] in WEAPON_BUCKETS]
    by_hash: dict[int, set[str]] = {}
    for w in weapons:
        by_hash.setdefault(w["itemHash"], set()).add(
            orjson.dumps(response["itemComponents"]["sockets"]["data"][w["itemInstanceId"]]).decode()
        )
    assert any(len(rolls) > 1 for rolls in by_hash.values()), "copies of one weapon should roll differently"


def test_every_plug_and_table_hash_a_roll_uses_is_served() -> None:
    _, response, tables = _world()
    items, sets = tables["DestinyInventoryItemDefinition"], tables["DestinyPlugSetDefinition"]
    components = response["itemComponents"]
    plug_hashes = {s["plugHash"] for v in components["sockets"]["data"].values() for s in v["sockets"]}
    plug_hashes |= {
        p["plugItemHash"]
        for v in components["reusablePlugs"]["data"].values()
        for ps in v["plugs"].values()
        for p in ps
    }
    assert len(plug_hashes) > 100
    for h in plug_hashes:
        row = items.get(str(h))
        assert row is not None, f"plug {h} has no definition"
        assert row["plug"]["plugCategoryIdentifier"] and row["displayProperties"]["name"] is not None
    for item in _owned(response):
        block = items[str(item["itemHash"])]["sockets"]
        for entry in block["socketEntries"]:
            assert str(entry["socketTypeHash"]) in tables["DestinySocketTypeDefinition"]
            for key in ("randomizedPlugSetHash", "reusablePlugSetHash"):
                if entry.get(key):
                    plug_set = sets[str(entry[key])]
                    assert all(str(p["plugItemHash"]) in items for p in plug_set["reusablePlugItems"])
        for category in block["socketCategories"]:
            assert str(category["socketCategoryHash"]) in tables["DestinySocketCategoryDefinition"]
    names = {c["displayProperties"]["name"] for c in tables["DestinySocketCategoryDefinition"].values()}
    assert {"WEAPON PERKS", "INTRINSIC TRAITS", "WEAPON MODS", "ARMOR MODS", "ARMOR COSMETICS"} <= names


def test_reusable_plugs_offer_the_inserted_plug_of_each_random_column() -> None:
    _, response, tables = _world()
    items, sets = tables["DestinyInventoryItemDefinition"], tables["DestinyPlugSetDefinition"]
    reusable = response["itemComponents"]["reusablePlugs"]["data"]
    sockets = response["itemComponents"]["sockets"]["data"]
    checked = 0
    for item in _owned(response):
        entries = items[str(item["itemHash"])]["sockets"]["socketEntries"]
        for index, entry in enumerate(entries):
            if not entry.get("randomizedPlugSetHash"):
                continue
            offered = reusable[item["itemInstanceId"]]["plugs"][str(index)]
            hashes = [p["plugItemHash"] for p in offered]
            assert sockets[item["itemInstanceId"]]["sockets"][index]["plugHash"] in hashes
            assert set(hashes) <= {
                p["plugItemHash"] for p in sets[str(entry["randomizedPlugSetHash"])]["reusablePlugItems"]
            }
            assert all(p["canInsert"] and p["enabled"] for p in offered)
            checked += 1
    assert checked > 300


def test_item_stats_are_the_definition_stats_plus_the_inserted_plugs_investment() -> None:
    _, response, tables = _world()
    items = tables["DestinyInventoryItemDefinition"]
    stats = response["itemComponents"]["stats"]["data"]
    sockets = response["itemComponents"]["sockets"]["data"]
    changed = 0
    for item in _owned(response):
        definition = items[str(item["itemHash"])]
        expected = {int(h): s["value"] for h, s in definition["stats"]["stats"].items() if int(h) != POWER_STAT}
        for state in sockets[item["itemInstanceId"]]["sockets"]:
            for inv in items[str(state["plugHash"])].get("investmentStats", []):
                if inv["statTypeHash"] in expected and not inv.get("isConditionallyActive"):
                    expected[inv["statTypeHash"]] += inv["value"]
        want = {str(h): {"statHash": h, "value": max(0, min(100, v))} for h, v in expected.items()}
        got = stats[item["itemInstanceId"]]["stats"]
        assert got == want
        assert str(POWER_STAT) not in got
        assert all(str(h) in tables["DestinyStatDefinition"] for h in got)
        changed += any(got[h]["value"] != definition["stats"]["stats"][h]["value"] for h in got)
    assert changed > 300, "plugs should move most items' stats"


def test_state_bits_locked_masterwork_and_crafted() -> None:
    _, response, tables = _world()
    items = tables["DestinyInventoryItemDefinition"]
    sockets = response["itemComponents"]["sockets"]["data"]
    owned = _owned(response)
    count = {bit: sum(1 for i in owned if i["state"] & bit) for bit in (1, 4, 8)}
    assert 0.2 * len(owned) < count[ITEM_STATE_LOCKED] < 0.5 * len(owned)
    assert 0.1 * len(owned) < count[ITEM_STATE_MASTERWORK] < 0.45 * len(owned)
    assert 0 < count[ITEM_STATE_CRAFTED] < 0.1 * len(owned)
    for item in owned:
        plugs = [items[str(s["plugHash"])] for s in sockets[item["itemInstanceId"]]["sockets"]]
        masterworks = [p for p in plugs if "masterworks" in p["plug"]["plugCategoryIdentifier"]]
        categories = [p["plug"]["plugCategoryIdentifier"] for p in masterworks]
        full = [p for p in masterworks if p["displayProperties"]["name"].startswith("Masterworked")]
        if item["state"] & ITEM_STATE_MASTERWORK:
            assert full, (item, categories)
        else:
            assert not full
        shaped = [
            (p, s)
            for p, s in zip(plugs, sockets[item["itemInstanceId"]]["sockets"], strict=True)
            if p["displayProperties"]["name"] == "Shaped Weapon"
        ]
        if item["state"] & ITEM_STATE_CRAFTED:
            assert item["bucketHash"] in (*WEAPON_BUCKETS, 138197802, 215593132)
            assert len(shaped) == 1 and shaped[0][1]["isVisible"]
        else:
            assert not shaped


def test_armor_carries_energy_that_fits_its_mods() -> None:
    _, response, tables = _world()
    items = tables["DestinyInventoryItemDefinition"]
    instances = response["itemComponents"]["instances"]["data"]
    sockets = response["itemComponents"]["sockets"]["data"]
    armor = [i for i in _owned(response) if items[str(i["itemHash"])]["inventory"]["bucketTypeHash"] in ARMOR_BUCKETS]
    assert armor
    for item in armor:
        energy = instances[item["itemInstanceId"]]["energy"]
        assert 1 <= energy["energyCapacity"] <= 10
        assert energy["energyUsed"] + energy["energyUnused"] == energy["energyCapacity"]
        costs = 0
        for state in sockets[item["itemInstanceId"]]["sockets"]:
            plug = items[str(state["plugHash"])]["plug"]
            costs += (plug.get("energyCost") or {}).get("energyCost", 0)
            if "energyCapacity" in plug:
                assert plug["energyCapacity"]["capacityValue"] == energy["energyCapacity"]
        assert costs == energy["energyUsed"]
    weapons = [i for i in _owned(response) if i["bucketHash"] in WEAPON_BUCKETS]
    assert all("energy" not in instances[w["itemInstanceId"]] for w in weapons)


def test_the_entity_endpoint_answers_the_new_tables_and_generated_plugs() -> None:
    app, _, tables = _world()
    client = Client(app)
    for table in ("DestinyPlugSetDefinition", "DestinySocketTypeDefinition", "DestinySocketCategoryDefinition"):
        key, entry = next(iter(tables[table].items()))
        body = _get(client, f"/Platform/Destiny2/Manifest/{table}/{key}/")
        assert body["ErrorCode"] == 1 and body["Response"] == entry
    barrel = next(
        h
        for h, row in tables["DestinyInventoryItemDefinition"].items()
        if (row.get("plug") or {}).get("plugCategoryIdentifier") == "barrels"
        and int(h) not in set(app.current.items.hashes())
    )
    body = _get(client, f"/Platform/Destiny2/Manifest/DestinyInventoryItemDefinition/{barrel}/")
    assert body["Response"]["plug"]["plugCategoryHash"] == 2833605196


def _png(client: Client, path: str) -> Image.Image:
    response = client.get(path)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert "max-age=31536000" in response.headers["Cache-Control"]
    data = response.get_data()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) < 20_000
    return Image.open(io.BytesIO(data))


def test_icons_are_pngs_of_the_right_size_that_show_tier_and_kind() -> None:
    app, response, tables = _world()
    client = Client(app)
    items = tables["DestinyInventoryItemDefinition"]
    by_tier: dict[int, str] = {}
    for item in _owned(response):
        row = items[str(item["itemHash"])]
        by_tier.setdefault(row["inventory"]["tierType"], row["displayProperties"]["icon"])
    assert len(by_tier) >= 3
    images = {tier: _png(client, path) for tier, path in by_tier.items()}
    assert all(image.size == (96, 96) for image in images.values())
    corners = {tier: image.convert("RGB").getpixel((1, 1)) for tier, image in images.items()}
    assert len(set(corners.values())) == len(corners), "the tier border colour differs by tier"
    for tier, colour in corners.items():
        assert colour == icons.TIER_COLORS[tier]
    character = next(iter(response["characterEquipment"]["data"]))
    profile = _get(client, f"{PROFILE}?components=200")["Response"]["characters"]["data"][character]
    assert _png(client, profile["emblemBackgroundPath"]).size == (474, 96)
    assert _png(client, profile["emblemPath"]).size == (96, 96)
    sockets = response["itemComponents"]["sockets"]["data"]
    first = next(iter(sockets.values()))["sockets"][0]["plugHash"]
    glyph = _png(client, items[str(first)]["displayProperties"]["icon"])
    assert glyph.mode == "RGBA" and glyph.getpixel((0, 0))[3] == 0, "plug icons are round glyphs"
    # Deterministic: the same path gives the same bytes, any other path still a PNG.
    path = by_tier[max(by_tier)]
    assert client.get(path).get_data() == icons.png_for(path)
    assert _png(client, "/img/misc/missing_icon_d2.png").size == (96, 96)


@pytest.mark.parametrize("tier", [2, 3, 4, 5, 6])
def test_encoded_icon_paths_keep_bungies_shape(tier: int) -> None:
    path = icons.icon_path("weapon", key=f"k{tier}", tier=tier, damage=3, sub=6)
    stem = path.removeprefix("/common/destiny2_content/icons/").removesuffix(".png")
    assert len(stem) == 32 and all(c in "0123456789abcdef" for c in stem)
    assert icons.decode(path) == {"kind": "weapon", "tier": tier, "damage": 3, "sub": 6, "seed": stem[5:30]}
    assert icons.decode("/common/destiny2_content/icons/0f65245ef16bb30b88e7b98bb83cc5f0.png") is None
