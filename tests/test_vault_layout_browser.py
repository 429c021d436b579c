"""The vault page as a player sees it on a desktop and on a phone: DIM-like tiles, one
character at a time at 390 px, and the manifest and account pages never wider than the
phone. Screenshots go to /tmp/shots-tiles/ for a person to look at."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from manifest.sync import manifest_sync
from tests.support import log_in_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

SHOTS = Path("/tmp/shots-tiles")
V0616 = "244122.26.06.10.2000-1-bnet.65386"


def shoot(page, name: str) -> None:
    """A full-page screenshot with every icon loaded (tiles' images are lazy)."""
    SHOTS.mkdir(exist_ok=True)
    page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"], page.url


def test_the_vault_on_a_desktop_and_on_a_phone(synced_site, bungie, page):
    # A second version, so the history chart has two bars and the panel something to list.
    bungie.app.publish("2026-06-16", version=V0616)
    assert manifest_sync().outcome == "live"
    log_in_in_browser(page, synced_site)
    expect(page.locator("#inventory-body .item").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    for name in ("Titan", "Hunter", "Warlock", "Vault"):
        expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()  # all at once
    expect(page.locator(".switcher")).to_be_hidden()
    shoot(page, "vault-1280")
    # A tile opens the quick view in place (htmx): the page stays, whether or not the
    # quick view answers yet (htmx leaves #quick-view alone on a 4xx).
    page.locator("#inventory-body .item a[hx-get]").first.click()
    page.wait_for_load_state("networkidle")
    expect(page).to_have_url(re.compile(r"/inventory/$"))
    expect(page.locator("#inventory-body .item").first).to_be_visible()
    page.goto(synced_site + "/manifest/")
    shoot(page, "manifest-1280")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(synced_site + "/inventory/")
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name="Titan", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Hunter", exact=True)).to_be_hidden()
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 6000, height
    no_sideways_scroll(page)
    shoot(page, "vault-390")

    page.locator(".switcher label", has_text="Hunter").click()
    expect(page.get_by_role("heading", name="Hunter", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Titan", exact=True)).to_be_hidden()
    page.locator(".switcher label", has_text="Vault").click()
    expect(page.get_by_role("heading", name="Vault", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Hunter", exact=True)).to_be_hidden()
    no_sideways_scroll(page)
    shoot(page, "vault-390-vault-tab")

    # Filtering (htmx swaps the body) keeps the tab the player chose.
    page.get_by_label("Filter").fill("is:weapon")
    expect(page).to_have_url(re.compile(r"q=is%3Aweapon"))
    expect(page.get_by_role("heading", name="Vault", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Titan", exact=True)).to_be_hidden()

    for path, name in ((f"/manifest/{V0616}/", "version-390"), ("/manifest/", "manifest-390"),
                       ("/account/", "account-390")):
        page.goto(synced_site + path)
        no_sideways_scroll(page)
        shoot(page, name)
