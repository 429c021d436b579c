"""A person browsing the manifest history in Chromium: the history, a version, an entry's diff."""

from __future__ import annotations

import pytest

from manifest.sync import manifest_sync

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

V0616 = "244122.26.06.10.2000-1-bnet.65386"


def test_a_visitor_opens_the_history_a_version_and_an_entrys_diff(live_server, bungie, page):
    bungie.app.publish("2026-06-09")
    manifest_sync()
    bungie.app.publish("2026-06-16", version=V0616)
    manifest_sync()

    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Manifest", exact=True).click()
    assert page.locator("h1").inner_text() == "Manifest history"
    assert page.locator("svg[role=img]").count() == 1

    page.get_by_role("link", name=V0616).click()
    assert page.locator("h1").inner_text() == f"Manifest {V0616}"
    assert page.get_by_text("Changed (10)").is_visible()

    page.locator(".change-list a").first.click()
    assert page.get_by_role("heading", name="What changed in this version").is_visible()
    assert page.locator(".diff-add").count() >= 1
    assert page.locator(".diff-del").count() >= 1


def test_a_visitor_searches_definitions_by_name(live_server, bungie, page):
    manifest_sync()

    page.goto(live_server.url + "/manifest/")
    page.get_by_label("Search definitions by name").fill("Warlock")
    page.get_by_role("button", name="Search").click()

    assert page.get_by_role("link", name="Warlock").first.is_visible()
