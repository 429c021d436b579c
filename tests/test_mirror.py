"""DVR as a Bungie manifest mirror: Bungie's paths and answers (manifest/mirror.py), the
headers a CDN and a browser need (manifest/mirror_http.py), the rate limit."""

from __future__ import annotations

import gzip
import zlib

import brotli
import orjson
import pytest
import requests

from tests.fakebungie import spec

pytestmark = pytest.mark.django_db

HUNTER = 671679327
KEY = {"X-API-Key": "fake-api-key"}


def bungie_get(fake, path: str, **params) -> requests.Response:
    return requests.get(fake.url + path, headers=KEY, params=params, timeout=60)


def bungie_manifest(fake) -> dict:
    return bungie_get(fake, "/Platform/Destiny2/Manifest/").json()["Response"]


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def json_of(response):
    return orjson.loads(body_of(response))


# ----------------------------------------------------------------------------------------
# /Platform/Destiny2/Manifest/
# ----------------------------------------------------------------------------------------
def test_the_manifest_is_bungies_envelope_and_response_for_the_live_version(client, synced):
    ours = client.get("/Platform/Destiny2/Manifest/")

    assert ours.status_code == 200 and ours["Content-Type"] == "application/json"
    body = json_of(ours)
    theirs = bungie_get(synced, "/Platform/Destiny2/Manifest/").json()
    # Every field of Bungie's Response, GUIDs kept; the JSON paths of the kept language only.
    expected = dict(theirs["Response"])
    for key in ("jsonWorldContentPaths", "jsonWorldComponentContentPaths"):
        expected[key] = {"en": theirs["Response"][key]["en"]}
    assert body == {**theirs, "Response": expected}
    spec.response_validator("/Destiny2/Manifest/", strict=False).validate(body)


@pytest.mark.parametrize("path", ["/Platform/Destiny2/Manifest", "/platform/destiny2/manifest/",
])
def test_the_manifest_path_is_bungies_in_its_spellings(client, synced, path):
    assert client.get(path).status_code == 200


def test_without_a_manifest_the_mirror_says_so_in_bungies_envelope(client, db):
    response = client.get("/Platform/Destiny2/Manifest/")

    assert response.status_code == 503
    assert json_of(response)["ErrorStatus"] == "SystemDisabled"
    assert response["Cache-Control"] == "no-store"
    assert response["Access-Control-Allow-Origin"] == "*"


# ----------------------------------------------------------------------------------------
# /Platform/Destiny2/Manifest/{entityType}/{hash}/
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("slash", ["/", ""])
def test_an_entity_is_bungies_answer_with_or_without_the_slash(client, synced, slash):
    ours = client.get(f"/Platform/Destiny2/Manifest/DestinyClassDefinition/{HUNTER}{slash}")

    assert ours.status_code == 200
    assert json_of(ours) == bungie_get(synced, f"/Platform/Destiny2/Manifest/DestinyClassDefinition/{HUNTER}/").json()


def test_an_entity_by_its_signed_hash_is_the_same_entity(client, synced):
    signed = HUNTER - (1 << 32) if HUNTER >= 1 << 31 else HUNTER
    ours = client.get(f"/Platform/Destiny2/Manifest/DestinyClassDefinition/{signed}/")

    assert json_of(ours)["Response"]["hash"] == HUNTER


def test_an_entity_reads_bungies_lc_beside_dvrs_lang(client, synced, settings):
    from manifest.sync import manifest_sync

    settings.MANIFEST_LANGUAGES = ["en", "fr"]
    manifest_sync(force=True)
    french_table = bungie_manifest(synced)["jsonWorldComponentContentPaths"]["fr"]["DestinyClassDefinition"]
    french = requests.get(synced.url + french_table, timeout=30).json()[str(HUNTER)]
    path = f"/Platform/Destiny2/Manifest/DestinyClassDefinition/{HUNTER}/"

    assert json_of(client.get(path, {"lc": "fr"}))["Response"] == french
    assert json_of(client.get(path, {"lang": "fr"}))["Response"] == french
    assert json_of(client.get(path))["Response"] != french


@pytest.mark.parametrize(
    "path, status, code",
    [
        ("/Platform/Destiny2/Manifest/DestinyClassDefinition/1/", 404, 21),
        ("/Platform/Destiny2/Manifest/DestinyNoSuchDefinition/1/", 404, 18),
        ("/Platform/Destiny2/Manifest/DestinyClassDefinition/notahash/", 400, 18),
        ("/Platform/Destiny2/Manifest/Destiny%C3%A9Definition/1/", 404, 18),
    ],
)
def test_entity_errors_are_bungies_envelope_and_codes(client, synced, path, status, code):
    ours = client.get(path)
    theirs = requests.get(synced.url + path, headers=KEY, timeout=30).json()

    assert ours.status_code == status
    body = json_of(ours)
    assert (body["ErrorCode"], body["ErrorStatus"], body["Message"]) == (
        theirs["ErrorCode"], theirs["ErrorStatus"], theirs["Message"])
    assert "Response" not in body
    spec.error_envelope_validator().validate(body)
    assert ours["Cache-Control"] == "no-store" and ours["Access-Control-Allow-Origin"] == "*"


