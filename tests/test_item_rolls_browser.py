"""A player in Chromium reads an item's roll, its quick view and a comparison (screenshots
for a person to look at in /tmp/shots-rolls/)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.fakebungie.plugs import definition
from tests.support import log_in_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

SHOTS = Path("/tmp/shots-rolls")


def test_a_player_reads_a_roll_its_quick_view_and_a_comparison(synced_site, bungie, page):
    SHOTS.mkdir(exist_ok=True)
    spec = bungie.app.current.items
    by_type: dict[str, list[str]] = defaultdict(list)
    for item in bungie.app.player_state()["items"]:
        if item["instanced"] and item["item_type"] == 3 and item["tier_type"] == 5:
            by_type[definition(spec, item["item_hash"])["itemTypeDisplayName"]].append(item["key"])
    first, second = next(keys[:2] for keys in by_type.values() if len(keys) >= 2)
    log_in_in_browser(page, synced_site)

    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{synced_site}/inventory/item/{first}/")
        expect(page.get_by_role("heading", name="Weapon Perks")).to_be_visible()
        expect(page.locator(".plug.inserted").first).to_be_visible()
        expect(page.locator(".stat-line svg.stat-bar").first).to_be_visible()
        page.locator(".plug.alternative").first.focus()  # a tap shows the perk's description
        page.screenshot(path=str(SHOTS / f"item-{width}.png"), full_page=True)

        page.goto(f"{synced_site}/inventory/item/{first}/quick/")
        expect(page.locator(".plug.inserted").first).to_be_visible()
        page.screenshot(path=str(SHOTS / f"quick-{width}.png"), full_page=True)

        page.goto(f"{synced_site}/inventory/compare/?items={first},{second}")
        expect(page.get_by_role("heading", name="Compare:")).to_be_visible()
        expect(page.locator(".compare-item")).to_have_count(2)
        page.screenshot(path=str(SHOTS / f"compare-{width}.png"), full_page=True)

    # The partial as htmx swaps it into the vault page's panel when the tile is clicked.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{synced_site}/inventory/")
    page.locator(f'#inventory-body [data-item="{first}"] a').click()
    expect(page.locator("#quick-view .quick-view-card")).to_be_visible()
    page.locator("#quick-view").screenshot(path=str(SHOTS / "quick-panel-1280.png"))
