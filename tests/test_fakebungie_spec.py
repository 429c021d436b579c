"""Every /Platform answer of the fake validates against Bungie's own OpenAPI spec.

Responses the fake builds (profile, memberships, manifest, actions, envelopes) are checked
strictly (no field the spec does not know); real definition tables leniently (they are
newer than the spec). See ``tests/fakebungie/spec.py`` for how the spec's wire-format
quirks (int64 as strings, nullable) are handled.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

from tests.fakebungie import FakeBungie, FakeBungieServer, ItemSpec
from tests.fakebungie.app import URLS
from tests.fakebungie.datasets import ITEM_TABLE
from tests.fakebungie.envelopes import _MESSAGES
from tests.fakebungie.spec import (
    definition_schema_name,
    error_codes,
    error_envelope_validator,
    raw_spec,
    response_validator,
    schema_validator,
)

KEY = {"X-API-Key": "fake-api-key"}
PROFILE = "/Platform/Destiny2/3/Profile/4611686018467260757/"


@pytest.fixture
def auth(fake: FakeBungieServer) -> dict[str, str]:
    return {**KEY, "Authorization": f"Bearer {fake.app.issue_token()['access_token']}"}


def assert_valid(validator: Draft202012Validator, body: Any) -> None:
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    details = "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:10])
    assert not errors, f"{len(errors)} schema errors:\n{details}"


def get(fake: FakeBungieServer, path: str, headers: dict[str, str] | None = None, **params: str) -> Any:
    return requests.get(fake.url + path, headers=headers or KEY, params=params, timeout=30).json()


def test_every_platform_route_of_the_fake_is_in_the_spec() -> None:
    spec_paths = {p.lower() for p in raw_spec()["paths"]}
    for rule in URLS.iter_rules():
        if not rule.rule.startswith("/platform/") or "oauth/token" in rule.rule:
            continue  # the token endpoint is OAuth's, described by securitySchemes
        generic = rule.rule.removeprefix("/platform").replace("<", "{").replace(">", "}")
        generic = generic.replace("{entity_type}", "{entitytype}").replace("{hash_id}", "{hashidentifier}")
        generic = generic.replace("{membership_type}", "{membershiptype}").replace(
            "{membership_id}", "{destinymembershipid}"
        )
        assert generic in spec_paths, rule.rule


def test_the_oauth_urls_are_the_specs() -> None:
    flow = raw_spec()["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == "https://www.bungie.net/en/OAuth/Authorize"
    assert flow["tokenUrl"] == flow["refreshUrl"] == "https://www.bungie.net/Platform/App/OAuth/token/"
    routes = {r.rule for r in URLS.iter_rules()}
    assert "/en/oauth/authorize" in routes and "/platform/app/oauth/token/" in routes


def test_every_error_the_fake_can_answer_is_a_real_platform_error_code() -> None:
    codes = error_codes()
    for code, (status, _message) in _MESSAGES.items():
        assert codes[code] == status, code


def test_the_manifest_matches_the_spec(fake: FakeBungieServer) -> None:
    assert_valid(response_validator("/Destiny2/Manifest/"), get(fake, "/Platform/Destiny2/Manifest/"))


def test_entity_lookups_match_the_spec(fake: FakeBungieServer) -> None:
    validator = response_validator("/Destiny2/Manifest/{entityType}/{hashIdentifier}/", strict=False)
    item_hash = fake.app.current.items.hashes()[0]
    for path in (
        "/Platform/Destiny2/Manifest/DestinyClassDefinition/3655393761/",
        f"/Platform/Destiny2/Manifest/DestinyInventoryItemDefinition/{item_hash}/",
    ):
        assert_valid(validator, get(fake, path))


def test_global_alerts_match_the_spec(fake: FakeBungieServer) -> None:
    validator = response_validator("/GlobalAlerts/")
    assert_valid(validator, get(fake, "/Platform/GlobalAlerts/"))
    fake.app.set_alerts([{"key": "k", "html": "<b>Maintenance</b>"}])
    assert_valid(validator, get(fake, "/Platform/GlobalAlerts/"))


def test_memberships_match_the_spec(fake: FakeBungieServer, auth: dict[str, str]) -> None:
    body = get(fake, "/Platform/User/GetMembershipsForCurrentUser/", headers=auth)
    assert body["ErrorCode"] == 1
    assert_valid(response_validator("/User/GetMembershipsForCurrentUser/"), body)


@pytest.mark.parametrize("signed_in", [True, False])
def test_the_profile_matches_the_spec(fake: FakeBungieServer, auth: dict[str, str], signed_in: bool) -> None:
    body = get(fake, PROFILE, headers=auth if signed_in else KEY, components="100,102,103,200,201,205,300,304,305,310")
    assert body["ErrorCode"] == 1
    assert_valid(response_validator("/Destiny2/{membershipType}/Profile/{destinyMembershipId}/"), body)


def test_item_actions_match_the_spec(fake: FakeBungieServer, auth: dict[str, str]) -> None:
    player = fake.app.player
    char = player.character_ids[0]
    item = player.in_bucket(char, player.equipped(char)[0].bucket_hash)[0]
    postmaster = player.on_character(char, "postmaster")[0]
    # Request bodies as the spec types them: ids are int64, sent here as JSON numbers.
    requests_by_path = {
        "/Destiny2/Actions/Items/TransferItem/": {
            "itemReferenceHash": item.item_hash,
            "stackSize": 1,
            "transferToVault": True,
            "itemId": int(item.key),
            "characterId": int(char),
            "membershipType": 3,
        },
        "/Destiny2/Actions/Items/EquipItem/": {
            "itemId": int(postmaster.key),
            "characterId": int(char),
            "membershipType": 3,
        },
        "/Destiny2/Actions/Items/PullFromPostmaster/": {
            "itemReferenceHash": postmaster.item_hash,
            "stackSize": 1,
            "itemId": int(postmaster.key),
            "characterId": int(char),
            "membershipType": 3,
        },
    }
    spec = raw_spec()
    for path, request_body in requests_by_path.items():
        schema_ref = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        original = Draft202012Validator(
            {"$ref": "#" + schema_ref.removeprefix("#")} | {"components": spec["components"]}
        )
        assert_valid(original, request_body)  # the spec's own (unconverted) request types
        body = requests.post(f"{fake.url}/Platform{path}", json=request_body, headers=auth, timeout=30).json()
        assert_valid(response_validator(path, "post"), body)
        assert body["ErrorCode"] in (1, 1623), body  # EquipItem on a postmaster item: not on the character


def test_error_envelopes_match_the_spec(fake: FakeBungieServer) -> None:
    validator = error_envelope_validator()
    bodies = [
        requests.get(fake.url + "/Platform/Destiny2/Manifest/", timeout=30).json(),  # no API key
        get(fake, "/Platform/User/GetMembershipsForCurrentUser/"),  # no token
        get(fake, "/Platform/Destiny2/Manifest/DestinyClassDefinition/1/"),
        get(fake, "/Platform/Destiny2/3/Profile/1/", components="100"),
    ]
    for kind in ("maintenance", "throttle", "expired_token", "invalid_token"):
        fake.app.misbehave(kind, count=1)
        bodies.append(get(fake, "/Platform/Destiny2/Manifest/"))
    codes = error_codes()
    for body in bodies:
        assert_valid(validator, body)
        assert body["ErrorCode"] != 1 and codes[body["ErrorCode"]] == body["ErrorStatus"]


def test_every_served_table_matches_its_definition_schema(fake: FakeBungieServer) -> None:
    manifest = get(fake, "/Platform/Destiny2/Manifest/")["Response"]
    for table, path in manifest["jsonWorldComponentContentPaths"]["en"].items():
        name = definition_schema_name(table)
        assert name, f"{table} is not a definition the spec knows"
        validator = schema_validator(name, strict=False)
        entries = requests.get(fake.url + path, timeout=30).json()
        for entry in list(entries.values())[:200]:
            assert_valid(validator, entry)


def test_generated_items_use_only_fields_the_spec_knows() -> None:
    validator = schema_validator("Destiny.Definitions.DestinyInventoryItemDefinition", strict=True)
    for item in ItemSpec(count=1000).iter_items():
        assert_valid(validator, item)
    assert ITEM_TABLE == "DestinyInventoryItemDefinition"


def test_the_large_profiles_rolls_match_the_spec() -> None:
    with FakeBungieServer(FakeBungie(profile_size="large")) as server:
        headers = {**KEY, "Authorization": f"Bearer {server.app.issue_token()['access_token']}"}
        body = get(server, PROFILE, headers=headers, components="102,201,205,300,304,305,310")
    assert body["ErrorCode"] == 1
    components = body["Response"]["itemComponents"]
    assert {"instances", "stats", "sockets", "reusablePlugs"} <= set(components)
    assert len(components["sockets"]["data"]) > 1100
    assert_valid(response_validator("/Destiny2/{membershipType}/Profile/{destinyMembershipId}/"), body)


def test_generated_plugs_and_tables_use_only_fields_the_spec_knows() -> None:
    from tests.fakebungie import plugs

    validator = schema_validator("Destiny.Definitions.DestinyInventoryItemDefinition", strict=True)
    for row in plugs.extra_item_rows(ItemSpec()):
        assert_valid(validator, row)
    for table, rows in plugs.GENERATED_TABLES.items():
        name = definition_schema_name(table)
        assert name
        table_validator = schema_validator(name, strict=True)
        for row in rows().values():
            assert_valid(table_validator, row)
