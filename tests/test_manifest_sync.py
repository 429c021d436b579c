"""The manifest sync against the fake Bungie.net: what gets stored, what gets skipped, and
that a failure at any step leaves the live version exactly as it was."""

from __future__ import annotations

import time

import pytest
import requests

from manifest.models import Definition, ManifestState, ManifestTable, ManifestVersion
from manifest.sync import FLAP_CONFIRMATIONS, LogProgress, manifest_sync
from manifest.sync.orchestrate import TABLE_ATTEMPTS
from tests.fakebungie.datasets import ITEM_TABLE
from tests.fakebungie.server import FakeBungieServer

pytestmark = pytest.mark.django_db

V0616 = "244122.26.06.10.2000-1-bnet.65386"
V0623 = "244164.26.06.16.2053-2-bnet.65465"
V0609 = "244019.26.05.29.1640-4-bnet.65312"


def published_entries(fake: FakeBungieServer) -> dict[str, int]:
    """Entries per English table of the fake's current manifest, read as a client would."""
    manifest = requests.get(
        f"{fake.url}/Platform/Destiny2/Manifest/", headers={"X-API-Key": "fake-api-key"}, timeout=10
    ).json()["Response"]
    counts = {}
    for table, path in manifest["jsonWorldComponentContentPaths"]["en"].items():
        counts[table] = len(requests.get(fake.url + path, timeout=10).json())
    fake.app.reset(stats=True)
    return counts


def live_rows(table: str | None = None) -> int:
    seq = ManifestState.get().active_seq
    rows = Definition.objects.at(seq).filter(language="en")
    return (rows.filter(entity_type=table) if table else rows).count()


def table_downloads(fake: FakeBungieServer) -> int:
    return sum(fake.app.stats()["tables"].values())


def test_first_sync_stores_every_entry_of_every_table(bungie):
    expected = published_entries(bungie)

    result = manifest_sync()

    assert result.outcome == "live", result.reason
    assert result.version == V0616
    assert result.tables_total == len(expected)
    assert result.added == sum(expected.values())
    for table, count in expected.items():
        assert live_rows(table) == count, table
    version = ManifestVersion.objects.get(version=V0616)
    assert version.status == ManifestVersion.Status.LIVE
    assert ManifestState.get().active == version


def test_a_second_refresh_downloads_no_table_file(bungie):
    manifest_sync()
    bungie.app.reset(stats=True)

    result = manifest_sync()

    assert result.outcome == "unchanged"
    assert bungie.app.stats()["counts"].get("manifest") == 1
    assert table_downloads(bungie) == 0


def test_the_real_republish_with_identical_tables_writes_no_definition_rows(bungie):
    manifest_sync()
    rows_before = Definition.objects.count()

    bungie.app.publish("2026-06-23")
    result = manifest_sync()

    assert result.outcome == "live", result.reason
    assert result.version == V0623
    assert (result.added, result.changed, result.removed, result.tables_changed) == (0, 0, 0, 0)
    assert Definition.objects.count() == rows_before
    assert not ManifestTable.objects.filter(version__version=V0623, changed=True).exists()
    assert ManifestVersion.objects.get(version=V0616).status == ManifestVersion.Status.SUPERSEDED


def test_the_real_june_9_to_16_update_writes_exactly_the_ten_changed_sandbox_perks(bungie):
    bungie.app.publish("2026-06-09")
    manifest_sync()
    rows_before = Definition.objects.count()

    bungie.app.publish("2026-06-16", version=V0616 + "-again")
    result = manifest_sync()

    assert result.outcome == "live", result.reason
    assert (result.added, result.changed, result.removed) == (0, 10, 0)
    assert Definition.objects.count() == rows_before + 10
    new_seq = ManifestState.get().active_seq
    changed = Definition.objects.filter(valid_from=new_seq)
    assert set(changed.values_list("entity_type", flat=True)) == {"DestinySandboxPerkDefinition"}
    assert Definition.objects.filter(valid_to=new_seq).count() == 10
    table = ManifestTable.objects.get(version__version=V0616 + "-again", name="DestinySandboxPerkDefinition")
    assert (table.changed, table.modified) == (True, 10)


