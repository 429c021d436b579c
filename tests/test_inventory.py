"""The player's vault page and its actions, against the fake Bungie.net's player."""

from __future__ import annotations

import html
import logging
import re

import pytest
from django.test import Client
from django.utils.html import escape

from manifest.lookup import definitions, forget_active_seq, forget_local_summaries
from manifest.models import ManifestState
from manifest.sync import manifest_sync
from tests.fakebungie.items import ItemSpec
from tests.support import fake_items, log_in, said, vault_item

pytestmark = pytest.mark.django_db

TITAN, HUNTER, WARLOCK = "2305843009262373961", "2305843009262373962", "2305843009262373963"


def name_of(item: dict) -> str:
    """The item's name as DVR says it (from the synced manifest)."""
    return definitions("DestinyInventoryItemDefinition", [item["item_hash"]])[item["item_hash"]][
        "displayProperties"]["name"]


def profile_calls(bungie) -> int:
    return bungie.app.stats()["counts"].get("profile", 0)


def page_of(client: Client, url: str = "/inventory/") -> str:
    response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


# --- the page -----------------------------------------------------------------------------------
def test_the_page_shows_three_characters_and_the_vault_with_real_names(client, player, synced):
    page = page_of(client)

    for class_name in ("Titan", "Hunter", "Warlock"):
        assert f">{class_name}</h2>" in page
    assert 'id="vault-title"' in page
    item = vault_item(synced)
    name = synced.app.current.items.item(item["item_hash"])["displayProperties"]["name"]
    assert escape(name) in page
    assert "Unknown item" not in page
    assert "Profile data from" in page
    assert "244122.26.06.10.2000-1-bnet.65386" in page


def test_icons_come_from_bungies_root(client, player, synced):
    page = page_of(client)

    assert f'src="{synced.url}/common/destiny2_content/icons/' in page


def test_a_page_view_makes_one_profile_call_and_a_bounded_number_of_queries(
    client, player, synced, django_assert_max_num_queries
):
    page_of(client)  # warm the definitions cache
    synced.app.reset(stats=True)

    # 8 for the session, the account, the manifest and the tokens; 2 for the player's tags
    # and notes and saved searches; 1 for the active version, which a process re-reads
    # each second (a slow machine's first page may have taken that long).
    with django_assert_max_num_queries(11):
        page_of(client, "/inventory/?refresh=1")  # "refresh from Bungie"

    assert profile_calls(synced) == 1


def test_the_page_opened_again_within_seconds_reuses_the_profile_and_a_reload_asks_bungie(
    client, player, synced, settings
):
    settings.PROFILE_REUSE_SECONDS = 30
    page_of(client)
    asked = profile_calls(synced)

    again = page_of(client)  # a link to the vault, moments later

    assert profile_calls(synced) == asked
    assert "Profile data from" in again and "refresh from Bungie" in again
    for headers in ({"HTTP_CACHE_CONTROL": "max-age=0"}, {"HTTP_CACHE_CONTROL": "no-cache"},
                    {"HTTP_PRAGMA": "no-cache"}):  # the browser's reload button
        assert client.get("/inventory/", **headers).status_code == 200
    assert profile_calls(synced) == asked + 3
    page_of(client, "/inventory/?refresh=1&q=is:weapon")
    assert profile_calls(synced) == asked + 4


@pytest.mark.postgres_only
def test_a_warm_page_makes_one_definitions_round_trip(client, player, synced, monkeypatch):
    from tests.support import RedisCommands

    page_of(client)
    forget_local_summaries()  # as in another web process: the page's definitions are in Redis only
    redis = RedisCommands(monkeypatch)

    page_of(client, "/inventory/?refresh=1")  # a profile from Bungie: its tiles built again

    assert redis.commands.count("MGET") == 2  # the saved profile's time with the alerts, then the definitions
    assert "GET" not in redis.commands  # not the saved profile itself (~1 MB): only its minted time
    redis.commands.clear()
    page_of(client, "/inventory/?refresh=1")
    assert redis.commands.count("MGET") == 1  # the summaries are now in this process's memory


