"""A player in Chromium applies a loadout and watches its progress page fill in place."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from dvr.accounts.models import BungieAccount
from inventory.loadout_apply import loadout_apply_run
from inventory.loadouts import Chosen, loadout_create
from inventory.models import LoadoutApply
from tests.support import fake_items, log_in_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

HUNTER = "2305843009262373962"


def test_a_player_applies_a_loadout_and_watches_the_progress(synced_site, bungie, page):
    log_in_in_browser(page, synced_site)
    items = fake_items(bungie, place="vault", instanced=True, item_type=3, tier_type=5)[:3]
    loadout = loadout_create(account=BungieAccount.objects.get(), name="Watch me", class_type=3, items=[
        Chosen(i["key"], i["item_hash"], f"item {n}", equip=n == 0) for n, i in enumerate(items)])

    page.goto(f"{synced_site}/inventory/loadouts/")
    page.get_by_role("link", name="Watch me").click()
    page.get_by_role("button", name="Apply to Hunter").click()
    expect(page).to_have_url(re.compile(r"/inventory/loadouts/runs/\d+/$"))
    progress = page.locator("#loadout-run")
    expect(progress).to_have_attribute("data-status", "queued")
    expect(progress).to_have_attribute("hx-trigger", "every 1s")
    url = page.url

    # What the cluster does: run the queued apply (here, beside the browser).
    run = LoadoutApply.objects.get(loadout=loadout)

    def cluster() -> None:
        try:
            loadout_apply_run(run.pk)
        finally:
            connection.close()

    worker = threading.Thread(target=cluster)
    worker.start()
    expect(progress).to_have_attribute("data-status", "done", timeout=60_000)
    worker.join(60)
    assert page.url == url  # filled in place, no reload
    expect(progress.locator(".run-steps li")).to_have_count(4)  # three moves, one equip
    expect(progress.locator(".run-summary")).to_contain_text("every item is in place")
    expect(progress).not_to_have_attribute("hx-trigger", "every 1s")