def test_a_larger_update_counts_added_changed_and_removed_entries(bungie):
    manifest_sync()
    perks_before = live_rows("DestinySandboxPerkDefinition")

    bungie.app.publish("2025-12-02")
    result = manifest_sync()

    # 2026-06-16 has 259 perks that 2025-12-02 lacks and lacks 24 that it has (README).
    assert result.outcome == "live", result.reason
    assert live_rows("DestinySandboxPerkDefinition") == perks_before - 259 + 24
    assert result.removed >= 259
    assert result.added >= 24


def test_generated_item_changes_write_only_the_changed_items(bungie):
    from tests.fakebungie.items import ItemSpec

    bungie.app.publish(items=ItemSpec(count=400, seed=3))
    manifest_sync()
    items_before = live_rows("DestinyInventoryItemDefinition")

    spec = ItemSpec(count=400, seed=3, changed=0.05, added=0.025, removed=0.025)
    bungie.app.publish(items=spec)
    result = manifest_sync()

    assert result.outcome == "live", result.reason
    assert (result.changed, result.added, result.removed) == (spec.n_changed, spec.n_added, spec.n_removed)
    assert live_rows("DestinyInventoryItemDefinition") == items_before + spec.n_added - spec.n_removed
    seq = ManifestState.get().active_seq
    written = set(Definition.objects.filter(valid_from=seq).values_list("hash", flat=True))
    assert written == set(spec.changed_hashes()) | set(spec.added_hashes())


def test_the_same_version_string_with_new_files_is_a_new_version(bungie):
    manifest_sync()

    bungie.app.publish(same_version=True)
    result = manifest_sync()

    assert result.outcome == "live"
    assert result.version == V0616
    assert ManifestVersion.objects.filter(version=V0616).count() == 2
    assert (result.added, result.changed, result.removed) == (0, 0, 0)


def test_a_flapping_endpoint_does_not_bring_back_a_superseded_version(bungie):
    manifest_sync()
    bungie.app.publish("2026-06-23")
    assert manifest_sync().version == V0623
    bungie.app.quirks(flap=True)

    outcomes = [manifest_sync() for _ in range(4)]

    assert ManifestState.get().active.version == V0623
    assert {r.outcome for r in outcomes} <= {"unchanged", "ignored"}
    assert any(r.outcome == "ignored" for r in outcomes)


def test_a_superseded_version_seen_consistently_comes_back(bungie):
    manifest_sync()
    bungie.app.publish("2026-06-23")
    manifest_sync()
    # Bungie reverted the publish: from now on its endpoint answers only the old manifest.
    bungie.app.revert()

    results = [manifest_sync() for _ in range(FLAP_CONFIRMATIONS)]

    assert [r.outcome for r in results] == ["ignored"] * (FLAP_CONFIRMATIONS - 1) + ["live"]
    assert ManifestState.get().active.version == V0616
    assert (results[-1].added, results[-1].changed, results[-1].removed) == (0, 0, 0)


def test_force_re_activates_a_superseded_version_at_once(bungie):
    manifest_sync()
    bungie.app.publish("2026-06-23")
    manifest_sync()
    bungie.app.revert()  # from now on Bungie answers only the superseded 06-16
    assert manifest_sync().outcome == "ignored"  # unforced: seen once, held back

    forced = manifest_sync(force=True)

    assert forced.outcome == "live"
    assert ManifestState.get().active.version == V0616


@pytest.mark.parametrize("fault", ["maintenance", "throttle"])
def test_maintenance_or_throttling_at_the_check_is_temporary_and_keeps_the_live_version(bungie, fault):
    manifest_sync()
    bungie.app.publish("2026-06-23")
    bungie.app.misbehave(fault, on="manifest", seconds=0.1)

    result = manifest_sync()

    assert result.outcome == "failed"
    assert result.temporary
    assert "manifest check failed" in result.reason
    assert ManifestState.get().active.version == V0616
    state = ManifestState.get()
    assert not state.last_check_ok


@pytest.mark.parametrize(
    "fault, words",
    [
        ("maintenance", "maintenance"),
        ("truncate", "broke off"),
        ("truncate_json", "not valid JSON"),
        ("html", "HTML"),
        ("error500", "HTTP 500"),
    ],
)
def test_a_bad_table_download_fails_the_attempt_and_keeps_the_live_version(bungie, fault, words):
    manifest_sync()
    rows_before = Definition.objects.count()
    bungie.app.publish("2026-06-09")
    bungie.app.misbehave(fault, on="tables")

    result = manifest_sync()

    assert result.outcome == "failed"
    assert words.lower() in result.reason.lower()
    assert ManifestState.get().active.version == V0616
    assert Definition.objects.count() == rows_before
    failed = ManifestVersion.objects.get(version=V0609)
    assert failed.status == ManifestVersion.Status.FAILED
    assert failed.failure_reason == result.reason
    assert not failed.tables.exists()

    bungie.app.reset()
    retried = manifest_sync()
    assert retried.outcome == "live"
    assert retried.version == V0609


