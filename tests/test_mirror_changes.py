"""The change feed (`/api/manifest/changes`, manifest/changefeed.py) and the per-table
content hashes of `/api/manifest/`."""

from __future__ import annotations

import orjson
import pytest
import requests

from manifest.sync import manifest_sync
from tests.fakebungie.items import ItemSpec

pytestmark = pytest.mark.django_db

ITEMS = "DestinyInventoryItemDefinition"


def json_of(response):
    return orjson.loads(b"".join(response.streaming_content) if response.streaming else response.content)


def live_version(client) -> str:
    return json_of(client.get("/api/manifest/"))["version"]


def table_paths(fake) -> dict[str, str]:
    manifest = requests.get(fake.url + "/Platform/Destiny2/Manifest/", headers={"X-API-Key": "fake-api-key"},
                            timeout=30).json()["Response"]
    return manifest["jsonWorldComponentContentPaths"]["en"]


@pytest.fixture
def two_versions(client, synced):
    """The fake's first version synced, then a publish that changes, adds and removes items."""
    first = live_version(client)
    old_paths = table_paths(synced)
    spec = ItemSpec(changed=0.1, added=0.05, removed=0.05)
    synced.app.publish(items=spec)
    assert manifest_sync().outcome.value == "live"
    return first, old_paths, spec


def test_the_feed_lists_exactly_what_the_publish_added_changed_and_removed(client, two_versions):
    first, _, spec = two_versions
    feed = json_of(client.get("/api/manifest/changes", {"since": first, "tables": ITEMS}))

    kinds: dict[str, set[int]] = {"added": set(), "changed": set(), "removed": set()}
    for change in feed["changes"]:
        assert change["table"] == ITEMS
        kinds[change["change"]].add(change["hash"])
    assert kinds == {"added": set(spec.added_hashes()), "changed": set(spec.changed_hashes()),
                     "removed": set(spec.removed_hashes())}
    assert feed["since"] == first and feed["version"] == live_version(client)


def test_patching_the_old_files_with_the_feed_gives_the_new_files(client, two_versions, synced):
    first, old_paths, _ = two_versions
    new_paths = table_paths(synced)
    feed = json_of(client.get("/api/manifest/changes", {"since": first}))

    patched = {table: json_of(client.get(path)) for table, path in old_paths.items()}
    for change in feed["changes"]:
        table = patched.setdefault(change["table"], {})
        if change["change"] == "removed":
            del table[str(change["hash"])]
        else:
            table[str(change["hash"])] = change["definition"]
    for table, path in new_paths.items():
        assert patched[table] == requests.get(synced.url + path, timeout=60).json(), table


def test_the_feed_costs_what_changed_not_the_tables_size(client, two_versions):
    first, _, spec = two_versions
    feed = json_of(client.get("/api/manifest/changes", {"since": first}))

    # Only the item table changed in this publish: nothing of the other tables is sent.
    assert {c["table"] for c in feed["changes"]} == {ITEMS}
    assert len(feed["changes"]) == len(spec.added_hashes()) + len(spec.changed_hashes()) + len(spec.removed_hashes())


def test_since_the_live_version_nothing_changed(client, synced):
    feed = json_of(client.get("/api/manifest/changes", {"since": live_version(client)}))

    assert feed["changes"] == [] and feed["version"] == feed["since"]
    assert ITEMS in feed["tables"]


def test_tables_narrows_the_feed(client, two_versions):
    first, _, _ = two_versions
    feed = json_of(client.get("/api/manifest/changes", {"since": first, "tables": "DestinyClassDefinition"}))

    assert feed["changes"] == [] and list(feed["tables"]) == ["DestinyClassDefinition"]


def test_an_unknown_version_is_a_410_telling_to_download_in_full(client, synced):
    response = client.get("/api/manifest/changes", {"since": "1.0.0-never-seen"})

    assert response.status_code == 410
    body = json_of(response)
    assert "download the manifest in full" in body["error"]
    assert body["full_download"] == "/Platform/Destiny2/Manifest/"
    assert response["Access-Control-Allow-Origin"] == "*" and response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("query", [{}, {"since": ""}, {"since": "x", "lang": "xx"},
                                   {"since": "x", "tables": ",".join(["T"] * 201)},
                                   {"since": "x", "tables": "Destiny Class"}])
def test_a_malformed_feed_request_is_a_400_with_a_message(client, synced, query):
    response = client.get("/api/manifest/changes", query)

    assert response.status_code == 400 and json_of(response)["error"]


def test_the_feed_revalidates_with_its_tag_and_carries_cors(client, two_versions):
    first, _, _ = two_versions
    response = client.get("/api/manifest/changes", {"since": first})
    again = client.get("/api/manifest/changes", {"since": first}, HTTP_IF_NONE_MATCH=response["ETag"])

    assert response["Access-Control-Allow-Origin"] == "*"
    assert again.status_code == 304


def test_content_hashes_move_only_for_tables_whose_content_changed(client, two_versions):
    first, _, _ = two_versions
    from manifest.models import ManifestVersion

    old = {t.name: (t.sha256, t.path) for t in ManifestVersion.objects.get(version=first).tables.all()}
    new = {t["name"]: (t["content_hash"], t["path"]) for t in json_of(client.get("/api/manifest/"))["tables"]}

    for name, (content, path) in new.items():
        assert path != old[name][1], name  # a new GUID in every path
        assert (content == old[name][0]) == (name != ITEMS), name
