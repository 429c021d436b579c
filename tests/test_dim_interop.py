"""DIM interop: import DIM's spreadsheet CSV and DIM's backup (tags and notes; loadouts
reported, not imported), export the vault as DIM's weapon and armor spreadsheets; a bad
file says what is wrong and changes nothing."""

from __future__ import annotations

import csv
import html
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from inventory.models import DimLoadout, ItemAnnotation

pytestmark = pytest.mark.django_db


def fake_items(bungie, **where) -> list[dict]:
    return [i for i in bungie.app.player_state()["items"] if all(i.get(k) == v for k, v in where.items())]


def said(response) -> str:
    return html.unescape(response.content.decode())


def upload(client: Client, kind: str, content: bytes, name: str = "file"):
    return client.post("/inventory/dim/import/", {"kind": kind, "file": SimpleUploadedFile(name, content)},
                       follow=True)


def annotations(account) -> dict[str, tuple[str, str]]:
    return {a.instance_id: (a.tag, a.notes) for a in ItemAnnotation.objects.filter(account=account)}


def dim_csv(rows: list[dict], columns=("Name", "Hash", "Id", "Tag", "Notes")) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def membership_id(account) -> str:
    return account.memberships.first().membership_id


# --- the spreadsheet ------------------------------------------------------------------------------
def test_a_dim_spreadsheet_sets_tags_and_notes_with_dims_quoted_ids(client, player, synced):
    first, second = (i["key"] for i in fake_items(synced, place="vault", instanced=True)[:2])
    content = dim_csv([
        {"Name": "A", "Hash": "1", "Id": f'"{first}"', "Tag": "Favorite", "Notes": "pvp god roll"},
        {"Name": "B", "Hash": "2", "Id": f'"{second}"', "Tag": "junk", "Notes": ""},
    ])

    response = upload(client, "csv", content, "destinyWeapons.csv")

    assert "Imported the tags and notes of 2 items." in said(response)
    assert annotations(player) == {first: ("favorite", "pvp god roll"), second: ("junk", "")}
    assert client.get("/inventory/", {"q": "tag:favorite"}).content.decode().count('data-item="') == 1


def test_an_empty_tag_and_notes_in_the_spreadsheet_clear_the_item(client, player, synced):
    item = fake_items(synced, place="vault", instanced=True)[0]["key"]
    ItemAnnotation.objects.create(account=player, instance_id=item, tag="keep", notes="old")

    upload(client, "csv", dim_csv([{"Name": "A", "Hash": "1", "Id": item, "Tag": "", "Notes": ""}]))

    assert annotations(player) == {}


@pytest.mark.parametrize("content, words", [
    (dim_csv([{"Name": "A", "Id": "1"}], columns=("Name", "Id")), "it has no Tag, Notes columns"),
    (b"\xff\xfe\x00garbage\x00", "not UTF-8"),
    (b"", "empty"),
    (dim_csv([{"Name": "A", "Hash": "1", "Id": "6917529000000000001", "Tag": "junk", "Notes": ""},
              {"Name": "B", "Hash": "1", "Id": "6917529000000000002", "Tag": "shiny", "Notes": ""}]),
     "Row 3: 'shiny' is not one of DIM's tags"),
    (dim_csv([{"Name": "A", "Hash": "1", "Id": "not-an-id", "Tag": "junk", "Notes": ""}]),
     "Row 2: 'not-an-id' is not an item id"),
    (dim_csv([{"Name": "A", "Hash": "1", "Id": "6917529000000000001", "Tag": "", "Notes": "x" * 1001}]),
     "Row 2: Notes can be at most 1000"),
])
def test_a_bad_spreadsheet_says_what_is_wrong_and_changes_nothing(client, player, synced, content, words):
    item = fake_items(synced, place="vault", instanced=True)[0]["key"]
    ItemAnnotation.objects.create(account=player, instance_id=item, tag="keep", notes="mine")

    response = client.post("/inventory/dim/import/", {"kind": "csv", "file": SimpleUploadedFile("x.csv", content)})

    assert response.status_code == 400
    assert "Nothing was imported." in said(response) and words in said(response)
    assert annotations(player) == {item: ("keep", "mine")}


