"""The manifest history pages: versions, what a version changed, an entry's diff, search."""

from __future__ import annotations

import re

import pytest

from manifest.models import Definition, ManifestVersion
from manifest.sync import manifest_sync

pytestmark = pytest.mark.django_db

V0609 = "244019.26.05.29.1640-4-bnet.65312"
V0616 = "244122.26.06.10.2000-1-bnet.65386"


@pytest.fixture
def june(bungie):
    """The real 2026-06-09 → 2026-06-16 update, synced."""
    bungie.app.publish("2026-06-09")
    assert manifest_sync().outcome == "live"
    bungie.app.publish("2026-06-16", version=V0616)
    assert manifest_sync().outcome == "live"
    return bungie


def changed_perks() -> list[Definition]:
    seq = ManifestVersion.objects.get(version=V0616, status="live").seq
    return list(Definition.objects.filter(valid_from=seq).order_by("name"))


def test_the_history_lists_every_version_with_its_counts_and_a_chart(client, june):
    page = client.get("/manifest/").content.decode()

    assert V0609 in page and V0616 in page
    assert "<svg" in page and "bar-changed" in page
    assert "(active)" in page


def test_a_version_page_lists_exactly_the_ten_changed_sandbox_perks_by_name(client, june):
    perks = changed_perks()
    assert len(perks) == 10

    page = client.get(f"/manifest/{V0616}/").content.decode()

    assert "DestinySandboxPerkDefinition" in page
    assert "Changed (10)" in page
    linked = re.findall(r'/manifest/[^"]+/DestinySandboxPerkDefinition/(\d+)/', page)
    assert sorted(map(int, linked)) == sorted(p.hash for p in perks)
    for perk in perks:
        if perk.name:
            assert perk.name in page


def test_a_republish_with_no_changes_says_so(client, june):
    june.app.publish("2026-06-23")
    manifest_sync()

    page = client.get("/manifest/244164.26.06.16.2053-2-bnet.65465/").content.decode()

    assert "No definition changed in this version" in page


def test_an_entry_page_shows_its_json_and_a_readable_diff(client, june):
    perk = changed_perks()[0]

    response = client.get(f"/manifest/{V0616}/DestinySandboxPerkDefinition/{perk.hash}/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "What changed in this version" in page
    assert 'class="diff-add"' in page and 'class="diff-del"' in page
    assert f"&quot;hash&quot;: {perk.hash}" in page


def test_the_table_page_paginates_a_kind_of_change(client, june):
    response = client.get(f"/manifest/{V0616}/DestinySandboxPerkDefinition/?kind=changed")

    assert response.status_code == 200
    assert "Page 1 of 1" in response.content.decode()


@pytest.mark.parametrize(
    "url, status",
    [
        ("/manifest/no-such-version/", 404),
        (f"/manifest/{V0616}/NoSuchTable/?kind=added", 404),
        (f"/manifest/{V0616}/DestinySandboxPerkDefinition/?kind=weird", 400),
        (f"/manifest/{V0616}/DestinySandboxPerkDefinition/?kind=added&page=999", 200),
        (f"/manifest/{V0616}/DestinySandboxPerkDefinition/12/", 404),
        (f"/manifest/{V0616}/DestinySandboxPerkDefinition/not-a-hash/", 400),
        (f"/manifest/{V0616}/?id=abc", 200),
        ("/manifest/search/?q=" + "x" * 500, 400),
        ("/manifest/search/?q=", 200),
        ("/manifest/search/?q=%00%27%22", 200),
    ],
)
def test_bad_input_gets_a_4xx_page_never_a_500(client, june, url, status):
    assert client.get(url).status_code == status


def test_search_finds_definitions_by_name_across_tables(client, june):
    response = client.get("/manifest/search/?q=hunter")

    page = response.content.decode()
    assert response.status_code == 200
    assert "DestinyClassDefinition" in page
    assert ">Hunter<" in page


def test_search_with_no_match_says_so(client, june):
    assert "No definition named like" in client.get("/manifest/search/?q=zzzzqqqq").content.decode()