def test_a_failure_after_tables_were_written_undoes_every_row_of_the_attempt(bungie):
    manifest_sync()
    rows_before = set(Definition.objects.values_list("pk", "valid_from", "valid_to"))
    published = bungie.app.publish("2026-06-09")
    last = sorted(published.tables())[-1]  # tables are synced in name order: the others are written first
    bungie.app.publish("2026-06-09", version="broken-at-the-end", corrupt={last: "hash_mismatch"})

    result = manifest_sync()

    assert result.outcome == "failed" and last in result.reason
    assert result.added + result.changed > 0  # rows of the earlier tables were written, then undone
    assert set(Definition.objects.values_list("pk", "valid_from", "valid_to")) == rows_before
    assert ManifestState.get().active.version == V0616


class WaitForNextTable(LogProgress):
    """Progress that, while the item table is being written (inside its COPY), waits until
    the fake has answered every try of the table after it: that download fails meanwhile."""

    def __init__(self, fake: FakeBungieServer, failing: str) -> None:
        self.fake, self.failing, self.table, self.saw = fake, failing, "", 0

    def table_started(self, *, language: str, name: str, index: int, total: int) -> None:
        self.table = name

    def parsed(self, entries: int) -> None:
        deadline = time.monotonic() + 30
        while self.table == ITEM_TABLE and not self.saw and time.monotonic() < deadline:
            tries = self.fake.app.stats()["tables"].get(self.failing, 0)
            if tries >= TABLE_ATTEMPTS:
                self.saw = tries
            time.sleep(0.01)


def test_a_later_table_failing_to_download_while_one_is_written_keeps_the_live_version(bungie, settings, tmp_path):
    from tests.fakebungie.items import ItemSpec

    settings.MANIFEST_DOWNLOAD_DIR = str(tmp_path)
    manifest_sync()
    rows_before = set(Definition.objects.values_list("pk", "valid_from", "valid_to"))
    tables = sorted(bungie.app.current.tables())
    failing = tables[tables.index(ITEM_TABLE) + 1]  # downloaded while the item table is written
    bungie.app.publish("2026-06-09", items=ItemSpec(count=400, seed=5), raw={failing: b"<!doctype html><html>"})
    bungie.app.reset(stats=True)
    progress = WaitForNextTable(bungie, failing)

    result = manifest_sync(progress=progress)

    assert progress.saw == TABLE_ATTEMPTS  # every try failed before the item table's rows were done
    assert result.outcome == "failed" and failing in result.reason and "HTML" in result.reason
    assert result.added > 0  # the item table was written, then undone
    assert set(Definition.objects.values_list("pk", "valid_from", "valid_to")) == rows_before
    assert ManifestState.get().active.version == V0616
    assert list(tmp_path.iterdir()) == []


def test_a_table_failing_to_parse_leaves_no_download_behind(bungie, settings, tmp_path):
    settings.MANIFEST_DOWNLOAD_DIR = str(tmp_path)
    manifest_sync()
    bungie.app.publish("2026-06-09", corrupt={ITEM_TABLE: "hash_mismatch"})  # the next table downloads meanwhile

    result = manifest_sync()

    assert result.outcome == "failed" and ITEM_TABLE in result.reason
    assert ManifestState.get().active.version == V0616
    assert list(tmp_path.iterdir()) == []


def test_a_table_that_404s_right_after_a_publish_is_retried_with_a_cache_buster(bungie):
    bungie.app.quirks(table_404_after_publish=2)
    bungie.app.publish("2026-06-16", version="fresh")

    result = manifest_sync()

    assert result.outcome == "live", result.reason
    tables = [r for r in bungie.app.stats()["recent"] if r["kind"] == "tables"]
    assert any(r["query"].startswith("dvr=") for r in tables)


def test_a_table_that_keeps_404ing_fails_the_attempt(bungie):
    manifest_sync()
    bungie.app.quirks(table_404_after_publish=50)
    bungie.app.publish("2026-06-23")

    result = manifest_sync()

    assert result.outcome == "failed"
    assert "404" in result.reason
    assert ManifestState.get().active.version == V0616


