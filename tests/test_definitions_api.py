"""`/api/definitions/<EntityType>/<hash>/` answers as Bungie's entity endpoint does, and
`/api/manifest/` tells what is live."""

from __future__ import annotations

import pytest
import requests
from django.core.cache import cache

from manifest.sync import manifest_sync
from tests.fakebungie import spec

pytestmark = pytest.mark.django_db

HUNTER = 671679327
V0616 = "244122.26.06.10.2000-1-bnet.65386"


def bungie_says(fake, entity: str, entry_hash: int) -> dict:
    return requests.get(
        f"{fake.url}/Platform/Destiny2/Manifest/{entity}/{entry_hash}/",
        headers={"X-API-Key": "fake-api-key"}, timeout=10,
    ).json()


@pytest.mark.parametrize(
    "entity, entry_hash",
    [("DestinyClassDefinition", HUNTER), ("DestinyStatDefinition", 1943323491),
     ("DestinySandboxPerkDefinition", None)],
)
def test_it_answers_exactly_as_bungies_entity_endpoint(client, synced, entity, entry_hash):
    if entry_hash is None:
        from manifest.models import Definition

        entry_hash = Definition.objects.filter(entity_type=entity).values_list("hash", flat=True).first()

    ours = client.get(f"/api/definitions/{entity}/{entry_hash}/")

    assert ours.status_code == 200
    assert ours["Content-Type"] == "application/json"
    assert ours.json() == bungie_says(synced, entity, entry_hash)


@pytest.mark.parametrize(
    "entity, entry_hash", [("DestinyClassDefinition", HUNTER), ("DestinyStatDefinition", 1943323491)]
)
def test_it_matches_the_specs_schemas(client, synced, entity, entry_hash):
    body = client.get(f"/api/definitions/{entity}/{entry_hash}/").json()

    spec.response_validator("/Destiny2/Manifest/{entityType}/{hashIdentifier}/", strict=False).validate(body)
    spec.schema_validator(spec.definition_schema_name(entity), strict=False).validate(body["Response"])


def test_its_errors_match_the_specs_envelope(client, synced):
    for url in ("/api/definitions/DestinyClassDefinition/12345/", "/api/definitions/DestinyClassDefinition/x/"):
        spec.error_envelope_validator().validate(client.get(url).json())


def test_it_sends_etag_and_cache_control_and_honours_if_none_match(client, synced):
    first = client.get(f"/api/definitions/DestinyClassDefinition/{HUNTER}/")
    again = client.get(f"/api/definitions/DestinyClassDefinition/{HUNTER}/", HTTP_IF_NONE_MATCH=first["ETag"])

    assert first["ETag"] and "max-age" in first["Cache-Control"]
    assert again.status_code == 304


def test_an_unknown_hash_is_a_404_in_bungies_envelope(client, synced):
    response = client.get("/api/definitions/DestinyClassDefinition/12345/")

    assert response.status_code == 404
    assert response.json()["ErrorCode"] == 21
    assert response.json()["ErrorStatus"] == "NotFound"


@pytest.mark.parametrize("entity", ["DestinyNoSuchDefinition", "Destiny%C3%A9Definition", "a%20b", "x" * 200])
def test_an_unknown_entity_type_is_a_404_in_bungies_envelope(client, synced, entity):
    response = client.get(f"/api/definitions/{entity}/{HUNTER}/")

    assert response.status_code == 404
    assert response.json()["ErrorCode"] == 18


@pytest.mark.parametrize("bad", ["abc", "1.5", "99999999999", "-99999999999", "%20"])
def test_a_malformed_hash_is_a_400(client, synced, bad):
    response = client.get(f"/api/definitions/DestinyClassDefinition/{bad}/")

    assert response.status_code == 400
    assert response.json()["ErrorCode"] == 7


def test_the_signed_hash_form_is_accepted(client, synced):
    signed = HUNTER - (1 << 32) if HUNTER >= 1 << 31 else HUNTER

    assert client.get(f"/api/definitions/DestinyClassDefinition/{signed}/").status_code == 200


def test_a_language_that_is_not_kept_is_a_400(client, synced):
    response = client.get(f"/api/definitions/DestinyClassDefinition/{HUNTER}/?lang=xx")

    assert response.status_code == 400


def test_a_kept_language_is_served_and_falls_back_to_english_per_definition(client, bungie, settings):
    settings.MANIFEST_LANGUAGES = ["en", "fr"]
    assert manifest_sync().outcome == "live"
    from manifest.models import Definition

    french = client.get(f"/api/definitions/DestinyClassDefinition/{HUNTER}/?lang=fr").json()["Response"]
    assert french["displayProperties"]["name"].startswith("[fr] ")

    # The French translation of one entry lags behind: English is served for it.
    Definition.objects.filter(entity_type="DestinyClassDefinition", language="fr", hash=HUNTER).delete()
    cache.clear()
    lagging = client.get(f"/api/definitions/DestinyClassDefinition/{HUNTER}/?lang=fr")
    assert lagging.status_code == 200
    assert lagging.json()["Response"]["displayProperties"]["name"] == "Hunter"


def test_an_older_version_answers_from_history(client, bungie):
    bungie.app.publish("2026-06-09")
    manifest_sync()
    from manifest.models import Definition

    perk = Definition.objects.filter(entity_type="DestinySandboxPerkDefinition").order_by("hash").first()
    bungie.app.publish("2026-06-16", version="next")
    manifest_sync()
    changed = Definition.objects.filter(entity_type="DestinySandboxPerkDefinition", valid_to__isnull=False).first()
    assert changed is not None

    old = client.get(
        f"/api/definitions/DestinySandboxPerkDefinition/{changed.hash}/?version=244019.26.05.29.1640-4-bnet.65312"
    )
    new = client.get(f"/api/definitions/DestinySandboxPerkDefinition/{changed.hash}/")

    assert old.status_code == new.status_code == 200
    assert old.json()["Response"] == changed.data
    assert old.json()["Response"] != new.json()["Response"]
    assert "immutable" in old["Cache-Control"]
    assert perk is not None


def test_an_unknown_version_is_a_404(client, synced):
    response = client.get(f"/api/definitions/DestinyClassDefinition/{HUNTER}/?version=nope")

    assert response.status_code == 404


def test_before_any_sync_it_is_a_404_not_a_500(client, db):
    assert client.get(f"/api/definitions/DestinyClassDefinition/{HUNTER}/").status_code == 404
    assert client.get("/api/manifest/").status_code == 404


def test_the_manifest_endpoint_lists_the_live_version_and_its_tables(client, synced):
    body = client.get("/api/manifest/").json()

    assert body["version"] == V0616
    assert body["live_at"]
    names = {t["name"] for t in body["tables"]}
    assert {"DestinyClassDefinition", "DestinyInventoryItemDefinition"} <= names
