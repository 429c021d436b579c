"""What `make demo` (and `make prod`) tell a newcomer to try: the publish command in the
banner makes a new manifest version whose changes show on /manifest/<version>/, every
time it is run."""

from __future__ import annotations

import shlex

import pytest
import requests

from bin.stack import publish_command
from manifest.sync import manifest_sync
from tests.fakebungie.server import FakeBungieServer

pytestmark = pytest.mark.django_db

ITEM_TABLE = "DestinyInventoryItemDefinition"


def run_banner_publish(fake: FakeBungieServer) -> str:
    """POST exactly what the banner's curl command posts; return the new version."""
    argv = shlex.split(publish_command(fake.url))
    assert argv[:3] == ["curl", "-X", "POST"] and argv[4] == "-d"
    response = requests.post(argv[3], data=argv[5], timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["version"]


def test_the_banners_publish_command_makes_a_version_with_items_added_changed_and_removed(client, bungie):
    assert manifest_sync().outcome == "live"

    for _ in range(2):  # a newcomer runs it more than once: each run has a diff of its own
        version = run_banner_publish(bungie)
        result = manifest_sync()
        assert (result.outcome, result.version) == ("live", version)
        assert result.added > 0 and result.changed > 0 and result.removed > 0, result.summary()

        page = client.get(f"/manifest/{version}/")
        assert page.status_code == 200
        tables = {t.table.name: t.table for t in page.context["tables"]}
        items = tables[ITEM_TABLE]
        assert items.added > 0 and items.modified > 0 and items.removed > 0
        assert f"{items.added} added, {items.modified} changed, {items.removed} removed" in page.content.decode()