def test_a_hash_beyond_32_bits_is_a_400(client, synced):
    response = client.get("/Platform/Destiny2/Manifest/DestinyClassDefinition/99999999999/")

    assert response.status_code == 400 and json_of(response)["ErrorStatus"] == "InvalidParameters"


def test_an_unkept_language_is_a_400(client, synced):
    response = client.get(f"/Platform/Destiny2/Manifest/DestinyClassDefinition/{HUNTER}/", {"lc": "xx"})

    assert response.status_code == 400 and json_of(response)["ErrorCode"] == 18


# ----------------------------------------------------------------------------------------
# /common/destiny2_content/json/<lang>/<Table>-<guid>.json and the aggregate
# ----------------------------------------------------------------------------------------
def test_every_table_file_is_json_equal_to_bungies_and_streamed(client, synced):
    paths = bungie_manifest(synced)["jsonWorldComponentContentPaths"]["en"]
    for table, path in paths.items():
        ours = client.get(path)
        assert ours.status_code == 200, table
        assert ours.streaming, table
        assert json_of(ours) == requests.get(synced.url + path, timeout=60).json(), table


def test_the_aggregate_is_json_equal_to_bungies(client, synced):
    path = bungie_manifest(synced)["jsonWorldContentPaths"]["en"]
    ours = client.get(path)

    assert ours.status_code == 200 and ours.streaming
    assert json_of(ours) == requests.get(synced.url + path, timeout=120).json()


def test_every_stored_version_keeps_its_files(client, synced):
    from manifest.sync import manifest_sync
    from tests.fakebungie.items import ItemSpec

    old = bungie_manifest(synced)["jsonWorldComponentContentPaths"]["en"]["DestinyInventoryItemDefinition"]
    synced.app.publish(items=ItemSpec(changed=0.1, added=0.05, removed=0.05))
    assert manifest_sync().outcome.value == "live"
    new = bungie_manifest(synced)["jsonWorldComponentContentPaths"]["en"]["DestinyInventoryItemDefinition"]

    assert old != new
    for path in (old, new):
        assert json_of(client.get(path)) == requests.get(synced.url + path, timeout=60).json()
    assert json_of(client.get(old)) != json_of(client.get(new))


def test_the_doubled_slash_some_clients_send_is_the_same_path(synced_site, bungie):
    path = bungie_manifest(bungie)["jsonWorldComponentContentPaths"]["en"]["DestinyClassDefinition"]
    response = requests.get(synced_site + "/" + path, timeout=30)

    assert response.status_code == 200
    assert response.json() == requests.get(bungie.url + path, timeout=30).json()
    assert requests.get(synced_site + "//Platform/Destiny2/Manifest/", timeout=30).json()["ErrorCode"] == 1


@pytest.mark.parametrize("path", [
    "/common/destiny2_content/json/en/DestinyClassDefinition-00000000-0000-0000-0000-000000000000.json",
    "/common/destiny2_content/json/xx/DestinyClassDefinition-00000000-0000-0000-0000-000000000000.json",
    "/common/destiny2_content/json/en/aggregate-00000000-0000-0000-0000-000000000000.json",
    "/common/destiny2_content/json/en/nothing.txt",
])
def test_an_unknown_file_is_a_404_envelope_never_cached(client, synced, path):
    response = client.get(path)

    assert response.status_code == 404
    assert json_of(response)["ErrorCode"] == 21
    assert response["Cache-Control"] == "no-store" and response["Access-Control-Allow-Origin"] == "*"


# ----------------------------------------------------------------------------------------
# HEAD, OPTIONS, other methods
# ----------------------------------------------------------------------------------------
def mirror_paths(fake) -> list[str]:
    manifest = bungie_manifest(fake)
    return ["/Platform/Destiny2/Manifest/", f"/Platform/Destiny2/Manifest/DestinyClassDefinition/{HUNTER}/",
            manifest["jsonWorldComponentContentPaths"]["en"]["DestinyClassDefinition"],
            manifest["jsonWorldContentPaths"]["en"]]


def test_head_answers_the_headers_of_get_without_a_body(client, synced):
    for path in mirror_paths(synced):
        get, head = client.get(path), client.head(path)
        assert head.status_code == 200, path
        assert body_of(head) == b"", path
        assert head["ETag"] == get["ETag"] and head["Cache-Control"] == get["Cache-Control"], path