def test_a_file_over_the_limit_is_refused(client, player, synced, settings):
    settings.DIM_IMPORT_MAX_BYTES = 1000
    content = dim_csv([{"Name": "A" * 50, "Hash": "1", "Id": str(6917529000000000000 + n), "Tag": "junk",
                        "Notes": ""} for n in range(30)])

    response = client.post("/inventory/dim/import/", {"kind": "csv", "file": SimpleUploadedFile("x.csv", content)})

    assert response.status_code == 400 and "too big" in said(response)
    assert not ItemAnnotation.objects.exists()


def test_an_import_without_a_file_or_kind_is_a_400(client, player, synced):
    assert client.post("/inventory/dim/import/", {"kind": "csv"}).status_code == 400
    assert client.post("/inventory/dim/import/", {"kind": "zip", "file": SimpleUploadedFile("x", b"a")}
                       ).status_code == 400


# --- the backup -----------------------------------------------------------------------------------
def test_a_dim_backup_imports_the_players_destiny_2_tags_and_reports_loadouts(client, player, synced):
    first, second = (i["key"] for i in fake_items(synced, place="vault", instanced=True)[:2])
    mine = membership_id(player)
    backup = {
        "settings": {},
        "loadouts": [{"platformMembershipId": mine, "destinyVersion": 2,
                      "loadout": {"id": "x", "name": "PvP", "classType": 1, "equipped": [], "unequipped": []}}],
        "tags": [
            {"platformMembershipId": mine, "destinyVersion": 2,
             "annotation": {"id": first, "tag": "keep", "notes": "raid"}},
            {"platformMembershipId": mine, "destinyVersion": 2, "annotation": {"id": second, "tag": None,
                                                                                 "notes": "check"}},
            {"platformMembershipId": "4611686018499999999", "destinyVersion": 2,
             "annotation": {"id": "6917529000000000099", "tag": "junk"}},
            {"platformMembershipId": mine, "destinyVersion": 1, "annotation": {"id": "123", "tag": "junk"}},
        ],
        "itemHashTags": [], "triumphs": [], "searches": [],
    }

    response = upload(client, "backup", json.dumps(backup).encode(), "dim-data.json")

    assert "Imported the tags and notes of 2 items. Skipped 2 of another account or of Destiny 1. " \
           "1 loadout kept aside: not imported yet." in said(response)
    assert annotations(player) == {first: ("keep", "raid"), second: ("", "check")}
    kept = DimLoadout.objects.get(account=player)
    assert (kept.dim_id, kept.name, kept.data["classType"]) == ("x", "PvP", 1)


@pytest.mark.parametrize("content, words", [
    (b'{"tags": [', "not valid JSON"),
    (b'[1, 2]', "not a DIM backup"),
    (b'{"settings": {}}', "not a DIM backup"),
    (json.dumps({"tags": [{"annotation": {"id": "6917529000000000001", "tag": "keep"}},
                          {"annotation": {"id": "6917529000000000002", "tag": "bogus"}}]}).encode(),
     "Tag 2 in the backup: 'bogus' is not one of DIM's tags"),
    (json.dumps({"tags": ["keep"]}).encode(), "Tag 1 in the backup is not an object"),
    (json.dumps({"tags": [], "loadouts": {"a": 1}}).encode(), "\"loadouts\" is not a list"),
])
def test_a_bad_backup_says_what_is_wrong_and_changes_nothing(client, player, synced, content, words):
    response = client.post("/inventory/dim/import/", {"kind": "backup", "file": SimpleUploadedFile("b.json",
                                                                                                    content)})

    assert response.status_code == 400
    assert "Nothing was imported." in said(response) and words in said(response)
    assert not ItemAnnotation.objects.exists() and not DimLoadout.objects.exists()


