"""One definition's timeline (manifest/timeline.py): every version in which it changed,
with the field diff, as JSON (`/api/definitions/<Type>/<hash>/timeline/`) and as a page
(`/definitions/<Type>/<hash>/timeline/`)."""

from __future__ import annotations

import re

import pytest

from manifest.sync import manifest_sync
from manifest.timeline import field_changes
from tests.fakebungie.items import ItemSpec

pytestmark = pytest.mark.django_db

ITEMS = "DestinyInventoryItemDefinition"


@pytest.fixture
def published(client, synced):
    """Two versions: the fake's first, then a publish that changes, adds and removes items."""
    first = client.get("/api/manifest/").json()["version"]
    spec = ItemSpec(changed=0.1, added=0.05, removed=0.05)
    synced.app.publish(items=spec)
    assert manifest_sync().outcome.value == "live"
    second = client.get("/api/manifest/").json()["version"]
    return first, second, spec


def events(client, entry_hash: int) -> list[dict]:
    response = client.get(f"/api/definitions/{ITEMS}/{entry_hash}/timeline/")
    assert response.status_code == 200, response.content
    return response.json()["events"]


def resolve(data, path: str):
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        data = data[int(part[1:-1])] if part.startswith("[") else data.get(part)
    return data


def test_a_changed_definition_shows_both_versions_and_the_fields_that_changed(client, published):
    first, second, spec = published
    entry_hash = min(spec.changed_hashes())
    got = events(client, entry_hash)

    assert [(e["change"], e["version"]) for e in got] == [("added", first), ("changed", second)]
    assert got[1]["fields"]
    old = ItemSpec().item(entry_hash)
    new = spec.item(entry_hash)
    for change in got[1]["fields"]:
        assert change["old"] == (None if change["kind"] == "added" else resolve(old, change["path"]))
        assert change["new"] == (None if change["kind"] == "removed" else resolve(new, change["path"]))


def test_added_removed_and_untouched_definitions(client, published):
    first, second, spec = published

    assert [(e["change"], e["version"]) for e in events(client, min(spec.added_hashes()))] == [("added", second)]
    assert [(e["change"], e["version"]) for e in events(client, min(spec.removed_hashes()))] == [
        ("added", first), ("removed", second)]
    untouched = min(set(spec.hashes()) - spec.changed_hashes() - spec.added_hashes())
    assert [(e["change"], e["version"]) for e in events(client, untouched)] == [("added", first)]


def test_the_page_lists_the_versions_and_fields(client, published):
    first, second, spec = published
    entry_hash = min(spec.changed_hashes())
    page = client.get(f"/definitions/{ITEMS}/{entry_hash}/timeline/")

    assert page.status_code == 200
    html = page.content.decode()
    assert first in html and second in html
    field = events(client, entry_hash)[1]["fields"][0]["path"]
    assert field in html


@pytest.mark.parametrize("url, status", [
    (f"/api/definitions/{ITEMS}/12345/timeline/", 404),
    (f"/api/definitions/{ITEMS}/nope/timeline/", 400),
    (f"/api/definitions/{ITEMS}/12345/timeline/?lang=xx", 400),
    ("/api/definitions/Destiny%C3%A9Definition/12345/timeline/", 404),
    (f"/definitions/{ITEMS}/12345/timeline/", 404),
    (f"/definitions/{ITEMS}/nope/timeline/", 400),
])
def test_unknown_and_malformed_requests_are_4xx_with_a_message(client, synced, url, status):
    response = client.get(url)

    assert response.status_code == status
    assert response.content


def test_field_changes_name_each_leaf_by_its_path():
    old = {"a": {"b": 1, "c": [1, 2]}, "gone": True, "list": [1]}
    new = {"a": {"b": 2, "c": [1, 3]}, "new": "x", "list": [1, 2]}

    got = {(c.path, c.kind, repr(c.old), repr(c.new)) for c in field_changes(old, new)}

    assert got == {("a.b", "changed", "1", "2"), ("a.c[1]", "changed", "2", "3"), ("gone", "removed", "True", "None"),
                   ("new", "added", "None", "'x'"), ("list", "changed", "[1]", "[1, 2]")}