def test_a_preflight_allows_any_origin_with_the_api_key_and_authorization(client, synced):
    for path in mirror_paths(synced):
        response = client.options(path, HTTP_ORIGIN="http://127.0.0.2:9000",
                                  HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                                  HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key, authorization")
        assert response.status_code == 204, path
        assert response["Access-Control-Allow-Origin"] == "*"
        allowed = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
        assert {"x-api-key", "authorization"} <= allowed
        assert "GET" in response["Access-Control-Allow-Methods"]


def test_a_post_is_a_405_in_bungies_envelope_with_cors(client, synced):
    response = client.post("/Platform/Destiny2/Manifest/")

    assert response.status_code == 405
    assert json_of(response)["ErrorCode"] == 18 and response["Access-Control-Allow-Origin"] == "*"


# ----------------------------------------------------------------------------------------
# Headers: CORS, ETag / If-None-Match, Cache-Control, compression
# ----------------------------------------------------------------------------------------
def test_every_answer_carries_cors(client, synced):
    for path in mirror_paths(synced):
        assert client.get(path)["Access-Control-Allow-Origin"] == "*", path


def test_nothing_in_a_mirror_answer_keeps_a_cdn_from_caching_it(client, synced):
    for path in mirror_paths(synced):
        response = client.get(path)
        assert not response.cookies and not response.has_header("Set-Cookie"), path
        assert "cookie" not in response.get("Vary", "").lower(), path
        assert response["Vary"] == "Accept-Encoding", path


def test_guid_paths_are_immutable_and_the_manifest_short_lived(client, synced):
    manifest, _, table, aggregate = mirror_paths(synced)

    assert client.get(table)["Cache-Control"] == "public, max-age=31536000, immutable"
    assert client.get(aggregate)["Cache-Control"] == "public, max-age=31536000, immutable"
    short = client.get(manifest)["Cache-Control"]
    assert short.startswith("public, max-age=") and int(short.rsplit("=", 1)[1]) <= 300


@pytest.mark.parametrize("header", ['{tag}', 'W/{tag}', '"nope", {tag}', '*', 'W/"nope",W/{tag}'])
def test_if_none_match_is_a_304_without_a_body(client, synced, header):
    for path in mirror_paths(synced):
        first = client.get(path)
        tag = first["ETag"]
        assert tag.startswith('"') and not tag.startswith("W/"), path  # strong
        again = client.get(path, HTTP_IF_NONE_MATCH=header.format(tag=tag))
        assert again.status_code == 304, (path, header)
        assert body_of(again) == b""
        assert again["ETag"] == tag and again["Access-Control-Allow-Origin"] == "*"


def test_a_tag_that_does_not_match_gets_the_body(client, synced):
    for path in mirror_paths(synced):
        assert client.get(path, HTTP_IF_NONE_MATCH='"nope", W/"other"').status_code == 200


def test_tables_of_different_content_have_different_tags(client, synced):
    paths = bungie_manifest(synced)["jsonWorldComponentContentPaths"]["en"]
    tags = {client.get(path)["ETag"] for path in paths.values()}

    assert len(tags) == len(paths)


@pytest.mark.parametrize("encoding, decode", [("gzip", gzip.decompress), ("br", brotli.decompress)])
def test_compression_when_asked_streamed_for_files(client, synced, encoding, decode):
    for path in mirror_paths(synced):
        plain = body_of(client.get(path, HTTP_ACCEPT_ENCODING="identity"))
        packed = client.get(path, HTTP_ACCEPT_ENCODING=f"{encoding}, deflate;q=0.5")
        assert packed["Content-Encoding"] == encoding, path
        assert "Accept-Encoding" in packed["Vary"]
        assert orjson.loads(decode(body_of(packed))) == orjson.loads(plain), path
        # The encoded representation has its own strong tag, and revalidates.
        again = client.get(path, HTTP_ACCEPT_ENCODING=encoding, HTTP_IF_NONE_MATCH=packed["ETag"])
        assert again.status_code == 304


def test_br_is_preferred_and_q_zero_refuses(client, synced):
    _, _, table, _ = mirror_paths(synced)

    assert client.get(table, HTTP_ACCEPT_ENCODING="gzip, deflate, br")["Content-Encoding"] == "br"
    assert client.get(table, HTTP_ACCEPT_ENCODING="br;q=0, gzip")["Content-Encoding"] == "gzip"
    assert not client.get(table, HTTP_ACCEPT_ENCODING="br;q=0, gzip;q=0").has_header("Content-Encoding")


def test_a_streamed_gzip_body_is_one_valid_stream(client, synced):
    _, _, _, aggregate = mirror_paths(synced)
    response = client.get(aggregate, HTTP_ACCEPT_ENCODING="gzip")
    chunks = list(response.streaming_content)

    assert len(chunks) > 1  # compressed as it streams, not in one piece at the end
    assert orjson.loads(zlib.decompress(b"".join(chunks), 31))


# ----------------------------------------------------------------------------------------
# Rate limit
# ----------------------------------------------------------------------------------------
def test_the_mirror_is_rate_limited_per_address_with_retry_after(client, synced, settings):
    settings.MIRROR_RATE_LIMIT = 3
    answers = [client.get("/Platform/Destiny2/Manifest/") for _ in range(4)]
    other = client.get("/Platform/Destiny2/Manifest/", REMOTE_ADDR="127.0.0.9")

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert int(limited["Retry-After"]) >= 1
    assert json_of(limited)["ErrorStatus"] == "ThrottleLimitExceededMomentarily"
    assert limited["Access-Control-Allow-Origin"] == "*" and limited["Cache-Control"] == "no-store"
    assert other.status_code == 200


def test_a_setting_turns_the_rate_limit_off(client, synced, settings):
    settings.MIRROR_RATE_LIMIT = 0

    assert {client.get("/Platform/Destiny2/Manifest/").status_code for _ in range(10)} == {200}


# ----------------------------------------------------------------------------------------
# Rebuilt files kept on disk (manifest/mirror_files.py)
# ----------------------------------------------------------------------------------------
@pytest.fixture
def file_cache(settings, tmp_path):
    """The mirror's file cache in a directory of this test's own."""
    settings.MIRROR_FILE_CACHE_DIR = str(tmp_path / "mirror-files")
    settings.MIRROR_FILE_CACHE_MB = 64
    return tmp_path / "mirror-files"


def kept_files(root) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_a_file_is_built_once_then_served_from_disk(client, synced, file_cache):
    _, _, table, aggregate = mirror_paths(synced)
    for path in (table, aggregate):
        first = client.get(path)
        built = json_of(first)
        assert not first.has_header("Content-Length")  # streamed from the rows
        again = client.get(path)
        assert again.has_header("Content-Length") and not again.has_header("Content-Disposition")  # from disk
        assert json_of(again) == built and again["ETag"] == first["ETag"]
        assert again["Access-Control-Allow-Origin"] == "*" and again["Cache-Control"] == first["Cache-Control"]
    assert len(kept_files(file_cache)) == 2


def test_each_encoding_is_kept_apart(client, synced, file_cache):
    _, _, table, _ = mirror_paths(synced)
    plain = json_of(client.get(table))
    for encoding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        client.get(table, HTTP_ACCEPT_ENCODING=encoding).getvalue()
        kept = client.get(table, HTTP_ACCEPT_ENCODING=encoding)
        assert kept["Content-Encoding"] == encoding and kept.has_header("Content-Length")
        assert orjson.loads(decode(body_of(kept))) == plain
    assert len(kept_files(file_cache)) == 3


def test_a_client_that_leaves_half_way_leaves_nothing_behind(client, synced, file_cache):
    path = bungie_manifest(synced)["jsonWorldContentPaths"]["en"]
    response = client.get(path)
    next(iter(response.streaming_content))
    response.close()

    assert kept_files(file_cache) == []
    assert not client.get(path).has_header("Content-Length")  # built again, from the rows


def test_the_file_cache_keeps_to_its_size_and_can_be_off(client, synced, file_cache, settings):
    paths = list(bungie_manifest(synced)["jsonWorldComponentContentPaths"]["en"].values())
    settings.MIRROR_FILE_CACHE_MB = 1
    for path in paths:
        client.get(path).getvalue()
    assert sum(p.stat().st_size for p in file_cache.iterdir()) <= 1024 * 1024

    settings.MIRROR_FILE_CACHE_MB = 0
    for path in paths:
        assert not client.get(path).has_header("Content-Length")


# ----------------------------------------------------------------------------------------
# The database away
# ----------------------------------------------------------------------------------------
@pytest.fixture
def database_away(tmp_path):
    """This process's database connection pointed at nothing (a closed port, or a SQLite
    file in a folder that does not exist) until the test ends."""
    from django.db import connection

    from bin.stack import free_port

    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "postgresql":
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    else:
        connection.settings_dict["NAME"] = str(tmp_path / "absent" / "db.sqlite3")
    yield
    connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_with_the_database_away_the_mirror_answers_bungies_maintenance_with_cors(client, synced, database_away):
    for path in ("/Platform/Destiny2/Manifest/", "/common/destiny2_content/json/en/aggregate-x.json",
                 "/api/manifest/changes?since=v"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert json_of(response)["ErrorStatus"] == "SystemDisabled"
        assert response["Access-Control-Allow-Origin"] == "*" and response["Cache-Control"] == "no-store"
        assert int(response["Retry-After"]) > 0