# --- the export -----------------------------------------------------------------------------------
def exported(client: Client, kind: str) -> list[dict[str, str]]:
    response = client.get(f"/inventory/dim/export/{kind}.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_the_weapons_export_has_dims_columns_tags_notes_stats_and_perks(client, player, synced):
    weapon = fake_items(synced, place="vault", instanced=True, item_type=3)[0]
    client.post(f"/inventory/item/{weapon['key']}/annotate/", {"tag": "keep", "notes": "a, \"quoted\" note"})

    response = client.get("/inventory/dim/export/weapons.csv")
    assert response["Content-Disposition"] == 'attachment; filename="destinyWeapons.csv"'
    rows = exported(client, "weapons")

    weapons = {i["key"] for i in fake_items(synced, instanced=True, item_type=3)}
    assert {row["Id"].strip('"') for row in rows} == weapons
    header = list(rows[0])
    for column in ("Name", "Hash", "Id", "Tag", "Tier", "Type", "Power", "Owner", "Locked", "Equipped", "Notes",
                   "Impact", "Range", "Stability", "Reload", "Perks 0"):
        assert column in header, column
    row = next(r for r in rows if r["Id"] == f'"{weapon["key"]}"')
    assert (row["Tag"], row["Notes"], row["Owner"], row["Hash"]) == ("keep", 'a, "quoted" note', "Vault",
                                                                    str(weapon["item_hash"]))
    assert any(value.endswith("*") for key, value in row.items() if key.startswith("Perks"))
    assert {r["Equipped"] for r in rows} == {"true", "false"}


def test_the_armor_export_has_dims_armor_columns(client, player, synced):
    rows = exported(client, "armor")

    armor = {i["key"] for i in fake_items(synced, instanced=True, item_type=2)}
    assert {row["Id"].strip('"') for row in rows} == armor
    for column in ("Equippable", "Mobility", "Total", "Mobility (Base)", "Total (Base)", "Notes"):
        assert column in rows[0], column
    assert {r["Owner"] for r in rows} >= {"Vault"}
    assert any(r["Owner"].startswith(("Titan(", "Hunter(", "Warlock(")) for r in rows)


def test_an_export_imports_back_unchanged(client, player, synced):
    weapon = fake_items(synced, place="vault", instanced=True, item_type=3)[0]
    client.post(f"/inventory/item/{weapon['key']}/annotate/", {"tag": "infuse", "notes": "later"})
    content = client.get("/inventory/dim/export/weapons.csv").content
    before = annotations(player)

    response = upload(client, "csv", content, "destinyWeapons.csv")

    assert "Imported the tags and notes of" in said(response)
    assert annotations(player) == before == {weapon["key"]: ("infuse", "later")}


def test_an_unknown_export_kind_is_a_404(client, player, synced):
    assert client.get("/inventory/dim/export/ghosts.csv").status_code == 404


def test_imports_need_a_post_with_csrf(client, player, synced):
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    content = dim_csv([{"Name": "A", "Hash": "1", "Id": "6917529000000000001", "Tag": "junk", "Notes": ""}])

    response = strict.post("/inventory/dim/import/", {"kind": "csv", "file": SimpleUploadedFile("x.csv", content)})

    assert response.status_code == 403
    assert client.get("/inventory/dim/import/").status_code == 405
    assert not ItemAnnotation.objects.exists()


def test_the_dim_page_is_linked_from_the_vault_and_offers_both_imports_and_exports(client, player, synced):
    assert 'href="/inventory/dim/"' in client.get("/inventory/").content.decode()

    page = client.get("/inventory/dim/").content.decode()

    assert page.count('action="/inventory/dim/import/"') == 2
    assert 'href="/inventory/dim/export/weapons.csv"' in page and 'href="/inventory/dim/export/armor.csv"' in page


def test_a_backup_with_nul_characters_is_imported_without_them(client, player, synced):
    item = fake_items(synced, place="vault", instanced=True)[0]["key"]
    backup = {"tags": [{"annotation": {"id": item, "tag": "keep", "notes": "a\u0000b"}}],
              "loadouts": [{"destinyVersion": 2, "loadout": {"id": "l\u00001", "name": "N\u0000", "x": ["\u0000"]}}]}

    response = upload(client, "backup", json.dumps(backup).encode())

    assert response.status_code == 200
    assert annotations(player) == {item: ("keep", "ab")}
    kept = DimLoadout.objects.get()
    assert (kept.dim_id, kept.name, kept.data["x"]) == ("l1", "N", [""])