# The tile as a template (what {% item_tiles %} replaced for speed): the same markup.
# DIM's tile: no name under the icon (it is the title and aria-label), the element a dot,
# masterwork/crafted/locked as badges, and the quick view opened in place with htmx.
TILE_LABEL = (
    '{{ i.name }}{% if i.tier_name %} · {{ i.tier_name }}{% endif %}{% if i.power %} · {{ i.power }}{% elif i.q'
    'uantity > 1 %} · \N{MULTIPLICATION SIGN}{{ i.quantity }}{% endif %}{% if i.masterwork %} · Masterworked{% e'
    'ndif %}{% if i.crafted %} · Crafted{% endif %}{% if i.locked %} · Locked{% endif %}'
)
TILE_TEMPLATE = (
    '<li class="item tier-{{ i.tier|default:\'unknown\' }}{% if not i.known %} unknown{% endif %}{% if i.mas'
    'terwork %} masterwork{% endif %}" data-item="{{ i.key }}"><a href="{% if i.instance_id %}{% url \'inven'
    'tory:item\' i.instance_id %}{% else %}#{% endif %}"{% if i.instance_id %} hx-get="{% url \'inventory:i'
    'tem\' i.instance_id %}quick/" hx-target="#quick-view" hx-swap="innerHTML" hx-push-url="false"{% endif %}'
    ' title="' + TILE_LABEL + '" aria-label="' + TILE_LABEL + '">{% if i.icon %}<img src="{{ i.icon }}" alt'
    '="" width="96" height="96" loading="lazy">{% else %}<span class="no-icon" aria-hidden="true">?</span>{%'
    ' endif %}{% if i.damage %}<span class="element dmg-{{ i.damage }}" aria-hidden="true"></span>{% endif %'
    '}{% if i.crafted %}<span class="badge crafted" aria-hidden="true"></span>{% endif %}{% if i.locked %}<sp'
    'an class="badge locked" aria-hidden="true"></span>{% endif %}{% if i.power %}<span class="power">{{ i.p'
    'ower }}</span>{% elif i.quantity > 1 %}<span class="power">\N{MULTIPLICATION SIGN}{{ i.quantity }}</sp'
    'an>{% endif %}</a></li>'
)


@pytest.mark.parametrize("changes", [
    {},
    {"known": False, "name": "Unknown item", "icon": "", "tier": "", "tier_name": "", "power": None},
    {"instance_id": None, "key": "2305843009262373961-1234", "quantity": 7, "power": None},
    {"name": 'Ace <of> "Spades" & \'co\'', "tier_name": "L<eg>", "damage": "", "icon": "/a?b=1&c=<2>"},
    {"instance_id": "a b&c", "key": "a b&c"},
    {"power": 0, "quantity": 1},
    {"masterwork": True, "crafted": True, "locked": True, "damage": "strand"},
    {"locked": True, "tier": "rare", "tier_name": "Rare", "damage": "kinetic"},
])
def test_item_tiles_render_what_the_tile_template_did(db, changes):
    from django.template import engines

    from inventory.page import ItemView
    from inventory.templatetags.inventory_tiles import item_tiles

    fields = dict(
        key="6917529000000000001", instance_id="6917529000000000001", item_hash=1234, quantity=1,
        bucket_hash=1498876634, location="vault", owner=None, equipped=False, name="Ace of Spades",
        icon="http://127.0.0.1/common/destiny2_content/icons/a.jpg", tier="exotic", tier_name="Exotic",
        type_name="Hand Cannon", damage="solar", slot="kinetic", kind="weapon", power=1810, known=True,
    )
    item = ItemView(**{**fields, **changes})
    template = engines["django"].from_string("{% for i in items %}" + TILE_TEMPLATE + "\n{% endfor %}")

    assert item_tiles([item, item]) == template.render({"items": [item, item]})


def tile_of(page: str, key: str) -> str:
    match = re.search(rf'<li class="[^"]*" data-item="{key}">.*?</li>', page)
    assert match, f"no tile for {key}"
    return match.group(0)


def test_tiles_show_tier_power_and_the_state_bits_the_fake_gives_each_instance(client, player, synced):
    raw = synced.app.profile_response({102, 201, 205, 300})
    bits = {
        i["itemInstanceId"]: i.get("state", 0)
        for component in ("profileInventory",)
        for i in raw[component]["data"]["items"] if i.get("itemInstanceId")
    }
    for component in ("characterInventories", "characterEquipment"):
        for character in raw[component]["data"].values():
            bits.update({i["itemInstanceId"]: i.get("state", 0) for i in character["items"] if i.get("itemInstanceId")})
    instances = raw["itemComponents"]["instances"]["data"]
    assert any(b & 4 for b in bits.values()) and any(b & 8 for b in bits.values()) and any(b & 1 for b in bits.values())

    page = page_of(client)

    tiers = {6: "exotic", 5: "legendary", 4: "rare", 3: "uncommon", 2: "common"}
    for item in fake_items(synced, instanced=True):
        tile = tile_of(page, item["key"])
        state = bits[item["key"]]
        assert f'class="item tier-{tiers.get(item["tier_type"], "unknown")}' in tile
        assert ("masterwork" in tile.split('"')[1]) == bool(state & 4), tile
        assert ('class="badge crafted"' in tile) == bool(state & 8), tile
        assert ('class="badge locked"' in tile) == bool(state & 1), tile
        power = (instances.get(item["key"], {}).get("primaryStat") or {}).get("value")
        if power:
            assert f'<span class="power">{power}</span>' in tile
        name = escape(synced.app.current.items.item(item["item_hash"])["displayProperties"]["name"])
        assert f'aria-label="{name}' in tile and f'title="{name}' in tile
        assert f'hx-get="/inventory/item/{item["key"]}/quick/" hx-target="#quick-view"' in tile
        assert 'class="name"' not in tile  # DIM shows the name on hover, not under the icon
    assert '<div id="quick-view" aria-live="polite"></div>' in page


