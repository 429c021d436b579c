"""Tags and notes on a player's items: set from the item page and the quick view, shown on
the tiles, found with tag:, is:tagged, notes: and is:hasnotes, set in bulk for a filter's
matches, kept through moves, and nobody else's to see or change."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from dvr.accounts.models import BungieAccount
from inventory.annotations import Note
from inventory.models import ItemAnnotation
from inventory.search import parse_query
from tests.fakebungie.plugs import definition

pytestmark = pytest.mark.django_db

TITAN = "2305843009262373961"


def fake_items(bungie, **where) -> list[dict]:
    return [i for i in bungie.app.player_state()["items"] if all(i.get(k) == v for k, v in where.items())]


def vault_weapons(bungie) -> list[dict]:
    return [i for i in fake_items(bungie, place="vault", instanced=True) if i["item_type"] == 3]


def shown_keys(client: Client, query: str) -> set[str]:
    response = client.get("/inventory/", {"q": query})
    assert response.status_code == 200
    body = response.content.decode()
    return {part.split('"', 1)[0] for part in body.split('data-item="')[1:]}


def someone_else() -> BungieAccount:
    user = get_user_model().objects.create_user("other-guardian")
    return BungieAccount.objects.create(user=user, membership_id="4611686018400000001", unique_name="Other#0001")


# --- setting them ---------------------------------------------------------------------------------
def test_a_tag_and_notes_set_from_the_item_page_show_on_it_without_javascript(client, player, synced):
    item = vault_weapons(synced)[0]

    response = client.post(f"/inventory/item/{item['key']}/annotate/", {"tag": "keep", "notes": "god roll for pvp"})

    assert response.status_code == 302 and response["Location"] == f"/inventory/item/{item['key']}/"
    page = client.get(response["Location"]).content.decode()
    assert "Saved your tag and notes." in page
    assert '<option value="keep" selected>' in page
    assert "god roll for pvp</textarea>" in page
    row = ItemAnnotation.objects.get(account=player, instance_id=item["key"])
    assert (row.tag, row.notes, row.item_hash) == ("keep", "god roll for pvp", item["item_hash"])


def test_the_quick_view_offers_the_form_and_htmx_saves_it_in_place(client, player, synced):
    item = vault_weapons(synced)[0]

    quick = client.get(f"/inventory/item/{item['key']}/quick/", headers={"HX-Request": "true"}).content.decode()
    assert f'hx-post="/inventory/item/{item["key"]}/annotate/"' in quick
    response = client.post(f"/inventory/item/{item['key']}/annotate/", {"tag": "junk", "notes": ""},
                           headers={"HX-Request": "true"})

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<form class="annotate"') and "Saved: tagged junk." in body
    assert ItemAnnotation.objects.get(account=player, instance_id=item["key"]).tag == "junk"


def test_clearing_both_the_tag_and_the_notes_removes_the_row(client, player, synced):
    item = vault_weapons(synced)[0]
    client.post(f"/inventory/item/{item['key']}/annotate/", {"tag": "junk", "notes": "x"})

    client.post(f"/inventory/item/{item['key']}/annotate/", {"tag": "", "notes": " "})

    assert not ItemAnnotation.objects.filter(account=player).exists()


def test_the_tile_shows_the_tag_as_a_badge_and_says_it(client, player, synced):
    item = vault_weapons(synced)[0]
    client.post(f"/inventory/item/{item['key']}/annotate/", {"tag": "favorite", "notes": "mine"})

    body = html.unescape(client.get("/inventory/").content.decode())

    tile = body.split(f'data-item="{item["key"]}"')[1].split("</li>")[0]
    assert '<span class="badge tag tag-favorite" aria-hidden="true"></span>' in tile
    assert "· Tagged favorite · Has notes" in tile


# --- finding them ---------------------------------------------------------------------------------
def test_tag_is_tagged_notes_and_hasnotes_find_exactly_the_annotated_items(client, player, synced):
    first, second, third = (i["key"] for i in vault_weapons(synced)[:3])
    client.post(f"/inventory/item/{first}/annotate/", {"tag": "junk", "notes": ""})
    client.post(f"/inventory/item/{second}/annotate/", {"tag": "keep", "notes": "Great PvP roll"})
    client.post(f"/inventory/item/{third}/annotate/", {"tag": "", "notes": "check later"})

    assert shown_keys(client, "tag:junk") == {first}
    assert shown_keys(client, "is:tagged") == {first, second}
    assert shown_keys(client, 'notes:"pvp roll"') == {second}
    assert shown_keys(client, "is:hasnotes") == {second, third}
    untagged = shown_keys(client, "tag:none")
    assert first not in untagged and second not in untagged and third in untagged
    assert shown_keys(client, "-is:tagged is:hasnotes") == {third}


def test_an_unknown_tag_in_a_filter_is_ignored_and_said(client, player, synced):
    body = html.unescape(client.get("/inventory/", {"q": "tag:shiny"}).content.decode())

    assert "Ignored in the filter: tag:shiny" in body


def test_the_language_reads_tags_and_notes_only_from_the_context_it_is_given():
    class Item:
        def __init__(self, instance_id: str) -> None:
            self.instance_id, self.name, self.tier, self.damage, self.slot = instance_id, instance_id, "", "", ""
            self.kind, self.power, self.equipped, self.location = "weapon", None, False, "vault"

    items = [Item("1"), Item("2"), Item("3")]
    notes = {"1": Note("junk", ""), "2": Note("", "Nice Roll")}

    assert [i.instance_id for i in parse_query("tag:junk").filter(items, notes=notes)] == ["1"]
    assert [i.instance_id for i in parse_query("tag:none").filter(items, notes=notes)] == ["2", "3"]
    assert [i.instance_id for i in parse_query("notes:nice").filter(items, notes=notes)] == ["2"]
    assert parse_query("is:tagged").filter(items) == []  # no context: nobody's tags


def test_a_tag_survives_a_move_to_a_character(client, player, synced):
    item = next(i for i in vault_weapons(synced) if i.get("class_type", 3) == 3)
    client.post(f"/inventory/item/{item['key']}/annotate/", {"tag": "infuse", "notes": ""})

    client.post("/inventory/move/", {"item": item["key"], "to": TITAN})

    assert fake_items(synced, key=item["key"])[0]["character_id"] == TITAN
    assert shown_keys(client, "tag:infuse") == {item["key"]}


# --- in bulk ----------------------------------------------------------------------------------------
def test_tag_all_matching_tags_every_item_the_filter_shows(client, player, synced):
    weapons = {i["key"] for i in fake_items(synced, instanced=True) if i["item_type"] == 3}

    response = client.post("/inventory/tag-matching/", {"q": "is:weapon", "tag": "junk"}, follow=True)

    assert f"Tagged {len(weapons)} items junk." in html.unescape(response.content.decode())
    assert set(ItemAnnotation.objects.filter(account=player, tag="junk").values_list("instance_id", flat=True)) \
        == weapons
    assert shown_keys(client, "tag:junk") == weapons


def test_tag_all_matching_keeps_notes_and_can_clear_the_tag(client, player, synced):
    item = vault_weapons(synced)[0]
    client.post(f"/inventory/item/{item['key']}/annotate/", {"tag": "keep", "notes": "keep me"})

    client.post("/inventory/tag-matching/", {"q": "is:weapon", "tag": "junk"})
    assert ItemAnnotation.objects.get(account=player, instance_id=item["key"]).notes == "keep me"
    response = client.post("/inventory/tag-matching/", {"q": "is:weapon", "tag": ""}, follow=True)

    assert "Cleared the tag of" in response.content.decode()
    assert list(ItemAnnotation.objects.filter(account=player).values_list("instance_id", "tag", "notes")) == [
        (item["key"], "", "keep me")]


def test_tag_all_matching_refuses_above_the_limit_and_tags_nothing(client, player, synced, settings):
    settings.TAG_MATCHING_LIMIT = 3

    response = client.post("/inventory/tag-matching/", {"q": "is:weapon", "tag": "junk"}, follow=True)

    assert "DVR tags at most 3 at a time" in response.content.decode()
    assert not ItemAnnotation.objects.exists()


def test_tag_all_matching_needs_a_filter(client, player, synced):
    response = client.post("/inventory/tag-matching/", {"q": "", "tag": "junk"}, follow=True)

    assert "Type a filter first" in response.content.decode()
    assert not ItemAnnotation.objects.exists()


# --- bad requests and other players ----------------------------------------------------------------
def test_an_unknown_tag_is_a_400_that_says_why_and_writes_nothing(client, player, synced):
    item = vault_weapons(synced)[0]

    plain = client.post(f"/inventory/item/{item['key']}/annotate/", {"tag": "shiny", "notes": ""})
    in_place = client.post(f"/inventory/item/{item['key']}/annotate/", {"tag": "shiny"}, headers={"HX-Request": "true"})
    bulk = client.post("/inventory/tag-matching/", {"q": "is:weapon", "tag": "shiny"})

    assert plain.status_code == 400 and "is not a tag" in html.unescape(plain.content.decode())
    assert in_place.status_code == 422 and "is not a tag" in html.unescape(in_place.content.decode())
    assert bulk.status_code == 400
    assert not ItemAnnotation.objects.exists()


def test_notes_that_are_too_long_are_refused(client, player, synced):
    item = vault_weapons(synced)[0]

    response = client.post(f"/inventory/item/{item['key']}/annotate/", {"tag": "keep", "notes": "x" * 1001})

    assert response.status_code == 400 and "at most 1000 characters" in response.content.decode()
    assert not ItemAnnotation.objects.exists()


def test_another_players_item_is_a_404_and_their_tag_stays_theirs(client, player, synced):
    other = someone_else()
    theirs = ItemAnnotation.objects.create(account=other, instance_id="6917529999999999999", tag="favorite",
                                           notes="not yours")

    response = client.post("/inventory/item/6917529999999999999/annotate/", {"tag": "junk", "notes": "mine now"})

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert (theirs.tag, theirs.notes) == ("favorite", "not yours")
    assert not ItemAnnotation.objects.filter(account=player).exists()
    assert shown_keys(client, "is:tagged") == set()
    assert client.get("/inventory/item/6917529999999999999/").status_code == 404


def test_setting_a_tag_needs_a_post_with_csrf(player, synced, client):
    item = vault_weapons(synced)[0]
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies

    assert client.get(f"/inventory/item/{item['key']}/annotate/").status_code == 405
    assert strict.post(f"/inventory/item/{item['key']}/annotate/", {"tag": "junk"}).status_code == 403
    assert strict.post("/inventory/tag-matching/", {"q": "is:weapon", "tag": "junk"}).status_code == 403
    assert not ItemAnnotation.objects.exists()


def test_send_all_matching_to_the_vault_reads_tags(client, player, synced):
    carried = [i for i in fake_items(synced, place="inventory", instanced=True) if i["item_type"] == 3][:2]
    junk, kept = carried
    client.post(f"/inventory/item/{junk['key']}/annotate/", {"tag": "junk", "notes": ""})

    response = client.post("/inventory/vault-matching/", {"q": "tag:junk"}, follow=True)

    assert "Sent 1 item to the vault." in response.content.decode()
    assert fake_items(synced, key=junk["key"])[0]["place"] == "vault"
    assert fake_items(synced, key=kept["key"])[0]["place"] == "inventory"


def test_compare_matching_reads_tags(client, player, synced):
    spec = synced.app.current.items
    by_type: dict[str, list[str]] = {}
    for item in fake_items(synced, instanced=True, item_type=3, tier_type=5):
        by_type.setdefault(definition(spec, item["item_hash"])["itemTypeDisplayName"], []).append(item["key"])
    pair = next(keys[:2] for keys in by_type.values() if len(keys) >= 2)
    for key in pair:
        client.post(f"/inventory/item/{key}/annotate/", {"tag": "keep", "notes": ""})

    response = client.get("/inventory/compare/", {"q": "tag:keep"})

    assert response.status_code == 200
    assert all(f"/inventory/item/{key}/" in response.content.decode() for key in pair)


def test_is_dupelower_keeps_the_copy_tagged_keep_or_favorite_at_equal_power():
    class Copy:
        def __init__(self, instance_id: str) -> None:
            self.instance_id, self.name, self.tier, self.damage, self.slot = instance_id, "Gun", "legendary", "", ""
            self.kind, self.power, self.equipped, self.location, self.item_hash = "weapon", 1800, False, "vault", 7
            self.masterwork, self.locked = instance_id == "2", False

    copies = [Copy("1"), Copy("2"), Copy("3")]

    assert [c.instance_id for c in parse_query("is:dupelower").filter(copies)] == ["1", "3"]  # masterwork wins
    lower = parse_query("is:dupelower").filter(copies, notes={"3": Note("keep", "")})
    assert [c.instance_id for c in lower] == ["1", "2"]  # the copy tagged keep wins over a masterwork
