"""A player in Chromium: log in, see the three characters and the vault, filter, move an
item from the vault to a character, equip it, and move an item between characters."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support import log_in_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

TITAN, HUNTER, WARLOCK = "2305843009262373961", "2305843009262373962", "2305843009262373963"


def fake_item(bungie, key: str) -> dict:
    return next(i for i in bungie.app.player_state()["items"] if i["key"] == key)


def test_a_player_sees_filters_moves_and_equips(synced_site, bungie, page):
    log_in_in_browser(page, synced_site)
    for name in ("Titan", "Hunter", "Warlock"):
        expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Vault")).to_be_visible()

    # Filter in place (htmx) to exotic weapons.
    page.get_by_label("Filter").fill("is:weapon tier:exotic")
    expect(page).to_have_url(re.compile(r"q=is%3Aweapon"))
    shown = page.locator("#inventory-body .item")
    expect(shown.first).to_be_visible()
    exotic_weapons = {
        i["key"] for i in bungie.app.player_state()["items"] if i["item_type"] == 3 and i["tier_type"] == 6
    }
    expect(shown).to_have_count(len(exotic_weapons))

    # A legendary weapon from the vault goes to the Hunter.
    item = next(i for i in bungie.app.player_state()["items"]
                if i["place"] == "vault" and i["item_type"] == 3 and i["tier_type"] == 5)
    page.goto(f"{synced_site}/inventory/item/{item['key']}/")
    page.get_by_role("button", name="Move to Hunter").click()
    expect(page.get_by_text(re.compile(r"^Moved .+ to your Hunter\.$"))).to_be_visible()
    assert (fake_item(bungie, item["key"])["place"], fake_item(bungie, item["key"])["character_id"]) == (
        "inventory", HUNTER
    )
    hunter = page.locator("section.character", has=page.get_by_role("heading", name="Hunter", exact=True))
    expect(hunter.locator(f'[data-item="{item["key"]}"]')).to_be_visible()

    # Equip it.
    page.goto(f"{synced_site}/inventory/item/{item['key']}/")
    page.get_by_role("button", name="Equip on Hunter").click()
    expect(page.get_by_text(re.compile(r"^Equipped .+ on your Hunter\.$"))).to_be_visible()
    assert fake_item(bungie, item["key"])["place"] == "equipped"

    # Move something the Titan carries to the Warlock (through the vault).
    carried = next(i for i in bungie.app.player_state()["items"]
                   if i["place"] == "inventory" and i["character_id"] == TITAN and i["instanced"])
    page.goto(f"{synced_site}/inventory/item/{carried['key']}/")
    page.get_by_role("button", name="Move to Warlock").click()
    expect(page.get_by_text(re.compile(r"^Moved .+ to your Warlock\.$"))).to_be_visible()
    assert (fake_item(bungie, carried["key"])["place"], fake_item(bungie, carried["key"])["character_id"]) == (
        "inventory", WARLOCK
    )
    warlock = page.locator("section.character", has=page.get_by_role("heading", name="Warlock", exact=True))
    expect(warlock.locator(f'[data-item="{carried["key"]}"]')).to_be_visible()


def test_the_page_is_usable_at_phone_width(synced_site, bungie, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        log_in_in_browser(page, synced_site)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"the page scrolls sideways at phone width ({width}px)"
        for image in page.locator(".item img").all()[:20]:
            assert image.get_attribute("alt") is not None
    finally:
        context.close()


def test_a_player_filters_by_perk_and_stat_then_moves_from_the_quick_view_in_place(synced_site, bungie, page):
    log_in_in_browser(page, synced_site)
    # Every instanced weapon of the Titan's inventory carries some stat; take one it has.
    carried = next(i for i in bungie.app.player_state()["items"]
                   if i["place"] == "inventory" and i["character_id"] == TITAN and i["instanced"]
                   and i["item_type"] == 3)

    query = f'(id:{carried["key"]} or perk:"no such perk at all") stat:impact:>=0'
    page.get_by_label("Filter").fill(query)
    tile = page.locator(f'#inventory-body [data-item="{carried["key"]}"]')
    expect(tile).to_be_visible()
    expect(page.locator("#inventory-body .item")).to_have_count(1)

    # The tile opens the quick view in place, with the roll; moving from it keeps the filter.
    tile.locator("a").click()
    quick = page.locator("#quick-view")
    expect(quick.get_by_role("heading", level=2)).to_be_visible()
    expect(quick.locator(".perk-column").first).to_be_visible()
    quick.get_by_role("button", name="Move to vault").click()
    expect(page.get_by_text(re.compile(r"^Moved .+ to the vault\.$"))).to_be_visible()
    expect(page.locator("#quick-view")).to_be_empty()
    expect(page.get_by_label("Filter")).to_have_value(query)
    expect(page.locator(f'section.vault [data-item="{carried["key"]}"]')).to_be_visible()
    assert fake_item(bungie, carried["key"])["place"] == "vault"
    page.screenshot(path="/tmp/shots-lead-quick-move.png", full_page=False)
