"""A player logs in with Bungie in a real browser (Debian's Chromium), approving on the
fake Bungie.net's authorize page, and logs out again."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dvr.accounts.models import BungieAccount, BungieToken

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

BUNGIE_NAME = "Guardian#1234"


def test_a_player_logs_in_with_bungie_sees_their_name_and_logs_out(site, bungie, page):
    page.goto(site + "/manifest/")

    page.get_by_role("link", name="Log in with Bungie").click()
    expect(page).to_have_url(re.compile("^" + re.escape(bungie.url) + "/en/OAuth/Authorize"))
    expect(page.locator(".player-name")).to_have_text(BUNGIE_NAME)  # the fake's own page
    page.get_by_role("button", name="Approve").click()

    expect(page).to_have_url(site + "/manifest/")  # back where they started
    expect(page.locator("header .player-name")).to_have_text(BUNGIE_NAME)
    assert BungieAccount.objects.get().unique_name == BUNGIE_NAME
    page.get_by_role("link", name="Account").click()
    expect(page.locator(".bungie-name")).to_have_text(BUNGIE_NAME)
    expect(page.get_by_role("cell", name="Steam")).to_be_visible()
    assert BungieToken.objects.filter(account__unique_name=BUNGIE_NAME).exists()

    page.get_by_role("button", name="Log out").click()

    expect(page).to_have_url(site + "/")
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    expect(page.get_by_role("link", name="Log in with Bungie")).to_be_visible()
    expect(page.locator("header .player-name")).to_have_count(0)


def test_a_player_who_cancels_on_bungie_reads_why_and_can_try_again(site, bungie, page):
    page.goto(site + "/")
    page.get_by_role("link", name="Log in with Bungie").click()

    page.get_by_role("link", name="Cancel").click()

    expect(page.get_by_role("heading", name="You did not approve DVR")).to_be_visible()
    page.get_by_role("link", name="Log in with Bungie again").click()
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("header .player-name")).to_have_text(BUNGIE_NAME)
