"""A player in Chromium tags an item from the vault's quick view, then finds it with tag:."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support import log_in_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def test_a_player_tags_an_item_in_the_quick_view_and_finds_it_with_tag(synced_site, bungie, page):
    item = next(i for i in bungie.app.player_state()["items"]
                if i["place"] == "vault" and i["instanced"] and i["item_type"] == 3)
    log_in_in_browser(page, synced_site)

    page.locator(f'#inventory-body [data-item="{item["key"]}"] a').click()
    quick = page.locator("#quick-view")
    expect(quick.locator(".quick-view-card")).to_be_visible()
    quick.get_by_label("Tag").select_option("junk")
    quick.get_by_label("Notes").fill("shard it after the raid")
    quick.get_by_role("button", name="Save tag and notes").click()
    expect(quick.get_by_text("Saved: tagged junk.")).to_be_visible()
    expect(page).to_have_url(re.compile(re.escape(synced_site) + "/inventory/$"))  # still the vault, in place
    # The tile is redrawn in place with its badge and says it.
    tile = page.locator(f'#inventory-body [data-item="{item["key"]}"]')
    expect(tile.locator(".badge.tag-junk")).to_have_count(1)
    expect(tile.locator("a")).to_have_attribute("aria-label", re.compile(r"Tagged junk · Has notes"))

    page.get_by_label("Filter").fill("tag:junk")
    expect(page).to_have_url(re.compile(r"q=tag%3Ajunk"))
    shown = page.locator("#inventory-body .item")
    expect(shown).to_have_count(1)
    expect(shown.first).to_have_attribute("data-item", item["key"])
    expect(shown.first.locator(".badge.tag-junk")).to_have_count(1)

    page.get_by_label("Filter").fill('notes:"after the raid"')
    expect(page).to_have_url(re.compile(r"q=notes%3A"))
    expect(shown).to_have_count(1)