def test_the_character_switcher_names_each_character_and_the_vault(client, player, synced):
    page = page_of(client)

    switcher = re.search(r'<nav class="switcher" aria-label="Show">(.*?)</nav>', page, re.S)
    assert switcher
    labels = re.findall(r'<label for="(show-[^"]+)">([A-Za-z]+)</label>', switcher.group(1))
    assert labels == [("show-1", "Titan"), ("show-2", "Hunter"), ("show-3", "Warlock"), ("show-vault", "Vault")]
    assert page.count('type="radio" name="show"') == 4


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    response = client.get("/inventory/?q=is:weapon")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize(
    "query, check",
    [
        ("is:weapon tier:exotic", lambda i: i["item_type"] == 3 and i["tier_type"] == 6),
        ("is:armor", lambda i: i["item_type"] == 2),
        ("-is:weapon", lambda i: i["item_type"] != 3),
    ],
)
def test_the_filter_shows_exactly_the_matching_items(client, player, synced, query, check):
    page = page_of(client, f"/inventory/?q={query}")

    shown = set(re.findall(r'data-item="(\d+)"', page))
    expected = {i["key"] for i in fake_items(synced, instanced=True) if check(i)}
    assert shown == expected


def test_power_filters_and_sorting_work_without_javascript(client, player, synced):
    page = page_of(client, "/inventory/?q=power:>1950&sort=power")

    powers = [int(p) for p in re.findall(r'<span class="power[^"]*">(\d+)</span>', page)]
    assert powers and all(p > 1950 for p in powers)


