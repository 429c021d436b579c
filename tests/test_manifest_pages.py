"""The manifest history pages: versions, what a version changed, an entry's diff, search."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_the_chart_has_a_visible_legend_version_labels_and_seconds_only(client, june):
    page = client.get("/manifest/").content.decode()

    chart = re.search(r'<figure class="card chart">(.*?)</figure>', page, re.S)
    assert chart
    figure = chart.group(1)
    # Bungie's build dates, from the version strings (244019.26.05.29…, 244122.26.06.10…).
    labels = re.findall(r'<text class="axis-label x-label"[^>]*>([^<]+)</text>', figure)
    assert labels == ["May 29", "Jun 10"]
    assert "seconds to live" in figure and "minute" not in page
    assert re.search(r'class="axis-label seconds-tick"[^>]*>[\d.]+ s</text>', figure)
    assert "<title>" + V0616 + ":" in figure
    css = (Path(__file__).parents[1] / "static/css/dvr.css").read_text()
    for kind in ("added", "changed", "removed"):
        assert f'<span class="key bar-{kind}"></span>' in figure
        # A legend key is an HTML span: it needs a background, which SVG's fill is not.
        assert re.search(rf"\.legend \.key\.bar-{kind} {{ background: #[0-9a-f]{{6}}; }}", css)


def test_version_strings_in_the_chart_are_escaped(client, bungie):
    bungie.app.publish("2026-06-09", version='<script>x</script>"&')
    assert manifest_sync().outcome == "live"

    response = client.get("/manifest/")
    page = response.content.decode()

    assert response.status_code == 200  # a "/" in the version string: no link, no 500
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;&quot;&amp;" in page


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


# --- the vault page's "changed in the latest manifest" panel --------------------------------------------
def test_the_first_manifest_marks_nothing_as_changed(client, player, synced):
    page = client.get("/inventory/").content.decode()

    assert "changed-panel" not in page
    assert "nothing to compare it with" in page


def test_the_changed_panel_lists_each_item_once_with_how_many_the_player_has(client, player, synced):
    from manifest.lookup import forget_active_seq
    from tests.fakebungie.items import ItemSpec

    client.get("/inventory/")
    spec = ItemSpec(count=300, changed=0.2)
    owned = [i["item_hash"] for i in synced.app.player_state()["items"]]
    twice = sorted(spec.changed_hashes() & set(owned))[0]
    for _ in range(3):
        synced.app.add_item(twice, place="vault")
    synced.app.publish(items=spec)
    assert manifest_sync().outcome == "live"
    forget_active_seq()
    copies = sum(1 for i in synced.app.player_state()["items"] if i["item_hash"] == twice)
    assert copies >= 4

    page = client.get("/inventory/?refresh=1").content.decode()  # Bungie asked again: the new copies

    panel = re.search(r'<details class="card changed-panel">(.*?)</details>', page, re.S)
    assert panel
    linked = re.findall(r"/DestinyInventoryItemDefinition/(\d+)/", panel.group(1))
    assert len(linked) == len(set(linked))  # once each
    assert str(twice) in linked
    entry = re.search(rf'/{twice}/">[^<]*</a> <span class="muted">\((\d+) of yours\)', panel.group(1))
    assert entry and int(entry.group(1)) == copies
    distinct = len({*owned, twice} & spec.changed_hashes())
    assert f"<summary>{distinct} of your items changed" in panel.group(1)
    assert "nothing to compare it with" not in page
