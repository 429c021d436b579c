"""The fake Bungie.net behaves like Bungie.net: shapes, state, rules and bad days.

No Django needed: ``python -m pytest -p no:django tests/test_fakebungie*.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
import pytest
import requests

from tests.fakebungie import FakeBungie, FakeBungieServer, ItemSpec, datasets
from tests.fakebungie.datasets import ALL_LANGUAGES, GENERATED_TABLES, ITEM_TABLE, LEGACY_TABLES
from tests.fakebungie.items import (
    ARMOR_BUCKETS,
    DAMAGE_TYPES,
    TIER_BY_NAME,
    WEAPON_BUCKETS,
    load_legacy_table,
    table_file,
    unsigned,
    write_table,
)
from tests.support import free_port

KEY = {"X-API-Key": "fake-api-key"}
DATA = Path(__file__).resolve().parent / "fakebungie" / "data"
PROFILE = "/Platform/Destiny2/3/Profile/4611686018467260757/"
ALL_COMPONENTS = "100,102,103,200,201,205,300,305"


@pytest.fixture
def token(fake: FakeBungieServer) -> str:
    return fake.app.issue_token()["access_token"]


def get(fake: FakeBungieServer, path: str, **kwargs: Any) -> requests.Response:
    headers = {**KEY, **kwargs.pop("headers", {})}
    return requests.get(fake.url + path, headers=headers, timeout=30, **kwargs)


def manifest(fake: FakeBungieServer) -> dict[str, Any]:
    body = get(fake, "/Platform/Destiny2/Manifest/").json()
    assert body["ErrorCode"] == 1
    return body["Response"]


def action(fake: FakeBungieServer, token: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    r = requests.post(
        f"{fake.url}/Platform/Destiny2/Actions/Items/{name}/",
        json={"membershipType": 3, **body},
        headers={**KEY, "Authorization": f"Bearer {token}"},
        timeout=30,
    )
    return r.json()


# ---------------------------------------------------------------------------------------
# Manifest and tables
# ---------------------------------------------------------------------------------------


def test_the_manifest_is_bungies_envelope_around_the_datasets_real_body(fake: FakeBungieServer) -> None:
    r = get(fake, "/Platform/Destiny2/Manifest/")
    body = r.json()
    assert r.status_code == 200
    assert {k: body[k] for k in ("ErrorCode", "ThrottleSeconds", "ErrorStatus", "Message", "MessageData")} == {
        "ErrorCode": 1,
        "ThrottleSeconds": 0,
        "ErrorStatus": "Success",
        "Message": "Ok",
        "MessageData": {},
    }
    real = orjson.loads((datasets()["2026-06-16"].path / "manifest.json").read_bytes())["Response"]
    assert body["Response"]["version"] == real["version"] == "244122.26.06.10.2000-1-bnet.65386"
    assert body["Response"]["mobileClanBannerDatabasePath"] == real["mobileClanBannerDatabasePath"]
    assert set(body["Response"]["jsonWorldComponentContentPaths"]) == {"en", "fr"}
    assert set(body["Response"]["jsonWorldContentPaths"]) == {"en", "fr"}


def test_it_lists_only_tables_it_really_serves(fake: FakeBungieServer) -> None:
    paths = manifest(fake)["jsonWorldComponentContentPaths"]["en"]
    sample = {p.stem for p in datasets()["2026-06-16"].path.glob("Destiny*.json")}
    assert ITEM_TABLE in paths and set(LEGACY_TABLES) <= set(paths)
    # The sample's NodeStepSummary/TalentGrid files are an HTML page and the real manifest
    # no longer lists those tables: neither does the fake.
    assert "DestinyNodeStepSummaryDefinition" not in paths
    assert "DestinyTalentGridDefinition" not in paths
    assert set(paths) == (sample - {"DestinyNodeStepSummaryDefinition", "DestinyTalentGridDefinition"}) | {
        ITEM_TABLE,
        *LEGACY_TABLES,
        *GENERATED_TABLES,  # plug sets, socket types and categories (plugs.py)
    }
    for table, path in paths.items():
        assert path.startswith(f"/common/destiny2_content/json/en/{table}-") and path.endswith(".json")


def test_it_serves_every_table_its_manifest_lists(fake: FakeBungieServer) -> None:
    for lang, tables in manifest(fake)["jsonWorldComponentContentPaths"].items():
        for table, path in tables.items():
            r = requests.get(fake.url + path, timeout=30)
            assert r.status_code == 200, (lang, table)
            assert r.headers["Content-Type"].startswith("application/json")
            assert int(r.headers["Content-Length"]) == len(r.content)
            entries = r.json()
            assert entries, table
            for key, entry in entries.items():
                assert entry["hash"] == int(key), (table, key)


def test_real_tables_are_served_byte_for_byte(fake: FakeBungieServer) -> None:
    paths = manifest(fake)["jsonWorldComponentContentPaths"]["en"]
    for table in ("DestinyClassDefinition", "DestinySandboxPerkDefinition", "DestinyInventoryBucketDefinition"):
        real = (datasets()["2026-06-16"].path / f"{table}.json").read_bytes()
        assert requests.get(fake.url + paths[table], timeout=30).content == real


def test_french_tables_prefix_every_name_and_keep_every_entry(fake: FakeBungieServer) -> None:
    paths = manifest(fake)["jsonWorldComponentContentPaths"]
    for table in ("DestinyClassDefinition", ITEM_TABLE, "DestinyDamageTypeDefinition"):
        en = requests.get(fake.url + paths["en"][table], timeout=30).json()
        fr = requests.get(fake.url + paths["fr"][table], timeout=30).json()
        assert en.keys() == fr.keys()
        for key, entry in fr.items():
            assert entry["displayProperties"]["name"] == "[fr] " + en[key]["displayProperties"]["name"]


def test_it_can_serve_all_thirteen_of_bungies_languages() -> None:
    with FakeBungieServer(items=ItemSpec(count=40), languages=ALL_LANGUAGES) as fake:
        paths = manifest(fake)["jsonWorldComponentContentPaths"]
        assert tuple(paths) == ALL_LANGUAGES == tuple(manifest(fake)["jsonWorldContentPaths"])
        en = requests.get(fake.url + paths["en"][ITEM_TABLE], timeout=30).json()
        for lang in ("es-mx", "zh-chs"):
            r = requests.get(fake.url + paths[lang][ITEM_TABLE], timeout=30)
            assert int(r.headers["Content-Length"]) == len(r.content)
            table = r.json()
            assert table.keys() == en.keys()
            for key, entry in table.items():  # the same item as the fake builds it in that language
                assert entry["displayProperties"]["name"] == f"[{lang}] " + en[key]["displayProperties"]["name"]
                assert {**entry, "displayProperties": None} == {**en[key], "displayProperties": None}
        assert fake.app.current.items.item(int(next(iter(en))), "ko") is not None
    with FakeBungieServer(items=ItemSpec(count=40), languages=("en", "de")) as fake:
        paths = manifest(fake)["jsonWorldComponentContentPaths"]
        assert set(paths) == {"en", "de"}
        assert requests.get(fake.url + paths["de"][ITEM_TABLE].replace("/de/", "/fr/"), timeout=30).status_code == 404
    with pytest.raises(ValueError):
        FakeBungie(languages=("en", "xx"))


def test_the_command_line_takes_languages() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakebungie", "--port", str(port), "--items", "40", "--languages", "all"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                body = requests.get(f"http://127.0.0.1:{port}/Platform/Destiny2/Manifest/", headers=KEY, timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert tuple(body.json()["Response"]["jsonWorldComponentContentPaths"]) == ALL_LANGUAGES
    finally:
        process.terminate()
        process.wait(10)


def test_a_cache_busting_query_string_is_ignored(fake: FakeBungieServer) -> None:
    path = manifest(fake)["jsonWorldComponentContentPaths"]["en"]["DestinyRaceDefinition"]
    plain = requests.get(fake.url + path, timeout=30).content
    assert requests.get(f"{fake.url}{path}?x=123abc", timeout=30).content == plain


def test_the_aggregate_file_holds_every_listed_table(fake: FakeBungieServer) -> None:
    m = manifest(fake)
    r = requests.get(fake.url + m["jsonWorldContentPaths"]["en"], timeout=30)
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert set(r.json()) == set(m["jsonWorldComponentContentPaths"]["en"])


def test_unknown_files_and_guids_are_404(fake: FakeBungieServer) -> None:
    path = manifest(fake)["jsonWorldComponentContentPaths"]["en"]["DestinyClassDefinition"]
    assert requests.get(fake.url + path.replace("Class", "Klass"), timeout=30).status_code == 404
    assert requests.get(fake.url + path[:-10] + "0000000000.json", timeout=30).status_code == 404


def test_an_entity_is_looked_up_in_the_current_version(fake: FakeBungieServer) -> None:
    body = get(fake, "/Platform/Destiny2/Manifest/DestinyClassDefinition/3655393761/").json()
    assert body["ErrorCode"] == 1 and body["Response"]["displayProperties"]["name"] == "Titan"
    item_hash = fake.app.current.items.hashes()[5]
    body = get(fake, f"/Platform/Destiny2/Manifest/DestinyInventoryItemDefinition/{item_hash}/").json()
    assert body["Response"]["hash"] == item_hash


def test_an_unknown_entity_is_bungies_not_found_error(fake: FakeBungieServer) -> None:
    body = get(fake, "/Platform/Destiny2/Manifest/DestinyClassDefinition/1/").json()
    assert (body["ErrorCode"], body["ErrorStatus"]) == (21, "NotFound")
    assert "Response" not in body
    body = get(fake, "/Platform/Destiny2/Manifest/DestinyNoSuchDefinition/1/").json()
    assert (body["ErrorCode"], body["ErrorStatus"]) == (18, "InvalidParameters")


def test_every_platform_call_requires_the_api_key(fake: FakeBungieServer) -> None:
    r = requests.get(fake.url + "/Platform/Destiny2/Manifest/", timeout=30)
    assert (r.status_code, r.json()["ErrorCode"], r.json()["ErrorStatus"]) == (401, 2102, "ApiKeyMissingFromRequest")
    r = requests.get(fake.url + "/Platform/Destiny2/Manifest/", headers={"X-API-Key": "nope"}, timeout=30)
    assert (r.json()["ErrorCode"], r.json()["ErrorStatus"]) == (2101, "ApiInvalidOrExpiredKey")
    with FakeBungieServer(api_key="other") as other:
        assert get(other, "/Platform/GlobalAlerts/").json()["ErrorCode"] == 2101
        r = requests.get(other.url + "/Platform/GlobalAlerts/", headers={"X-API-Key": "other"}, timeout=30)
        assert r.json()["ErrorCode"] == 1


def test_platform_paths_without_a_trailing_slash_redirect(fake: FakeBungieServer) -> None:
    r = get(fake, "/Platform/Destiny2/Manifest", allow_redirects=False)
    assert r.status_code == 301 and r.headers["Location"].endswith("/Platform/Destiny2/Manifest/")


def test_icons_and_images_are_small_pngs(fake: FakeBungieServer) -> None:
    for path in (
        "/common/destiny2_content/icons/0f65245ef16bb30b88e7b98bb83cc5f0.png",
        "/img/misc/missing_icon_d2.png",
    ):
        r = requests.get(fake.url + path, timeout=30)
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
        assert r.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_global_alerts_are_empty_until_set(fake: FakeBungieServer) -> None:
    assert get(fake, "/Platform/GlobalAlerts/").json()["Response"] == []
    fake.app.set_alerts([{"key": "maint", "html": "Maintenance at 17:00 UTC"}])
    [alert] = get(fake, "/Platform/GlobalAlerts/").json()["Response"]
    assert alert["AlertKey"] == "maint" and alert["AlertHtml"] == "Maintenance at 17:00 UTC"


# ---------------------------------------------------------------------------------------
# Datasets and publishing
# ---------------------------------------------------------------------------------------


def test_the_four_datasets_carry_their_real_versions() -> None:
    assert {name: ds.version for name, ds in datasets().items()} == {
        "2025-12-02": "239055.25.11.18.1646-4-bnet.62950",
        "2026-06-09": "244019.26.05.29.1640-4-bnet.65312",
        "2026-06-16": "244122.26.06.10.2000-1-bnet.65386",
        "2026-06-23": "244164.26.06.16.2053-2-bnet.65465",
    }


def test_publishing_a_dataset_changes_the_version_and_every_path(fake: FakeBungieServer) -> None:
    before = manifest(fake)
    fake.app.publish("2026-06-23")
    after = manifest(fake)
    assert after["version"] == "244164.26.06.16.2053-2-bnet.65465"
    old, new = before["jsonWorldComponentContentPaths"]["en"], after["jsonWorldComponentContentPaths"]["en"]
    assert old.keys() == new.keys()
    assert all(old[t] != new[t] for t in old)
    # 06-16 -> 06-23: new paths, byte-identical contents (Bungie's real behaviour).
    for table in ("DestinySandboxPerkDefinition", "DestinyStatGroupDefinition", ITEM_TABLE):
        a = requests.get(fake.url + old[table], timeout=30).content
        b = requests.get(fake.url + new[table], timeout=30).content
        assert a == b, table


def test_old_versions_files_keep_being_served(fake: FakeBungieServer) -> None:
    old = manifest(fake)["jsonWorldComponentContentPaths"]["en"]["DestinyClassDefinition"]
    fake.app.publish("2026-06-23")
    fake.app.publish("2025-12-02")
    assert requests.get(fake.url + old, timeout=30).status_code == 200


def test_publishing_the_same_dataset_again_gives_a_synthetic_version(fake: FakeBungieServer) -> None:
    pub = fake.app.publish(items=ItemSpec(count=300, changed=0.01))
    assert pub.version == "244122.26.06.10.2000-1-bnet.65386-fake1"
    assert manifest(fake)["version"] == pub.version
    assert fake.app.publish(version="custom-1").version == "custom-1"


def test_same_version_publish_keeps_the_string_but_changes_the_paths(fake: FakeBungieServer) -> None:
    before = manifest(fake)
    fake.app.publish(same_version=True)
    after = manifest(fake)
    assert after["version"] == before["version"]
    assert after["jsonWorldContentPaths"]["en"] != before["jsonWorldContentPaths"]["en"]


def test_a_churned_item_spec_edits_the_current_table_further_each_time() -> None:
    step = {"changed": 0.05, "added": 0.03, "removed": 0.02}
    first = ItemSpec(count=300).churned(**step)
    second = first.churned(**step)
    assert (first.n_changed, first.n_added, first.n_removed) == (15, 9, 6)
    assert (second.n_changed, second.n_added, second.n_removed) == (30, 18, 12)
    assert second.changed_hashes() != first.changed_hashes()
    assert second.added_hashes() > first.added_hashes()
    assert second.removed_hashes() != first.removed_hashes()
    # Past what 300 items hold, it starts again from the base table plus one step.
    assert ItemSpec(count=300, changed=0.97).churned(**step) == ItemSpec(count=300, **step)


def test_publish_over_http_with_churn_edits_the_current_table(fake: FakeBungieServer) -> None:
    body = {"churn": {"changed": 0.1, "removed": 0.1}}
    first = requests.post(f"{fake.url}/__fake__/publish", json=body, timeout=10).json()["items"]
    second = requests.post(f"{fake.url}/__fake__/publish", json=body, timeout=10).json()["items"]
    assert (first["changed"], first["removed"], second["changed"], second["removed"]) == (0.1, 0.1, 0.2, 0.2)
    bad = requests.post(f"{fake.url}/__fake__/publish", json={"churn": {"renamed": 0.1}}, timeout=10)
    assert bad.status_code == 400


def test_a_published_item_spec_changes_exactly_the_announced_items(fake: FakeBungieServer) -> None:
    spec = ItemSpec(count=300, seed=0, changed=0.02, added=0.01, removed=0.01)
    old_path = manifest(fake)["jsonWorldComponentContentPaths"]["en"][ITEM_TABLE]
    fake.app.publish(items=spec)
    new_path = manifest(fake)["jsonWorldComponentContentPaths"]["en"][ITEM_TABLE]
    old = requests.get(fake.url + old_path, timeout=30).json()
    new = requests.get(fake.url + new_path, timeout=30).json()
    assert {int(h) for h in old.keys() - new.keys()} == spec.removed_hashes()
    assert {int(h) for h in new.keys() - old.keys()} == spec.added_hashes()
    differing = {int(h) for h in old.keys() & new.keys() if _without_index(old[h]) != _without_index(new[h])}
    assert differing == spec.changed_hashes()
    assert (len(spec.changed_hashes()), len(spec.added_hashes()), len(spec.removed_hashes())) == (6, 3, 3)


def test_generation_zero_is_the_table_every_other_test_knows(tmp_path: Path) -> None:
    # The bytes of these two tables as they were before generations existed.
    digests = {
        ItemSpec(count=300): "4b3f3b42512e1144334efee39ce043d7f1b2e84e3dbe9fc6a83116a7ce71ef2d",
        ItemSpec(count=300, changed=0.02, added=0.01, removed=0.01):
            "7df73dbfc544772dbe9d73c52d93cbb81f976e6d5b59b0416af9f8444544facf",
    }
    for spec, digest in digests.items():
        assert spec.generation == 0 and "-g" not in spec.key()
        write_table(spec, tmp_path / "table.json")
        assert hashlib.sha256((tmp_path / "table.json").read_bytes()).hexdigest() == digest


def test_each_generation_edits_the_one_before_by_exactly_its_step(fake: FakeBungieServer, tmp_path: Path) -> None:
    owned = {i["item_hash"] for i in fake.app.player_state()["items"]}
    tables = []
    for generation in range(4):
        r = requests.post(f"{fake.url}/__fake__/publish", json={"items": {"generation": generation}}, timeout=30)
        assert r.json()["items"]["generation"] == generation
        path = manifest(fake)["jsonWorldComponentContentPaths"]["en"][ITEM_TABLE]
        tables.append(requests.get(fake.url + path, timeout=30).json())
    for generation in range(1, 4):
        old, new = tables[generation - 1], tables[generation]
        spec = ItemSpec(count=300, generation=generation)
        changed, added, removed = spec.edit()
        assert (len(changed), len(added), len(removed)) == (3, 2, 2)  # 1%, 0.5%, 0.5% of 300
        assert {int(h) for h in old.keys() - new.keys()} == removed
        assert {int(h) for h in new.keys() - old.keys()} == added
        assert {int(h) for h in old.keys() & new.keys() if old[h] != new[h]} == changed
        assert owned <= {int(h) for h in new}  # the player's items are never removed
        # Derived from the generation before, the same bytes as built item by item.
        write_table(spec, tmp_path / "built.json", from_previous=False)
        assert (tmp_path / "built.json").read_bytes() == table_file(spec).read_bytes()


def _without_index(entry: dict[str, Any]) -> dict[str, Any]:
    # Removing items shifts table positions (``index``), as it does at Bungie.
    return {k: v for k, v in entry.items() if k != "index"}


# ---------------------------------------------------------------------------------------
# Item generator
# ---------------------------------------------------------------------------------------


def test_legacy_ids_are_signed_int32_hashes() -> None:
    rows = load_legacy_table("DestinyInventoryItemDefinition")
    assert len(rows) == 1000
    assert unsigned(-2146849559) == 2148117737 == rows[0]["json"]["hash"]
    assert all(0 <= r["json"]["hash"] < 2**32 for r in rows)


def test_the_generator_is_deterministic_with_unique_hashes_and_names() -> None:
    spec = ItemSpec(count=2500, seed=3)
    a, b = list(spec.iter_items()), list(spec.iter_items())
    assert a == b
    hashes = [i["hash"] for i in a]
    assert len(set(hashes)) == 2500 and hashes == spec.hashes()
    assert [i["index"] for i in a] == list(range(2500))
    # Copies beyond the 1,000 real rows carry a suffix.
    assert a[1000]["displayProperties"]["name"] == a[0]["displayProperties"]["name"] + " 2"
    assert ItemSpec(count=2500, seed=4).hashes()[1000:] != hashes[1000:]


def test_generated_items_point_at_real_buckets_tiers_and_damage_types() -> None:
    buckets = orjson.loads((datasets()["2026-06-16"].path / "DestinyInventoryBucketDefinition.json").read_bytes())
    tiers = {r["json"]["hash"] for r in load_legacy_table("DestinyItemTierTypeDefinition")}
    damage = {r["json"]["hash"] for r in load_legacy_table("DestinyDamageTypeDefinition")}
    weapons = 0
    for item in ItemSpec(count=1200).iter_items():
        assert str(item["inventory"]["bucketTypeHash"]) in buckets
        assert item["inventory"]["tierTypeHash"] in tiers
        assert item["inventory"]["tierTypeName"] in TIER_BY_NAME
        assert item["redacted"] is False and item["blacklisted"] is False
        if item["itemType"] == 3:
            weapons += 1
            assert item["inventory"]["bucketTypeHash"] in WEAPON_BUCKETS
            assert item["defaultDamageTypeHash"] in damage and DAMAGE_TYPES[item["defaultDamageType"]] in damage
            assert item["sockets"]["socketEntries"][0]["singleInitialItemHash"]
            assert item["equippingBlock"]["equipmentSlotTypeHash"] == item["inventory"]["bucketTypeHash"]
            assert item["stats"]["stats"] and item["investmentStats"]
    assert weapons > 50


def test_a_full_size_table_averages_about_5_7_kb_per_item(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Measured on a sample of the 33,000-item table, since the full one takes seconds.
    spec = ItemSpec(count=33000)
    sizes = [len(orjson.dumps(spec.item(h))) for h in spec.hashes()[::97]]
    assert 5200 < sum(sizes) / len(sizes) < 6300


def test_the_table_file_is_valid_json_written_to_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakebungie.items import table_file

    monkeypatch.setenv("FAKEBUNGIE_CACHE", str(tmp_path))
    spec = ItemSpec(count=150, seed=9)
    path = table_file(spec)
    assert path.parent == tmp_path
    table = json.loads(path.read_bytes())
    assert [int(h) for h in table] == spec.hashes()
    assert table_file(spec) == path  # cached


# ---------------------------------------------------------------------------------------
# Misbehaviour
# ---------------------------------------------------------------------------------------


def test_maintenance_is_503_with_the_real_system_disabled_body(fake: FakeBungieServer) -> None:
    fake.app.misbehave("maintenance", on="manifest", count=2)
    for _ in range(2):
        r = get(fake, "/Platform/Destiny2/Manifest/")
        assert r.status_code == 503
        assert r.json() == {
            "ErrorCode": 5,
            "ThrottleSeconds": 0,
            "ErrorStatus": "SystemDisabled",
            "Message": "This system is temporarily disabled for maintenance.",
            "MessageData": {},
        }
    assert get(fake, "/Platform/Destiny2/Manifest/").status_code == 200


def test_faults_can_be_limited_to_a_path_kind(fake: FakeBungieServer) -> None:
    fake.app.misbehave("maintenance", on="tables")
    m = manifest(fake)
    assert requests.get(fake.url + m["jsonWorldContentPaths"]["en"], timeout=30).status_code == 503
    fake.app.reset()
    assert requests.get(fake.url + m["jsonWorldComponentContentPaths"]["en"]["DestinyClassDefinition"]).ok


def test_throttling_says_how_long_to_wait(fake: FakeBungieServer) -> None:
    fake.app.misbehave("throttle", on="platform", count=1, seconds=7)
    body = get(fake, "/Platform/GlobalAlerts/").json()
    assert (body["ErrorCode"], body["ErrorStatus"], body["ThrottleSeconds"]) == (
        36,
        "ThrottleLimitExceededMomentarily",
        7,
    )


def test_token_faults_answer_401_with_bungies_codes(fake: FakeBungieServer) -> None:
    fake.app.misbehave("expired_token", count=1)
    fake.app.misbehave("invalid_token", count=1)
    first, second = get(fake, PROFILE, params={"components": "100"}), get(fake, PROFILE, params={"components": "100"})
    assert (first.status_code, first.json()["ErrorStatus"]) == (401, "AccessTokenHasExpired")
    assert (second.status_code, second.json()["ErrorCode"]) == (401, 99)


def test_slow_responses_wait_before_answering(fake: FakeBungieServer) -> None:
    fake.app.misbehave("slow", on="manifest", count=1, seconds=0.5)
    start = time.monotonic()
    assert get(fake, "/Platform/Destiny2/Manifest/").ok
    assert time.monotonic() - start >= 0.5


def test_a_truncated_download_drops_the_connection_before_content_length(fake: FakeBungieServer) -> None:
    path = manifest(fake)["jsonWorldComponentContentPaths"]["en"]["DestinySandboxPerkDefinition"]
    fake.app.misbehave("truncate", on="tables", count=1)
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(fake.url + path, timeout=30).content  # noqa: B018
    assert len(requests.get(fake.url + path, timeout=30).content) > 2_000_000


def test_truncated_json_has_a_consistent_but_short_length(fake: FakeBungieServer) -> None:
    path = manifest(fake)["jsonWorldComponentContentPaths"]["en"]["DestinyStatGroupDefinition"]
    fake.app.misbehave("truncate_json", on="tables", count=1)
    r = requests.get(fake.url + path, timeout=30)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(r.content)
    with pytest.raises(ValueError):
        r.json()


def test_an_html_body_can_come_with_status_200(fake: FakeBungieServer) -> None:
    fake.app.misbehave("html", on="manifest", count=1)
    r = get(fake, "/Platform/Destiny2/Manifest/")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert r.content == (datasets()["2026-06-16"].path / "DestinyTalentGridDefinition.json").read_bytes()


def test_http_500_comes_with_html(fake: FakeBungieServer) -> None:
    fake.app.misbehave("error500", on="profile", count=1)
    r = get(fake, PROFILE, params={"components": "100"})
    assert r.status_code == 500 and r.text.lstrip().lower().startswith("<!doctype html")


def test_the_manifest_can_flap_between_the_current_and_previous_versions(fake: FakeBungieServer) -> None:
    old = manifest(fake)["version"]
    new = fake.app.publish("2026-06-23").version
    fake.app.quirks(flap=True)
    assert [manifest(fake)["version"] for _ in range(4)] == [new, old, new, old]


def test_new_files_can_404_for_a_while_after_a_publish(fake: FakeBungieServer) -> None:
    fake.app.quirks(table_404_after_publish=2)
    fake.app.publish("2026-06-23")
    path = fake.url + manifest(fake)["jsonWorldComponentContentPaths"]["en"]["DestinyClassDefinition"]
    assert [requests.get(path, timeout=30).status_code for _ in range(3)] == [404, 404, 200]


def test_the_http_control_api_drives_the_fake(fake: FakeBungieServer) -> None:
    post = lambda action, body: requests.post(f"{fake.url}/__fake__/{action}", json=body, timeout=30)  # noqa: E731
    r = post("publish", {"dataset": "2026-06-09", "count": 200, "changed": 0.05})
    assert r.json()["version"] == "244019.26.05.29.1640-4-bnet.65312" and r.json()["items"]["count"] == 200
    assert manifest(fake)["version"] == "244019.26.05.29.1640-4-bnet.65312"
    assert post("misbehave", {"kind": "maintenance", "on": "manifest", "count": 1}).ok
    assert get(fake, "/Platform/Destiny2/Manifest/").status_code == 503
    assert post("misbehave", {"kind": "teleport"}).status_code == 400
    assert post("misbehave", {"kind": "throttle", "seconds": 3}).ok
    assert post("reset", {}).json() == {"ok": True}
    assert get(fake, "/Platform/Destiny2/Manifest/").ok
    stats = requests.get(f"{fake.url}/__fake__/stats", timeout=30).json()
    assert stats["counts"]["manifest"] >= 3
    recent = stats["recent"][-1]
    assert recent["path"] == "/Platform/Destiny2/Manifest/" and recent["headers"]["X-Api-Key"] == "[redacted]"
    player = requests.get(f"{fake.url}/__fake__/player", timeout=30).json()
    assert player["bungieName"] == "Guardian#1234" and len(player["items"]) > 600


def test_stats_count_table_downloads_per_table(fake: FakeBungieServer) -> None:
    paths = manifest(fake)["jsonWorldComponentContentPaths"]["en"]
    for _ in range(2):
        requests.get(fake.url + paths["DestinyClassDefinition"], timeout=30)
    stats = fake.app.stats()
    assert stats["tables"]["DestinyClassDefinition"] == 2 and stats["counts"]["tables"] == 2


# ---------------------------------------------------------------------------------------
# OAuth
# ---------------------------------------------------------------------------------------


def authorize(fake: FakeBungieServer, state: str = "xyz") -> str:
    page = requests.get(
        f"{fake.url}/en/OAuth/Authorize", params={"client_id": "12345", "response_type": "code", "state": state}
    )
    assert page.status_code == 200 and "Guardian#1234" in page.text and "Approve" in page.text
    r = requests.post(
        f"{fake.url}/en/OAuth/Authorize",
        data={"client_id": "12345", "response_type": "code", "state": state, "approve": "1"},
        allow_redirects=False,
    )
    assert r.status_code == 302
    location = urlparse(r.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "http://127.0.0.1:8000/oauth/callback/"
    query = parse_qs(location.query)
    assert query["state"] == [state]
    return query["code"][0]


def token_request(fake: FakeBungieServer, **data: str) -> requests.Response:
    data = {"client_id": "12345", "client_secret": "fake-client-secret", **data}
    return requests.post(f"{fake.url}/Platform/App/OAuth/token/", data=data, timeout=30)


def test_the_authorization_code_flow_gives_bungies_token_response(fake: FakeBungieServer) -> None:
    code = authorize(fake)
    r = token_request(fake, grant_type="authorization_code", code=code)
    body = r.json()
    assert r.status_code == 200
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
        "membership_id",
    }
    assert (body["token_type"], body["expires_in"], body["refresh_expires_in"]) == ("Bearer", 3600, 7776000)
    assert body["membership_id"] == fake.app.player.bungie_membership_id
    # Codes are single use.
    again = token_request(fake, grant_type="authorization_code", code=code)
    assert (again.status_code, again.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "AuthorizationCodeInvalid"},
    )


def test_cancel_redirects_with_access_denied(fake: FakeBungieServer) -> None:
    page = requests.get(
        f"{fake.url}/en/OAuth/Authorize", params={"client_id": "12345", "response_type": "code", "state": "s1"}
    )
    assert "error=access_denied&amp;state=s1" in page.text
    fake.app.redirect_uri = "http://127.0.0.1:9999/cb/"
    r = requests.post(
        f"{fake.url}/en/OAuth/Authorize", data={"client_id": "12345", "state": "s1"}, allow_redirects=False
    )
    assert r.headers["Location"] == "http://127.0.0.1:9999/cb/?error=access_denied&state=s1"


def test_an_unknown_client_cannot_authorize(fake: FakeBungieServer) -> None:
    r = requests.get(f"{fake.url}/en/OAuth/Authorize", params={"client_id": "666", "response_type": "code"})
    assert r.status_code == 400


def test_refresh_tokens_rotate(fake: FakeBungieServer) -> None:
    first = token_request(fake, grant_type="authorization_code", code=authorize(fake)).json()
    second = token_request(fake, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    reuse = token_request(fake, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"


def test_client_credentials_may_come_as_http_basic(fake: FakeBungieServer) -> None:
    code = authorize(fake)
    r = requests.post(
        f"{fake.url}/Platform/App/OAuth/token/",
        data={"grant_type": "authorization_code", "code": code},
        auth=("12345", "fake-client-secret"),
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer"


def test_token_endpoint_errors_use_the_oauth_shape(fake: FakeBungieServer) -> None:
    r = token_request(fake, code="x")
    assert (r.status_code, r.json()) == (
        400,
        {"error": "invalid_request", "error_description": "Missing required parameter grant_type"},
    )
    r = requests.post(f"{fake.url}/Platform/App/OAuth/token/", data={"grant_type": "authorization_code"}, timeout=30)
    assert r.json() == {"error": "invalid_request", "error_description": "Cannot parse client_id"}
    r = token_request(fake, grant_type="authorization_code", code=authorize(fake), client_secret="wrong")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = token_request(fake, grant_type="password")
    assert r.json()["error"] == "unsupported_grant_type"


def test_expired_tokens_are_refused_until_refreshed(fake: FakeBungieServer) -> None:
    tokens = token_request(fake, grant_type="authorization_code", code=authorize(fake)).json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert get(fake, "/Platform/User/GetMembershipsForCurrentUser/", headers=auth).json()["ErrorCode"] == 1
    fake.app.expire_tokens()
    r = get(fake, "/Platform/User/GetMembershipsForCurrentUser/", headers=auth)
    assert (r.status_code, r.json()["ErrorCode"], r.json()["ErrorStatus"]) == (401, 2111, "AccessTokenHasExpired")
    fresh = token_request(fake, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).json()
    auth = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert get(fake, "/Platform/User/GetMembershipsForCurrentUser/", headers=auth).json()["ErrorCode"] == 1
    fake.app.expire_tokens(refresh=True)
    r = token_request(fake, grant_type="refresh_token", refresh_token=fresh["refresh_token"])
    assert r.json() == {"error": "invalid_grant", "error_description": "RefreshTokenExpired"}


def test_memberships_need_a_bearer_token(fake: FakeBungieServer, token: str) -> None:
    r = get(fake, "/Platform/User/GetMembershipsForCurrentUser/")
    assert (r.status_code, r.json()["ErrorCode"], r.json()["ErrorStatus"]) == (401, 99, "WebAuthRequired")
    r = get(fake, "/Platform/User/GetMembershipsForCurrentUser/", headers={"Authorization": "Bearer nonsense"})
    assert r.json()["ErrorCode"] == 99
    body = get(
        fake, "/Platform/User/GetMembershipsForCurrentUser/", headers={"Authorization": f"Bearer {token}"}
    ).json()
    data = body["Response"]
    assert data["bungieNetUser"]["uniqueName"] == "Guardian#1234"
    [membership] = data["destinyMemberships"]
    assert membership["membershipType"] == 3 and membership["crossSaveOverride"] == 3
    assert data["primaryMembershipId"] == membership["membershipId"] == "4611686018467260757"


# ---------------------------------------------------------------------------------------
# Profile and item actions
# ---------------------------------------------------------------------------------------


def profile(fake: FakeBungieServer, token: str | None, components: str = ALL_COMPONENTS) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = get(fake, PROFILE, params={"components": components}, headers=headers).json()
    assert body["ErrorCode"] == 1, body
    return body["Response"]


def test_the_profile_has_three_characters_a_vault_and_full_equipment(fake: FakeBungieServer, token: str) -> None:
    p = profile(fake, token)
    assert p["responseMintedTimestamp"] and p["secondaryComponentsMintedTimestamp"]
    assert p["profile"]["privacy"] == 1 and len(p["profile"]["data"]["characterIds"]) == 3
    classes = {c["classType"] for c in p["characters"]["data"].values()}
    assert classes == {0, 1, 2}
    vault = [i for i in p["profileInventory"]["data"]["items"] if i["bucketHash"] == 138197802]
    assert len(vault) == 600
    instances = p["itemComponents"]["instances"]["data"]
    for char_id, equipment in p["characterEquipment"]["data"].items():
        buckets = {i["bucketHash"] for i in equipment["items"]}
        assert set(WEAPON_BUCKETS) <= buckets and set(ARMOR_BUCKETS) <= buckets, char_id
        for item in equipment["items"]:
            instance = instances[item["itemInstanceId"]]
            assert instance["isEquipped"] and 1800 <= instance["primaryStat"]["value"] <= 2000
    postmaster = [i for inv in p["characterInventories"]["data"].values() for i in inv["items"] if i["location"] == 4]
    assert len(postmaster) == 6
    known = set(fake.app.current.items.hashes())
    everything = [i for inv in p["characterInventories"]["data"].values() for i in inv["items"]] + vault
    assert all(i["itemHash"] in known for i in everything)


def test_private_components_need_the_owners_token(fake: FakeBungieServer) -> None:
    p = profile(fake, None)
    assert p["profileInventory"] == {"privacy": 2} and p["characterInventories"] == {"privacy": 2}
    assert p["characterEquipment"]["privacy"] == 1 and p["profile"]["data"]["characterIds"]


def test_an_unknown_profile_is_destiny_account_not_found(fake: FakeBungieServer) -> None:
    body = get(fake, "/Platform/Destiny2/3/Profile/4611686018400000000/", params={"components": "100"}).json()
    assert (body["ErrorCode"], body["ErrorStatus"]) == (1601, "DestinyAccountNotFound")


def test_a_large_profile_has_about_1200_items() -> None:
    app = FakeBungie(profile_size="large")
    assert 1150 <= len(app.player.items) <= 1300


def find_item(fake: FakeBungieServer, place: str, char: str | None = None, **where: Any) -> dict[str, Any]:
    for item in fake.app.player_state()["items"]:
        if item["place"] == place and (char is None or item["character_id"] == char) and item["instanced"]:
            if all(item[k] == v for k, v in where.items()):
                return item
    raise LookupError(place)


def test_a_transfer_really_moves_the_item(fake: FakeBungieServer, token: str) -> None:
    char = fake.app.player.character_ids[0]
    item = find_item(fake, "inventory", char)
    body = {"itemReferenceHash": item["item_hash"], "itemId": item["key"], "characterId": char, "stackSize": 1}
    assert action(fake, token, "TransferItem", {**body, "transferToVault": True}) == {
        "Response": 0,
        "ErrorCode": 1,
        "ThrottleSeconds": 0,
        "ErrorStatus": "Success",
        "Message": "Ok",
        "MessageData": {},
    }
    assert fake.app.player.locate(item["key"])["place"] == "vault"
    vault = profile(fake, token, "102")["profileInventory"]["data"]["items"]
    assert any(i.get("itemInstanceId") == item["key"] for i in vault)
    other = fake.app.player.character_ids[1]
    assert (
        action(fake, token, "TransferItem", {**body, "characterId": other, "transferToVault": False})["ErrorCode"] == 1
    )
    assert fake.app.player.locate(item["key"])["character_id"] == other


def test_transfers_enforce_bungies_rules(fake: FakeBungieServer, token: str) -> None:
    char = fake.app.player.character_ids[0]
    equipped = find_item(fake, "equipped", char)
    body = {"itemReferenceHash": equipped["item_hash"], "itemId": equipped["key"], "characterId": char}
    assert action(fake, token, "TransferItem", {**body, "transferToVault": True})["ErrorCode"] == 1656
    assert action(fake, token, "TransferItem", {**body, "itemId": "123", "transferToVault": True})["ErrorCode"] == 1623
    wrong_hash = {**body, "itemReferenceHash": 1, "transferToVault": True}
    assert action(fake, token, "TransferItem", wrong_hash)["ErrorStatus"] == "DestinyItemNotFound"
    # Fill a bucket to 9, then one more from the vault does not fit.
    bucket = equipped["bucket_hash"]
    vaulted = [i for i in fake.app.player.vault() if i.bucket_hash == bucket]
    while len(fake.app.player.in_bucket(char, bucket)) < 9:
        v = vaulted.pop()
        v_body = {"itemReferenceHash": v.item_hash, "itemId": v.key, "characterId": char, "transferToVault": False}
        assert action(fake, token, "TransferItem", v_body)["ErrorCode"] == 1
    v = vaulted.pop()
    full = {"itemReferenceHash": v.item_hash, "itemId": v.key, "characterId": char, "transferToVault": False}
    assert action(fake, token, "TransferItem", full)["ErrorStatus"] == "DestinyNoRoomInDestination"


def test_with_bungies_limits_on_a_second_transfer_within_a_second_is_throttled(
    fake: FakeBungieServer, token: str
) -> None:
    fake.app.quirks(limits=True)
    char = fake.app.player.character_ids[0]
    first, second = [i for i in fake.app.player_state()["items"]
                     if i["place"] == "inventory" and i["character_id"] == char and i["instanced"]][:2]

    def to_vault(item: dict[str, Any]) -> dict[str, Any]:
        return action(fake, token, "TransferItem", {"itemReferenceHash": item["item_hash"], "itemId": item["key"],
                                                    "characterId": char, "transferToVault": True})

    assert to_vault(first)["ErrorCode"] == 1
    refused = to_vault(second)
    assert (refused["ErrorCode"], refused["ErrorStatus"], refused["ThrottleSeconds"]) == (
        36, "ThrottleLimitExceededMomentarily", 1
    )
    assert fake.app.player.locate(second["key"])["place"] == "inventory"  # nothing moved
    time.sleep(1.05)
    assert to_vault(second)["ErrorCode"] == 1


def test_with_bungies_limits_on_an_api_key_past_25_a_second_over_10_s_is_throttled_for_10_s(
    fake: FakeBungieServer,
) -> None:
    fake.app.quirks(limits=True)
    answers = [get(fake, "/Platform/GlobalAlerts/").json() for _ in range(251)]

    assert all(a["ErrorCode"] == 1 for a in answers[:250])
    assert (answers[250]["ErrorCode"], answers[250]["ThrottleSeconds"]) == (36, 10)
    fake.app.reset()
    assert get(fake, "/Platform/GlobalAlerts/").json()["ErrorCode"] == 1


def test_a_full_vault_refuses_more(token: str) -> None:
    with FakeBungieServer(vault_items=2000) as fake:
        fake_token = fake.app.issue_token()["access_token"]
        assert len(fake.app.player.vault()) == fake.app.player.vault_capacity
        char = fake.app.player.character_ids[0]
        item = find_item(fake, "inventory", char)
        body = {
            "itemReferenceHash": item["item_hash"],
            "itemId": item["key"],
            "characterId": char,
            "transferToVault": True,
        }
        assert action(fake, fake_token, "TransferItem", body)["ErrorCode"] == 1642


def test_actions_need_a_token(fake: FakeBungieServer) -> None:
    r = requests.post(f"{fake.url}/Platform/Destiny2/Actions/Items/EquipItem/", json={}, headers=KEY, timeout=30)
    assert (r.status_code, r.json()["ErrorCode"]) == (401, 99)


def test_equipping_swaps_with_the_equipped_item(fake: FakeBungieServer, token: str) -> None:
    char = fake.app.player.character_ids[0]
    item = find_item(fake, "inventory", char, tier_type=5)
    before = next(i for i in fake.app.player.equipped(char) if i.bucket_hash == item["bucket_hash"])
    assert action(fake, token, "EquipItem", {"itemId": item["key"], "characterId": char})["ErrorCode"] == 1
    assert fake.app.player.locate(item["key"])["place"] == "equipped"
    assert fake.app.player.locate(before.key)["place"] == "inventory"
    equipment = profile(fake, token, "205")["characterEquipment"]["data"][char]["items"]
    assert item["key"] in {i["itemInstanceId"] for i in equipment}


def test_only_items_on_that_character_can_be_equipped(fake: FakeBungieServer, token: str) -> None:
    chars = fake.app.player.character_ids
    vaulted = find_item(fake, "vault")
    assert action(fake, token, "EquipItem", {"itemId": vaulted["key"], "characterId": chars[0]})["ErrorCode"] == 1623
    elsewhere = find_item(fake, "inventory", chars[1])
    assert action(fake, token, "EquipItem", {"itemId": elsewhere["key"], "characterId": chars[0]})["ErrorCode"] == 1623
    assert action(fake, token, "EquipItem", {"itemId": elsewhere["key"], "characterId": "1"})["ErrorCode"] == 1620


def test_only_one_exotic_weapon_can_be_equipped(fake: FakeBungieServer, token: str) -> None:
    player = fake.app.player
    char = player.character_ids[0]
    kinetic, energy = WEAPON_BUCKETS[0], WEAPON_BUCKETS[1]
    first = player.add_item(111, place="inventory", character_id=char, bucket_hash=kinetic, tier_type=6)
    second = player.add_item(222, place="inventory", character_id=char, bucket_hash=energy, tier_type=6)
    assert action(fake, token, "EquipItem", {"itemId": first.key, "characterId": char})["ErrorCode"] == 1
    body = action(fake, token, "EquipItem", {"itemId": second.key, "characterId": char})
    assert (body["ErrorCode"], body["ErrorStatus"]) == (1641, "DestinyItemUniqueEquipRestricted")
    # An exotic armour piece is a different kind: allowed beside the exotic weapon.
    armor = player.add_item(
        333, place="inventory", character_id=char, bucket_hash=ARMOR_BUCKETS[0], item_type=2, tier_type=6
    )
    assert action(fake, token, "EquipItem", {"itemId": armor.key, "characterId": char})["ErrorCode"] == 1


def test_pulling_from_the_postmaster_puts_the_item_in_its_bucket(fake: FakeBungieServer, token: str) -> None:
    char = fake.app.player.character_ids[2]
    item = find_item(fake, "postmaster", char)
    body = {"itemReferenceHash": item["item_hash"], "itemId": item["key"], "characterId": char, "stackSize": 1}
    assert action(fake, token, "PullFromPostmaster", body)["ErrorCode"] == 1
    assert fake.app.player.locate(item["key"])["place"] == "inventory"
    assert action(fake, token, "PullFromPostmaster", body)["ErrorCode"] == 1623


def test_an_item_not_in_the_manifest_yet_can_be_added_to_the_profile(fake: FakeBungieServer, token: str) -> None:
    r = requests.post(f"{fake.url}/__fake__/add-item", json={"itemHash": 4000000001}, timeout=30)
    key = r.json()["itemInstanceId"]
    items = profile(fake, token, "102,300,305")
    vault = {i.get("itemInstanceId"): i for i in items["profileInventory"]["data"]["items"]}
    assert vault[key]["itemHash"] == 4000000001
    assert 4000000001 not in set(fake.app.current.items.hashes())
    assert key in items["itemComponents"]["instances"]["data"]
    body = get(fake, "/Platform/Destiny2/Manifest/DestinyInventoryItemDefinition/4000000001/").json()
    assert body["ErrorCode"] == 21


# ---------------------------------------------------------------------------------------
# Server and command line
# ---------------------------------------------------------------------------------------


def test_the_server_refuses_non_loopback_addresses() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeBungieServer(host="0.0.0.0")


def test_the_command_line_refuses_non_loopback_addresses() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "tests.fakebungie", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    assert r.returncode != 0 and "loopback" in r.stderr


def test_the_command_line_serves_the_manifest() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakebungie", "--port", str(port), "--items", "100"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(100):
            try:
                r = requests.get(f"http://127.0.0.1:{port}/Platform/Destiny2/Manifest/", headers=KEY, timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert r.json()["Response"]["version"] == "244122.26.06.10.2000-1-bnet.65386"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "GET /Platform/Destiny2/Manifest/" in err


def test_quirks_can_be_switched_on_through_misbehave_over_http(fake: FakeBungieServer) -> None:
    old = manifest(fake)["version"]
    post = lambda action, body: requests.post(f"{fake.url}/__fake__/{action}", json=body, timeout=30)  # noqa: E731
    new = post("publish", {"dataset": "2026-06-23"}).json()["version"]
    assert post("misbehave", {"kind": "flap"}).json()["flap"] is True
    assert [manifest(fake)["version"] for _ in range(2)] == [new, old]
    assert post("misbehave", {"kind": "table_404_after_publish", "count": 1}).json()["table_404_after_publish"] == 1


def test_maintenance_on_the_token_endpoint_is_http_400(fake: FakeBungieServer) -> None:
    fake.app.misbehave("maintenance", on="token", count=1)
    r = token_request(fake, grant_type="refresh_token", refresh_token="x")
    assert (r.status_code, r.json()["ErrorCode"]) == (400, 5)


def test_stats_count_each_kind_of_item_action(fake: FakeBungieServer, token: str) -> None:
    char = fake.app.player.character_ids[0]
    item = find_item(fake, "inventory", char)
    action(fake, token, "EquipItem", {"itemId": item["key"], "characterId": char})
    action(fake, token, "TransferItem", {"itemId": "1", "itemReferenceHash": 1, "characterId": char})
    counts = fake.app.stats()["counts"]
    assert (counts["actions"], counts["equipitem"], counts["transferitem"]) == (2, 1, 1)


def test_a_table_can_be_published_as_raw_bytes_with_its_own_headers_over_http(fake):
    import base64

    body = b'{"1":{"hash":1,"name":"\xff"}}'  # not even UTF-8: any body at all
    published = requests.post(f"{fake.url}/__fake__/publish", timeout=10, json={
        "version": "raw", "raw": {"DestinyHostileDefinition": base64.b64encode(body).decode()},
        "raw_headers": {"DestinyHostileDefinition": {"X-Served-By": "the fake"}},
    })
    assert published.status_code == 200

    manifest = requests.get(f"{fake.url}/Platform/Destiny2/Manifest/", headers={"X-API-Key": "fake-api-key"},
                            timeout=10).json()["Response"]
    path = manifest["jsonWorldComponentContentPaths"]["en"]["DestinyHostileDefinition"]
    served = requests.get(fake.url + path, timeout=10)

    assert served.content == body
    assert served.headers["X-Served-By"] == "the fake"


def test_several_players_each_log_in_to_their_own_account_and_move_their_own_items() -> None:
    """``players=3`` (the soak's fake): each login gets the next player, with ids,
    characters and items of its own; a refresh keeps the player; a token sees and moves
    only its own player's things."""
    with FakeBungieServer(players=3) as many:
        grants = [token_request(many, grant_type="authorization_code", code=authorize_as(many, n)).json()
                  for n in range(3)]
        members = [g["membership_id"] for g in grants]
        assert members == [p.bungie_membership_id for p in many.app.players]
        assert len(set(members)) == 3 and members[0] == many.app.player.bungie_membership_id == "14512345"
        chars = [set(p.character_ids) for p in many.app.players]
        assert not chars[0] & chars[1] and not chars[1] & chars[2]
        keys = [{key for key, item in p.items.items() if item.instanced} for p in many.app.players]
        assert not keys[0] & keys[1] and not keys[1] & keys[2]

        renewed = token_request(many, grant_type="refresh_token", refresh_token=grants[1]["refresh_token"]).json()
        assert renewed["membership_id"] == members[1]
        second = many.app.players[1]
        mine = requests.get(f"{many.url}/Platform/User/GetMembershipsForCurrentUser/",
                            headers={**KEY, "Authorization": f"Bearer {renewed['access_token']}"}, timeout=30).json()
        assert mine["Response"]["primaryMembershipId"] == second.destiny_membership_id

        path = f"/Platform/Destiny2/3/Profile/{second.destiny_membership_id}/"
        own = get(many, path, params={"components": "102"},
                  headers={"Authorization": f"Bearer {renewed['access_token']}"}).json()["Response"]
        other = get(many, path, params={"components": "102"},
                    headers={"Authorization": f"Bearer {grants[0]['access_token']}"}).json()["Response"]
        assert own["profileInventory"]["privacy"] == 1 and other["profileInventory"] == {"privacy": 2}

        item = second.vault()[0]
        body = {"itemReferenceHash": item.item_hash, "itemId": item.key, "characterId": second.character_ids[0],
                "stackSize": 1, "transferToVault": False}
        assert action(many, grants[0]["access_token"], "TransferItem", body)["ErrorCode"] == 1620
        assert action(many, renewed["access_token"], "TransferItem", body)["ErrorCode"] == 1
        assert second.locate(item.key)["character_id"] == second.character_ids[0]
        # The fourth login goes round to the first player again.
        assert many.app.issue_token()["membership_id"] == members[0]


def authorize_as(fake: FakeBungieServer, number: int) -> str:
    """An approved authorization, the page naming player ``number`` (the next in turn)."""
    name = fake.app.players[number].bungie_name
    page = requests.get(f"{fake.url}/en/OAuth/Authorize", params={"client_id": "12345", "state": "s"}, timeout=30)
    assert name in page.text
    r = requests.post(f"{fake.url}/en/OAuth/Authorize", data={"client_id": "12345", "state": "s", "approve": "1"},
                      allow_redirects=False, timeout=30)
    return parse_qs(urlparse(r.headers["Location"]).query)["code"][0]


def test_profile_latency_delays_getprofile_without_holding_up_other_requests() -> None:
    """``profile_latency`` (the players bench's Bungie-like GetProfile): the profile's
    answer is still on its way when another request, sent after it, has been answered."""
    import threading

    with FakeBungieServer(profile_latency=2.0) as slow:
        answers: list[str] = []
        fetch = threading.Thread(target=lambda: answers.append(
            get(slow, PROFILE, params={"components": "100"}).json()["Response"]["profile"]["data"]["userInfo"]
            ["membershipId"]))
        fetch.start()
        while slow.app.stats()["counts"].get("profile", 0) == 0:  # the profile request is in
            time.sleep(0.01)
        assert get(slow, "/Platform/GlobalAlerts/").json()["ErrorCode"] == 1
        assert answers == []
        fetch.join(timeout=30)
        assert answers == ["4611686018467260757"]


def test_cached_profiles_are_the_drawn_body_with_fresh_timestamps_until_an_item_moves() -> None:
    """``cache_profiles`` (many large players): the kept body is what drawing it again gives
    (one roll per item hash), only the timestamps new; a move draws it again."""
    with FakeBungieServer(cache_profiles=True) as cached:
        while not requests.get(f"{cached.url}/__fake__/state", timeout=30).json()["rolls_drawn"]:
            time.sleep(0.05)  # bounded by the pytest timeout
        token = cached.app.issue_token()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        def profile() -> dict[str, Any]:
            return dict(get(cached, PROFILE, params={"components": ALL_COMPONENTS}, headers=auth).json()["Response"])

        def undated(body: dict[str, Any]) -> bytes:
            return re.sub(rb"\d{4}-\d\d-\d\dT[\d:.]+Z", b"-", orjson.dumps(body))

        first, again = profile(), profile()
        drawn = orjson.loads(orjson.dumps(cached.app.profile_response(
            {int(c) for c in ALL_COMPONENTS.split(",")}, fragments=True, shared_rolls=True)))
        assert undated(first) == undated(again) == undated(drawn)
        assert again["responseMintedTimestamp"] >= first["responseMintedTimestamp"]
        player = cached.app.player
        item = player.vault()[0]
        body = {"itemReferenceHash": item.item_hash, "itemId": item.key, "characterId": player.character_ids[0],
                "stackSize": 1, "transferToVault": False}
        assert action(cached, token, "TransferItem", body)["ErrorCode"] == 1
        moved = profile()
        vault = {i["itemInstanceId"] for i in moved["profileInventory"]["data"]["items"] if "itemInstanceId" in i}
        assert item.key not in vault and item.key in {i.get("itemInstanceId") for i in first["profileInventory"]
                                                       ["data"]["items"]}