def test_htmx_filtering_returns_only_the_inventory_body(client, player, synced):
    response = client.get("/inventory/?q=is:weapon", HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert body.lstrip().startswith('<div id="inventory-body">')
    assert "<html" not in body


def test_unknown_filter_words_are_reported_not_fatal(client, player, synced):
    page = page_of(client, "/inventory/?q=is:shiny%20tier:mythic%20power:>>")

    assert "Ignored in the filter" in page


def test_an_item_page_shows_stats_perks_and_actions(client, player, synced):
    item = vault_item(synced, item_type=3)

    page = page_of(client, f"/inventory/item/{item['key']}/")

    assert "Move to Titan" in page and "Equip on Hunter" in page
    assert "<h2>Perks</h2>" in page and "<h2>Stats</h2>" in page  # a weapon has both


def test_an_item_page_offers_the_moves_that_fit_where_the_item_is(client, player, synced):
    carried = next(i for i in fake_items(synced, place="inventory", character_id=TITAN, instanced=True)
                   if i["item_type"] == 3)
    equipped = next(iter(fake_items(synced, place="equipped", instanced=True)))
    held = next(iter(fake_items(synced, place="postmaster", instanced=True)))

    on_titan = page_of(client, f"/inventory/item/{carried['key']}/")
    worn = page_of(client, f"/inventory/item/{equipped['key']}/")
    in_postmaster = page_of(client, f"/inventory/item/{held['key']}/")

    assert "Move to vault" in on_titan and "Move to Hunter" in on_titan and "Move to Warlock" in on_titan
    assert "Move to Titan" not in on_titan and "Equip on Titan" in on_titan
    # An equipped item moves too (DVR equips another in its place first), and is not
    # offered to be equipped where it already is.
    wearer = {TITAN: "Titan", HUNTER: "Hunter", WARLOCK: "Warlock"}[equipped["character_id"]]
    assert "Move to vault" in worn and f"Equip on {wearer}" not in worn and f"Move to {wearer}" not in worn
    assert "Pull from postmaster" not in worn
    assert "Pull from postmaster" in in_postmaster
    assert 'name="to"' not in in_postmaster and 'name="character"' not in in_postmaster


def test_someone_elses_item_page_is_a_404(client, player, synced):
    assert client.get("/inventory/item/6917529999999999999/").status_code == 404


# --- actions --------------------------------------------------------------------------------------
def test_moving_an_item_from_the_vault_to_a_character_moves_it_at_bungie_and_on_the_page(client, player, synced):
    item = vault_item(synced, item_type=3, class_type=3) if fake_items(synced, place="vault", class_type=3) \
        else vault_item(synced, item_type=3)

    response = client.post("/inventory/move/", {"item": item["key"], "to": TITAN}, follow=True)

    moved = next(i for i in fake_items(synced) if i["key"] == item["key"])
    assert (moved["place"], moved["character_id"]) == ("inventory", TITAN)
    assert f"Moved {name_of(item)} to your Titan." in said(response)
    page = page_of(client)
    titan = page.split(f'id="char-{TITAN}"')[1].split('id="char-')[0]
    assert f'data-item="{item["key"]}"' in titan


def test_equipping_moves_the_item_to_the_character_first(client, player, synced):
    item = vault_item(synced, item_type=3, tier_type=5)

    response = client.post("/inventory/equip/", {"item": item["key"], "character": HUNTER}, follow=True)

    assert f"Equipped {name_of(item)} on your Hunter." in said(response)
    equipped = next(i for i in fake_items(synced) if i["key"] == item["key"])
    assert (equipped["place"], equipped["character_id"]) == ("equipped", HUNTER)


def test_moving_between_characters_goes_through_the_vault(client, player, synced):
    item = next(i for i in fake_items(synced, place="inventory", character_id=TITAN, instanced=True))

    response = client.post("/inventory/move/", {"item": item["key"], "to": WARLOCK}, follow=True)

    assert f"Moved {name_of(item)} to your Warlock." in said(response)
    moved = next(i for i in fake_items(synced) if i["key"] == item["key"])
    assert (moved["place"], moved["character_id"]) == ("inventory", WARLOCK)
    assert synced.app.stats()["counts"].get("transferitem", 0) == 2


def test_when_the_second_half_of_a_character_move_fails_the_item_is_safe_in_the_vault(client, player, synced):
    item = next(i for i in fake_items(synced, place="inventory", character_id=TITAN, instanced=True))
    # Fill the Warlock's bucket for that item so Bungie refuses the second transfer.
    while len(fake_items(synced, place="inventory", character_id=WARLOCK, bucket_hash=item["bucket_hash"])) < 9:
        filler = next(i for i in fake_items(synced, place="vault", bucket_hash=item["bucket_hash"], instanced=True))
        synced.app.player.transfer(item_hash=filler["item_hash"], item_id=filler["key"], character_id=WARLOCK,
                                   to_vault=False)

    response = client.post("/inventory/move/", {"item": item["key"], "to": WARLOCK}, follow=True)

    body = said(response)
    assert f"{name_of(item)} is in the vault: the move to your Warlock failed." in body and "no room" in body
    assert next(i for i in fake_items(synced) if i["key"] == item["key"])["place"] == "vault"


def test_pulling_from_the_postmaster(client, player, synced):
    item = next(iter(fake_items(synced, place="postmaster", instanced=True)), None)
    if item is None:
        pytest.fail("the fake's player should have postmaster items")

    response = client.post("/inventory/pull/", {"item": item["key"]}, follow=True)

    owner = {TITAN: "Titan", HUNTER: "Hunter", WARLOCK: "Warlock"}[item["character_id"]]
    assert f"Pulled {name_of(item)} from the postmaster to your {owner}." in said(response)
    assert next(i for i in fake_items(synced) if i["key"] == item["key"])["place"] == "inventory"


def test_a_stranger_item_id_is_refused_and_nothing_moves(client, player, synced):
    before = synced.app.player_state()["items"]

    response = client.post("/inventory/move/", {"item": "6917529999999999999", "to": "vault"}, follow=True)

    assert "not in your inventory" in response.content.decode()
    assert synced.app.player_state()["items"] == before
    assert synced.app.stats()["counts"].get("transferitem", 0) == 0


def test_a_character_that_is_not_yours_is_refused(client, player, synced):
    item = vault_item(synced)

    response = client.post("/inventory/move/", {"item": item["key"], "to": "2305843009999999999"}, follow=True)

    assert "not yours" in response.content.decode()


def test_actions_need_csrf(player, synced, bungie):
    client = Client(enforce_csrf_checks=True)
    client.force_login(player.user)
    item = vault_item(synced)

    response = client.post("/inventory/move/", {"item": item["key"], "to": TITAN})

    assert response.status_code == 403
    assert next(i for i in fake_items(synced) if i["key"] == item["key"])["place"] == "vault"


@pytest.mark.parametrize(
    "code, words",
    [
        (1642, "no room"),
        (1641, "one exotic"),
        (1648, "only one is allowed"),
        (1671, "be done here"),
        (1634, "social space"),
    ],
)
def test_bungies_refusals_are_said_in_words_a_player_understands(client, player, synced, code, words):
    item = vault_item(synced)
    synced.app.misbehave("refuse", on="actions", count=1, code=code)

    response = client.post("/inventory/move/", {"item": item["key"], "to": TITAN}, follow=True)

    assert words in response.content.decode()
    assert next(i for i in fake_items(synced) if i["key"] == item["key"])["place"] == "vault"


def test_no_room_on_the_character_is_explained(client, player, synced):
    item = vault_item(synced, item_type=3)
    while len(fake_items(synced, place="inventory", character_id=TITAN, bucket_hash=item["bucket_hash"])) < 9:
        filler = next(i for i in fake_items(synced, place="vault", bucket_hash=item["bucket_hash"], instanced=True)
                      if i["key"] != item["key"])
        synced.app.player.transfer(item_hash=filler["item_hash"], item_id=filler["key"], character_id=TITAN,
                                   to_vault=False)

    response = client.post("/inventory/move/", {"item": item["key"], "to": TITAN}, follow=True)

    assert "There is no room for that item there" in response.content.decode()


def test_an_item_already_moved_elsewhere_is_explained_and_refreshed(client, player, synced):
    item = vault_item(synced)
    page_of(client)  # DVR saves the profile with the item in the vault
    synced.app.player.transfer(item_hash=item["item_hash"], item_id=item["key"], character_id=TITAN, to_vault=False)

    response = client.post("/inventory/move/", {"item": item["key"], "to": HUNTER}, follow=True)

    assert response.status_code == 200
    assert "no longer where it was" in said(response)
    moved = next(i for i in fake_items(synced) if i["key"] == item["key"])
    assert (moved["place"], moved["character_id"]) == ("inventory", TITAN)  # where the player put it


def test_throttling_during_a_transfer_is_waited_out_for_bungies_throttle_seconds(client, player, synced, caplog):
    item = vault_item(synced)
    synced.app.misbehave("throttle", on="actions", count=1, seconds=1)  # ThrottleSeconds: 1

    with caplog.at_level(logging.WARNING, logger="dvr.lib.retry"):
        response = client.post("/inventory/move/", {"item": item["key"], "to": TITAN}, follow=True)

    assert f"Moved {name_of(item)} to your Titan." in said(response)
    assert synced.app.stats()["counts"]["actions"] == 2
    waits = [r.getMessage() for r in caplog.records if r.name == "dvr.lib.retry"]
    assert len(waits) == 1 and "wait=1.00s" in waits[0]  # Bungie's hint, not the 0.5 s backoff


def test_the_game_server_throttling_a_transfer_with_http_200_is_waited_out(client, player, synced):
    item = vault_item(synced)
    # ErrorCode 1672 (DestinyThrottledByGameServer) in an HTTP 200 answer, as Bungie sends it.
    synced.app.misbehave("refuse", on="actions", count=1, code=1672)

    response = client.post("/inventory/move/", {"item": item["key"], "to": TITAN}, follow=True)

    assert f"Moved {name_of(item)} to your Titan." in said(response)
    assert synced.app.stats()["counts"]["actions"] == 2


def test_endless_throttling_is_said_after_backing_off(client, player, synced):
    item = vault_item(synced)
    synced.app.misbehave("throttle", on="actions", seconds=1)

    response = client.post("/inventory/move/", {"item": item["key"], "to": TITAN}, follow=True)

    assert "limiting how fast items can move" in response.content.decode()
    assert next(i for i in fake_items(synced) if i["key"] == item["key"])["place"] == "vault"


def test_sending_all_matching_items_to_the_vault(client, player, synced):
    carried = [i for i in fake_items(synced, place="inventory", instanced=True) if i["item_type"] == 3]
    assert carried

    response = client.post("/inventory/vault-matching/", {"q": "is:weapon"}, follow=True)

    body = response.content.decode()
    assert f"Sent {min(len(carried), 50)} item" in body
    left = [i for i in fake_items(synced, place="inventory", instanced=True) if i["item_type"] == 3]
    assert len(left) == max(0, len(carried) - 50)


def test_sending_matching_items_to_the_vault_moves_at_most_fifty_and_never_an_equipped_one(client, player, synced):
    weapon = vault_item(synced, item_type=3)
    carried = [i for i in fake_items(synced, place="inventory", instanced=True) if i["item_type"] == 3]
    for _ in range(53 - len(carried)):
        synced.app.add_item(weapon["item_hash"], place="inventory", character_id=TITAN)
    equipped = {i["key"] for i in fake_items(synced, place="equipped")}
    actions = synced.app.stats()["counts"].get("actions", 0)

    response = client.post("/inventory/vault-matching/", {"q": "is:weapon"}, follow=True)

    assert "Sent 50 items to the vault. 3 more match: run it again." in said(response)
    assert synced.app.stats()["counts"]["actions"] == actions + 50
    assert {i["key"] for i in fake_items(synced, place="equipped")} == equipped
    assert len([i for i in fake_items(synced, place="inventory", instanced=True) if i["item_type"] == 3]) == 3


def test_sending_matching_items_to_the_vault_stops_at_the_first_move_bungie_refuses_for_maintenance(
    client, player, synced
):
    synced.app.misbehave("maintenance", on="actions")

    response = client.post("/inventory/vault-matching/", {"q": "is:weapon"}, follow=True)

    assert "Sent 0 items to the vault. 1 could not move: Bungie is down for maintenance" in response.content.decode()
    assert synced.app.stats()["counts"]["actions"] == 1


def test_sending_everything_to_the_vault_needs_a_filter(client, player, synced):
    response = client.post("/inventory/vault-matching/", {"q": ""}, follow=True)

    assert "Type a filter first" in response.content.decode()


# --- the world moving -------------------------------------------------------------------------------
def test_the_page_names_the_manifest_version_its_tiles_were_read_at(client, player, synced):
    from inventory.filters import parse_query
    from inventory.page import build_page, built_items
    from inventory.snapshots import snapshot_load

    page_of(client)
    read_at = ManifestState.get().active
    profile = snapshot_load(account=player).profile
    built = built_items(account=player, profile=profile, seq=read_at.seq)  # a process still reading it
    base = synced.app.current.items
    synced.app.publish(items=ItemSpec(count=base.count, seed=base.seed, changed=0.02), version="newer")
    assert manifest_sync().outcome == "live"  # an activation meanwhile

    page = build_page(account=player, built=built, query=parse_query(""))

    assert page.manifest_version == read_at.version  # never "newer": its tiles are not of it
    forget_active_seq()
    assert "manifest newer" in html.unescape(page_of(client, "/inventory/?refresh=1"))


def test_items_from_a_manifest_not_synced_yet_render_as_unknown_then_by_name(client, player, synced):
    spec = ItemSpec(count=300, added=0.02)
    synced.app.publish(items=spec)
    new_hash = sorted(spec.added_hashes())[0]
    synced.app.add_item(new_hash, place="vault")

    before = client.get("/inventory/")

    assert before.status_code == 200
    assert "Unknown item" in before.content.decode()
    assert "manifest yet: Bungie has published new items" in before.content.decode()

    assert manifest_sync().outcome == "live"
    forget_active_seq()
    after = page_of(client)
    assert escape(spec.item(new_hash)["displayProperties"]["name"]) in after
    assert "Unknown item" not in after


def test_the_items_changed_in_the_latest_manifest_are_listed(client, player, synced):
    page_of(client)  # the previous version's summaries in the cache
    spec = ItemSpec(count=300, changed=0.2)
    synced.app.publish(items=spec)
    assert manifest_sync().outcome == "live"
    forget_active_seq()
    owned = {i["item_hash"] for i in fake_items(synced)}
    mine = owned & spec.changed_hashes()
    assert mine and owned - mine

    page = page_of(client)

    panel = re.search(r'<details class="card changed-panel">(.*?)</details>', page, re.S)
    assert panel, "no changed-items panel"
    listed = {int(h) for h in re.findall(r"/DestinyInventoryItemDefinition/(\d+)/", panel.group(1))}
    assert listed and listed <= mine


def test_an_unknown_item_queues_a_manifest_check_once(client, player, synced):
    from django_q.brokers import get_broker

    broker = get_broker()
    broker.purge_queue()
    spec = ItemSpec(count=300, added=0.02)
    synced.app.publish(items=spec)
    synced.app.add_item(sorted(spec.added_hashes())[0], place="vault")

    page_of(client)
    page_of(client)

    assert broker.queue_size() == 1
    broker.purge_queue()


def test_maintenance_during_a_page_view_shows_the_last_profile_with_its_age(client, player, synced):
    page_of(client)
    synced.app.misbehave("maintenance", on="profile")

    page = page_of(client, "/inventory/?refresh=1")

    assert "Bungie is down for maintenance" in page
    assert "last profile DVR saw" in page
    assert 'id="vault-title"' in page


def test_maintenance_with_no_saved_profile_is_a_clear_503(client, player, synced):
    from django.core.cache import cache

    cache.clear()
    synced.app.misbehave("maintenance", on="profile")

    response = client.get("/inventory/")

    assert response.status_code == 503
    assert "can't be shown right now" in response.content.decode()


def test_an_expired_access_token_is_refreshed(client, player, synced):
    synced.app.expire_tokens()

    page_of(client)

    assert synced.app.stats()["counts"].get("token", 0) >= 2  # the login, then the refresh


def test_an_expired_refresh_token_sends_the_player_to_log_in_again(client, player, synced):
    synced.app.expire_tokens(refresh=True)

    response = client.get("/inventory/?q=is:weapon")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_an_empty_vault_renders(client, db, settings):
    from tests.fakebungie.server import FakeBungieServer

    with FakeBungieServer(vault_items=0) as fake:
        settings.BUNGIE_ROOT_URL = fake.url
        settings.BUNGIE_API_KEY = "fake-api-key"
        settings.BUNGIE_CLIENT_ID = "12345"
        settings.BUNGIE_CLIENT_SECRET = "fake-client-secret"
        manifest_sync()
        log_in(client, fake)

        page = page_of(client)

    assert "The vault is empty." in page


# --- saying what happened, and moves a player expects --------------------------------------------
def fake_item(bungie, key: str) -> dict:
    return next(i for i in fake_items(bungie) if i["key"] == key)


def test_equip_is_offered_only_where_the_class_fits_and_refused_before_bungie_is_asked(client, player, synced):
    armor = next(i for i in fake_items(synced, place="vault", instanced=True, item_type=2, class_type=0))

    page = page_of(client, f"/inventory/item/{armor['key']}/")
    before = synced.app.stats()["counts"].get("actions", 0)
    response = client.post("/inventory/equip/", {"item": armor["key"], "character": HUNTER}, follow=True)

    assert "Equip on Titan" in page and "Equip on Hunter" not in page and "Equip on Warlock" not in page
    assert "Move to Hunter" in page
    assert f"{name_of(armor)} can't be equipped by your Hunter: it is for another class." in said(response)
    assert synced.app.stats()["counts"].get("actions", 0) == before
    assert fake_item(synced, armor["key"])["place"] == "vault"


def test_moving_an_equipped_item_equips_another_from_that_slot_in_its_place_first(client, player, synced):
    worn = next(i for i in fake_items(synced, place="equipped", character_id=TITAN, instanced=True, item_type=3))
    spares = {i["key"] for i in fake_items(synced, place="inventory", character_id=TITAN, instanced=True,
                                           bucket_hash=worn["bucket_hash"])}
    assert spares, "the fake's Titan carries other weapons for that slot"

    response = client.post("/inventory/move/", {"item": worn["key"], "to": "vault"}, follow=True)

    assert f"in its place, and moved {name_of(worn)} to the vault." in said(response)
    assert fake_item(synced, worn["key"])["place"] == "vault"
    now = fake_items(synced, place="equipped", character_id=TITAN, bucket_hash=worn["bucket_hash"])
    assert len(now) == 1 and now[0]["key"] in spares


def test_when_equipping_fails_after_the_move_the_player_is_told_where_the_item_now_is(client, player, synced):
    item = vault_item(synced, item_type=3, tier_type=6)
    worn = next(i for i in synced.app.player.items.values()
                if i.place == "equipped" and i.character_id == HUNTER and i.item_type == 3
                and i.bucket_hash != item["bucket_hash"])
    worn.tier_type = 6  # the Hunter already wears an exotic weapon in another slot: Bungie says 1641

    response = client.post("/inventory/equip/", {"item": item["key"], "character": HUNTER}, follow=True)

    assert (f"{name_of(item)} is now on your Hunter, but it could not be equipped: Only one exotic weapon"
            in said(response))
    assert (fake_item(synced, item["key"])["place"], fake_item(synced, item["key"])["character_id"]) == (
        "inventory", HUNTER
    )


def test_a_filter_typed_on_the_page_reuses_the_profile_bungie_gave_seconds_ago(client, player, synced, settings):
    settings.PROFILE_REUSE_SECONDS = 30
    page_of(client)
    asked = profile_calls(synced)

    for query in ("is:weapon", "is:armor", "tier:exotic"):
        assert client.get("/inventory/", {"q": query}, HTTP_HX_REQUEST="true").status_code == 200

    assert profile_calls(synced) == asked
    page_of(client, "/inventory/?refresh=1")  # "refresh from Bungie" asks again
    assert profile_calls(synced) == asked + 1


def test_after_a_move_bungie_gave_no_answer_to_the_next_page_asks_bungie_again(client, player, synced, settings):
    settings.PROFILE_REUSE_SECONDS = 30
    item = vault_item(synced)
    page_of(client)
    synced.app.misbehave("error500", on="actions", count=1)  # Bungie may or may not have moved it
    moved = client.post("/inventory/move/", {"item": item["key"], "to": TITAN})  # plain form: a redirect
    asked = profile_calls(synced)

    page = page_of(client, moved["Location"])  # the vault it sends back to

    assert "tell whether that worked" in html.unescape(page)
    assert profile_calls(synced) == asked + 1  # Bungie asked, not the saved profile, which may be wrong now


def test_with_no_reuse_window_every_filter_asks_bungie(client, player, synced, settings):
    settings.PROFILE_REUSE_SECONDS = 0
    page_of(client)
    asked = profile_calls(synced)

    for query in ("is:weapon", "is:armor"):
        client.get("/inventory/", {"q": query}, HTTP_HX_REQUEST="true")

    assert profile_calls(synced) == asked + 2


def test_an_item_whose_definition_bungie_removed_is_said_to_be_removed_not_new(client, player, synced):
    base = synced.app.current.items
    spec = ItemSpec(count=base.count, seed=base.seed, removed=0.02)
    published = synced.app.publish(items=spec)
    gone = sorted(spec.removed_hashes())[0]
    key = synced.app.add_item(gone, place="vault")
    assert manifest_sync().outcome == "live"
    forget_active_seq()

    page = html.unescape(page_of(client))
    item_page = html.unescape(page_of(client, f"/inventory/item/{key}/"))

    removed = sum(1 for i in fake_items(synced) if i["item_hash"] in spec.removed_hashes())
    assert removed > 1
    assert (f"{removed} items no longer in the manifest: Bungie removed their definitions in {published.version}, "
            "so DVR can't name them.") in page
    assert "not in DVR's manifest yet" not in page
    assert f"Bungie removed this item's definition from the manifest ({published.version})" in item_page


def test_the_page_filters_by_the_manifest_version_an_items_definition_came_in(client, player, synced):
    base = synced.app.current.items
    spec = ItemSpec(count=base.count, seed=base.seed, changed=0.3)
    published = synced.app.publish(items=spec)
    assert manifest_sync().outcome == "live"
    forget_active_seq()
    changed = {i["key"] for i in fake_items(synced, instanced=True) if i["item_hash"] in spec.changed_hashes()}
    assert changed

    latest = page_of(client, "/inventory/?q=changed:latest")
    by_version = page_of(client, f"/inventory/?q=changed:{published.version}")
    unchanged = page_of(client, "/inventory/?q=-changed:latest")

    def instances(page: str) -> set[str]:
        return set(re.findall(r'data-item="(\d+)"', page))

    everything = instances(page_of(client))
    assert instances(latest) == instances(by_version) == changed & everything
    assert instances(unchanged) == everything - changed


def test_the_page_filters_by_each_rolls_perks_and_stats(client, player, synced):
    truth = synced.app.profile_response({300, 304, 305, 310})["itemComponents"]
    sockets, offered, stats = (truth[k]["data"] for k in ("sockets", "reusablePlugs", "stats"))
    plug_names = definitions("DestinyInventoryItemDefinition", [
        s["plugHash"] for entry in sockets.values() for s in entry["sockets"] if s.get("plugHash")
    ] + [p["plugItemHash"] for entry in offered.values() for plugs in entry["plugs"].values() for p in plugs])

    def perks_of(key: str) -> set[str]:
        hashes = [s["plugHash"] for s in sockets.get(key, {}).get("sockets", []) if s.get("isVisible")]
        hashes += [p["plugItemHash"] for plugs in offered.get(key, {}).get("plugs", {}).values() for p in plugs]
        return {plug_names[h]["displayProperties"]["name"] for h in hashes if h in plug_names}

    weapon = next(i for i in fake_items(synced, item_type=3, instanced=True) if i["key"] in stats)
    perk = sorted(perks_of(weapon["key"]) - {""})[0]
    impact = stats[weapon["key"]]["stats"]["4043523819"]["value"]  # Impact

    by_perk = set(re.findall(r'data-item="(\d+)"', page_of(client, f'/inventory/?q=exactperk:"{perk}"')))
    by_stat = set(re.findall(r'data-item="(\d+)"', page_of(client, f"/inventory/?q=stat:impact:>={impact}")))

    assert weapon["key"] in by_perk and all(perk in perks_of(key) for key in by_perk)
    assert weapon["key"] in by_stat
    assert all(stats[key]["stats"].get("4043523819", {}).get("value", -1) >= impact for key in by_stat)


def test_a_filter_it_cannot_read_says_where_inline_and_matches_nothing(client, player, synced):
    page = page_of(client, "/inventory/?q=is:weapon%20(is:arc")

    assert re.findall(r'filter-problem[^>]*>(.*?)</p>', page) == [
        "The filter can't be read here: <code>is:weapon <mark>(</mark>is:arc</code> — this ( is never closed. "
        "Nothing matches until it is fixed."
    ]
    assert 'class="message error filter-problem"' in page
    assert not re.findall(r'data-item="(\d+)"', page)


def test_is_randomroll_finds_the_items_whose_columns_offer_a_choice(client, player, synced):
    offered = synced.app.profile_response({310})["itemComponents"]["reusablePlugs"]["data"]
    random = {key for key, entry in offered.items() if any(len(p) > 1 for p in entry["plugs"].values())}

    shown = set(re.findall(r'data-item="(\d+)"', page_of(client, "/inventory/?q=is:randomroll")))

    assert random and shown and shown <= random