def test_a_table_that_disappears_has_its_entries_removed_and_one_that_appears_is_added(bungie):
    manifest_sync()
    races = live_rows("DestinyRaceDefinition")
    assert races > 0

    bungie.app.publish("2026-06-16", version="without-races", without=["DestinyRaceDefinition"])
    gone = manifest_sync()

    assert gone.outcome == "live", gone.reason
    assert (gone.removed, gone.tables_changed, gone.tables_dropped) == (races, 0, 1)
    assert gone.summary().startswith(f"live without-races: {gone.tables_total} tables, 0 changed, 1 dropped, ")
    assert live_rows("DestinyRaceDefinition") == 0

    bungie.app.publish("2026-06-16", version="races-back")
    back = manifest_sync()

    assert back.outcome == "live", back.reason
    assert (back.added, back.removed) == (races, 0)
    assert live_rows("DestinyRaceDefinition") == races


@pytest.mark.parametrize(
    "corruption, words",
    [("list", "not a JSON object keyed by hash"), ("hash_mismatch", "has hash 3, not its key")],
)
def test_a_table_that_is_not_keyed_by_hash_fails_the_attempt(bungie, corruption, words):
    manifest_sync()
    rows_before = Definition.objects.count()
    bungie.app.publish("2026-06-09", corrupt={"DestinyRaceDefinition": corruption})

    result = manifest_sync()

    assert result.outcome == "failed"
    assert words in result.reason
    assert "DestinyRaceDefinition" in result.reason
    assert ManifestState.get().active.version == V0616
    assert Definition.objects.count() == rows_before


# --- what the operator reads after a sync ------------------------------------------------------
def test_once_a_version_is_live_the_check_no_longer_says_syncing(bungie, client):
    from manifest.status import manifest_status

    manifest_sync()

    assert manifest_status()["last_check"] == f"{V0616} is live"
    assert "syncing" not in client.get("/healthz").content.decode()
    page = client.get("/manifest/").content.decode()
    assert f"{V0616} is live" in page and "syncing" not in page


def test_a_failed_sync_says_so_in_the_check_not_syncing(bungie):
    from manifest.status import manifest_status

    manifest_sync()
    bungie.app.publish("2026-06-23")
    bungie.app.misbehave("truncate_json", on="tables")

    manifest_sync()

    assert manifest_status()["last_check"].startswith(f"sync of {V0623} failed: ")


def test_a_summary_counts_dropped_tables_apart_from_changed_ones(bungie):
    manifest_sync()
    bungie.app.publish("2026-06-23", without=["DestinyRaceDefinition", "DestinyGenderDefinition"])

    result = manifest_sync()

    assert result.outcome == "live", result.reason
    assert result.tables_dropped == 2
    assert result.tables_changed <= result.tables_total
    assert f": {result.tables_total} tables, {result.tables_changed} changed, 2 dropped, " in result.summary()
    version = ManifestVersion.objects.get(version=V0623)
    assert (version.tables_total, version.tables_dropped) == (result.tables_total, 2)


def test_a_version_held_back_by_the_flapping_guard_says_why_on_the_page_and_in_healthz(bungie, client):
    manifest_sync()
    bungie.app.publish("2026-06-23")
    manifest_sync()
    bungie.app.revert()  # Bungie answers the superseded version again

    assert manifest_sync().outcome == "ignored"

    reason = f"{V0616} held back: seen 1 of {FLAP_CONFIRMATIONS} times in a row; waiting (Bungie has flapped before"
    assert reason in client.get("/manifest/").content.decode()
    assert reason in client.get("/healthz").json()["manifest"]["held_back"]
    manifest_sync()
    assert f"seen 2 of {FLAP_CONFIRMATIONS} times in a row" in client.get("/manifest/").content.decode()


def test_the_admin_shows_why_a_version_is_held_back(bungie, staff):
    from django.test import Client

    manifest_sync()
    bungie.app.publish("2026-06-23")
    manifest_sync()
    bungie.app.revert()
    manifest_sync()
    admin = Client()
    admin.force_login(staff)

    page = admin.get("/admin/manifest/manifestversion/").content.decode()

    assert f"{V0616} held back: seen 1 of {FLAP_CONFIRMATIONS} times in a row" in page
