"""dvr/lib/bungie/ against Bungie's real error bodies and the fake Bungie.net on loopback.

Error shapes come from ``tests/fakebungie/data/api/error-envelopes.json`` (real bodies quoted
from Bungie-net/api issues); everything that needs a wire goes to the fake, never to Bungie.
No test asserts on elapsed time: retries are checked by the requests the fake saw and by the
waits the client logged.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import requests

from dvr.lib.bungie import (
    USER_AGENT,
    BungieAuthError,
    BungieClient,
    BungieError,
    BungieMaintenance,
    BungieNotFound,
    BungieOAuthError,
    BungieThrottled,
    BungieTransportError,
    Download,
    client,
    error_from_envelope,
    parse_envelope,
)
from tests.fakebungie.envelopes import real_envelopes
from tests.fakebungie.server import FakeBungieServer

# A hung client must fail the test, not the run (pyproject's default is 300 s).
pytestmark = pytest.mark.timeout(20)

TABLE = "DestinyStatGroupDefinition"  # ~200 KB: several chunks, still quick
SMALL_TABLE = "DestinyClassDefinition"  # < 1 KB
MEMBERSHIPS = "/User/GetMembershipsForCurrentUser/"

# The kind each real ErrorCode in error-envelopes.json must raise. A new code in the file
# fails `test_every_real_error_code_has_an_expected_kind` until it is listed here.
EXPECTED_KIND: dict[int, type[BungieError]] = {
    5: BungieMaintenance,  # SystemDisabled
    36: BungieThrottled,  # ThrottleLimitExceededMomentarily
    2106: BungieAuthError,  # AuthorizationCodeInvalid
    2107: BungieError,  # OriginHeaderDoesNotMatchKey: our configuration, not the player's
    18: BungieError,  # InvalidParameters
}


def _envelopes(*, oauth: bool) -> list[Any]:
    out = []
    for entry in real_envelopes():
        body = entry["body"]
        if ("error" in body) == oauth and body.get("ErrorCode") != 1:
            issue = entry["source"].rsplit("/", 1)[-1]
            what = body.get("ErrorStatus") or body.get("error_description")
            out.append(pytest.param(body, id=f"issue{issue}-{what}"))
    return out


def _once() -> BungieClient:
    """A client configured from settings that never retries (one request per call)."""
    return BungieClient(retry_budget=0)


def _seen(server: FakeBungieServer, kind: str) -> int:
    return server.app.stats()["counts"].get(kind, 0)


def _recorded(server: FakeBungieServer, kind: str) -> list[dict[str, Any]]:
    return [r for r in server.app.stats()["recent"] if r["kind"] == kind]


def _headers(record: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in record["headers"].items()}


def _table_path(server: FakeBungieServer, table: str = TABLE) -> str:
    return server.app.current.table_path("en", table)


def _table_bytes(server: FakeBungieServer, table: str = TABLE) -> bytes:
    body = server.app.current.body("en", table)
    assert body is not None
    return b"".join(body.chunks())


def _retry_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The waits the client chose, from its ``bungie retry`` log lines."""
    return [r.args[2] for r in caplog.records if r.name == "dvr.lib.retry" and r.msg.startswith("retry what=")]


def _authorization_code(server: FakeBungieServer, client_id: str) -> str:
    """What the player's browser would bring back: approve DVR on the fake's authorize page."""
    response = requests.post(
        server.url + "/en/OAuth/Authorize",
        data={"client_id": client_id, "response_type": "code", "state": "s", "approve": "1"},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


# ======================================================================================
# Envelopes: Bungie's real error bodies
# ======================================================================================
def test_every_real_error_code_has_an_expected_kind() -> None:
    codes = {p.values[0]["ErrorCode"] for p in _envelopes(oauth=False)}
    assert codes <= EXPECTED_KIND.keys()


@pytest.mark.parametrize("body", _envelopes(oauth=False))
def test_it_raises_the_right_kind_for_each_real_error_envelope(body: dict[str, Any]) -> None:
    with pytest.raises(BungieError) as caught:
        parse_envelope(orjson.dumps(body), http_status=200, content_type="application/json")

    exc = caught.value
    assert type(exc) is EXPECTED_KIND[body["ErrorCode"]]
    assert exc.error_code == body["ErrorCode"]
    assert exc.error_status == body["ErrorStatus"]
    assert exc.message == body["Message"]
    assert exc.throttle_seconds == body.get("ThrottleSeconds", 0)
    assert exc.message_data == body["MessageData"]
    assert exc.http_status == 200
    assert str(body["ErrorCode"]) in str(exc) and body["ErrorStatus"] in str(exc)


def test_it_raises_maintenance_for_error_code_5() -> None:
    body = {
        "ErrorCode": 5,
        "ThrottleSeconds": 0,
        "ErrorStatus": "SystemDisabled",
        "Message": "Down.",
        "MessageData": {},
    }
    with pytest.raises(BungieMaintenance) as caught:
        parse_envelope(orjson.dumps(body), http_status=503)
    assert caught.value.retryable and caught.value.http_status == 503


def test_it_carries_throttle_seconds_on_a_throttle_envelope() -> None:
    body = {
        "ErrorCode": 36,
        "ThrottleSeconds": 10,
        "ErrorStatus": "ThrottleLimitExceededMomentarily",
        "Message": "Wait.",
    }
    exc = error_from_envelope(body, http_status=200)
    assert isinstance(exc, BungieThrottled) and exc.retryable
    assert exc.throttle_seconds == 10


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (31, BungieThrottled),
        (35, BungieThrottled),
        (37, BungieThrottled),
        (51, BungieThrottled),
        (54, BungieThrottled),  # PerApplicationThrottleExceeded
        (57, BungieThrottled),  # PerUserThrottleExceeded
        (1672, BungieThrottled),  # DestinyThrottledByGameServer, answered with HTTP 200
        (99, BungieAuthError),  # WebAuthRequired
        (2111, BungieAuthError),  # AccessTokenHasExpired
        (2115, BungieAuthError),  # OAuthAccessTokenExpired
        (2117, BungieAuthError),  # ProvidedTokenNotValidRefreshToken
        (2118, BungieAuthError),  # RefreshTokenExpired
        (2124, BungieAuthError),  # AuthorizationRecordRevoked
        (21, BungieNotFound),  # NotFound
        (1601, BungieNotFound),  # DestinyAccountNotFound
        (1623, BungieNotFound),  # DestinyItemNotFound
        (2101, BungieError),  # ApiInvalidOrExpiredKey: DVR's configuration, not the player's token
        (1642, BungieError),  # DestinyNoRoomInDestination: a final answer about the action
    ],
)
def test_it_maps_platform_error_codes_to_kinds(code: int, kind: type[BungieError]) -> None:
    exc = error_from_envelope({"ErrorCode": code, "ErrorStatus": "X", "Message": "m"}, http_status=200)
    assert type(exc) is kind
    assert exc.error_code == code


def test_it_treats_an_unknown_code_on_http_404_as_not_found() -> None:
    exc = error_from_envelope({"ErrorCode": 7, "ErrorStatus": "Whatever", "Message": "m"}, http_status=404)
    assert isinstance(exc, BungieNotFound)


def test_it_treats_any_code_with_throttle_seconds_as_throttled() -> None:
    exc = error_from_envelope({"ErrorCode": 1643, "ThrottleSeconds": 3, "ErrorStatus": "DestinyServiceFailure"})
    assert isinstance(exc, BungieThrottled) and exc.throttle_seconds == 3


def test_it_survives_junk_in_envelope_fields() -> None:
    exc = error_from_envelope({"ErrorCode": "five", "ThrottleSeconds": "soon", "MessageData": ["x"]})
    assert type(exc) is BungieError
    assert exc.error_code is None and exc.throttle_seconds == 0 and exc.message_data == {}
    assert exc.message == "Bungie returned an error"


def test_it_returns_the_response_of_a_success_envelope() -> None:
    body = next(e["body"] for e in real_envelopes() if e["body"].get("ErrorCode") == 1)
    assert parse_envelope(orjson.dumps(body), http_status=200) == body["Response"]


@pytest.mark.parametrize("body", _envelopes(oauth=True))
def test_it_refuses_an_oauth_error_body_as_a_platform_envelope(body: dict[str, Any]) -> None:
    # The token endpoint's RFC 6749 shape is only understood by oauth_token().
    with pytest.raises(BungieTransportError):
        parse_envelope(orjson.dumps(body), http_status=400)


@pytest.mark.parametrize(
    ("content", "status", "kind"),
    [
        (b"<!DOCTYPE html><html><body>Bungie.net</body></html>", 200, BungieTransportError),
        (b'{"Response": {"version": "1"}, "ErrorCo', 200, BungieTransportError),
        (b"", 200, BungieTransportError),
        (b"[1, 2]", 200, BungieTransportError),
        (b"<html><h1>Server Error</h1></html>", 500, BungieTransportError),
        (b"<html><h1>404 Not Found</h1></html>", 404, BungieNotFound),
    ],
    ids=["html-200", "truncated-json", "empty", "not-an-envelope", "html-500", "html-404"],
)
def test_it_refuses_bodies_that_are_not_envelopes(content: bytes, status: int, kind: type[BungieError]) -> None:
    with pytest.raises(kind) as caught:
        parse_envelope(content, http_status=status, content_type="text/html")
    assert type(caught.value) is kind
    assert caught.value.http_status == status


def test_it_does_not_retry_an_html_client_error_but_does_retry_an_html_server_error() -> None:
    with pytest.raises(BungieTransportError) as forbidden:
        parse_envelope(b"<html>Forbidden</html>", http_status=403)
    with pytest.raises(BungieTransportError) as shell:
        parse_envelope(b"<html>Bungie.net</html>", http_status=200)
    with pytest.raises(BungieTransportError) as unavailable:
        parse_envelope(b"<html>Service Unavailable</html>", http_status=503)
    assert not forbidden.value.retryable
    assert shell.value.retryable and unavailable.value.retryable


# ======================================================================================
# Errors on real requests (the fake)
# ======================================================================================
def test_it_raises_maintenance_with_bungies_words_on_a_real_request(bungie: FakeBungieServer) -> None:
    bungie.app.misbehave("maintenance", on="manifest")
    real = next(e["body"] for e in real_envelopes() if e["body"].get("ErrorCode") == 5)

    with pytest.raises(BungieMaintenance) as caught:
        _once().get_manifest()

    exc = caught.value
    assert (exc.error_code, exc.error_status, exc.message) == (5, real["ErrorStatus"], real["Message"])
    assert exc.http_status == 503
    assert _seen(bungie, "manifest") == 1


def test_it_raises_throttled_with_throttle_seconds_on_a_real_request(bungie: FakeBungieServer) -> None:
    bungie.app.misbehave("throttle", on="manifest", seconds=7)

    with pytest.raises(BungieThrottled) as caught:
        _once().get_manifest()

    assert caught.value.error_code == 36
    assert caught.value.error_status == "ThrottleLimitExceededMomentarily"
    assert caught.value.throttle_seconds == 7


def test_it_raises_auth_error_for_an_expired_token(bungie: FakeBungieServer) -> None:
    token = bungie.app.issue_token()["access_token"]
    bungie.app.expire_tokens()

    with pytest.raises(BungieAuthError) as caught:
        client().get(MEMBERSHIPS, access_token=token)

    assert (caught.value.error_code, caught.value.error_status) == (2111, "AccessTokenHasExpired")
    assert caught.value.http_status == 401
    assert _seen(bungie, "memberships") == 1  # an auth error is never retried


def test_it_raises_auth_error_for_the_expired_token_fault(bungie: FakeBungieServer) -> None:
    bungie.app.misbehave("expired_token", on="memberships", count=1)
    token = bungie.app.issue_token()["access_token"]

    with pytest.raises(BungieAuthError) as caught:
        client().get(MEMBERSHIPS, access_token=token)

    assert caught.value.error_code == 2111


def test_it_raises_auth_error_for_a_token_bungie_does_not_know(bungie: FakeBungieServer) -> None:
    with pytest.raises(BungieAuthError) as caught:
        client().get(MEMBERSHIPS, access_token="not-a-token")
    assert (caught.value.error_code, caught.value.error_status) == (99, "WebAuthRequired")


def test_it_raises_not_found_for_a_platform_path_bungie_does_not_have(bungie: FakeBungieServer) -> None:
    with pytest.raises(BungieNotFound) as caught:
        client().get("/Destiny2/NoSuchEndpoint/")
    assert caught.value.http_status == 404
    assert _seen(bungie, "platform") == 1


@pytest.mark.parametrize(
    ("fault", "status"),
    [("html", 200), ("truncate_json", 200), ("truncate", 200), ("error500", 500)],
)
def test_it_raises_transport_error_for_an_unusable_answer(bungie: FakeBungieServer, fault: str, status: int) -> None:
    bungie.app.misbehave(fault, on="manifest")

    with pytest.raises(BungieTransportError) as caught:
        _once().get_manifest()

    if fault != "truncate":  # a dropped connection has no status worth keeping
        assert caught.value.http_status == status


def test_it_raises_transport_error_when_the_connection_is_refused(closed_port: int) -> None:
    refused = BungieClient(root_url=f"http://127.0.0.1:{closed_port}", api_key="fake-api-key", retry_budget=0)

    with pytest.raises(BungieTransportError) as caught:
        refused.get_manifest()

    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_it_raises_transport_error_when_bungie_answers_slower_than_the_read_timeout(bungie: FakeBungieServer) -> None:
    bungie.app.misbehave("slow", on="manifest", seconds=1)
    impatient = BungieClient(root_url=bungie.url, api_key="fake-api-key", timeout=(1, 0.3), retry_budget=0)

    with pytest.raises(BungieTransportError) as caught:
        impatient.get_manifest()

    assert isinstance(caught.value.__cause__, requests.Timeout)
    assert _seen(bungie, "manifest") == 1


# ======================================================================================
# Retries
# ======================================================================================
def test_it_retries_a_get_after_waiting_throttle_seconds(
    bungie: FakeBungieServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="dvr.lib.bungie")
    bungie.app.misbehave("throttle", on="manifest", count=1, seconds=1)

    manifest = client().get_manifest()

    assert manifest["version"] == bungie.app.current.version
    assert _seen(bungie, "manifest") == 2
    assert _retry_waits(caplog) == [1.0]


def test_it_backs_off_and_retries_when_throttle_seconds_is_zero(
    bungie: FakeBungieServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Before 2020 Bungie always sent ThrottleSeconds 0 (and the fake rounds 0.2 down to 0).
    caplog.set_level(logging.WARNING, logger="dvr.lib.bungie")
    bungie.app.misbehave("throttle", on="manifest", count=1, seconds=0.2)

    assert client().get_manifest()["version"] == bungie.app.current.version
    assert _seen(bungie, "manifest") == 2
    assert len(_retry_waits(caplog)) == 1 and 0 < _retry_waits(caplog)[0] <= 1


def test_it_gives_up_at_once_when_throttle_seconds_exceeds_the_retry_budget(bungie: FakeBungieServer, settings) -> None:
    settings.BUNGIE_RETRY_BUDGET = 3
    bungie.app.misbehave("throttle", on="manifest", count=1, seconds=10)

    with pytest.raises(BungieThrottled) as caught:
        client().get_manifest()

    assert caught.value.throttle_seconds == 10
    assert _seen(bungie, "manifest") == 1


@pytest.mark.timeout(15)
def test_it_gives_up_on_endless_maintenance_within_the_retry_budget(
    bungie: FakeBungieServer, settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="dvr.lib.bungie")
    settings.BUNGIE_RETRY_BUDGET = 1.5
    bungie.app.misbehave("maintenance", on="manifest")

    with pytest.raises(BungieMaintenance):
        client().get_manifest()

    # Backoff starts at 0.5-1 s and doubles, so 1.5 s holds at most two waits.
    attempts = _seen(bungie, "manifest")
    assert 1 <= attempts <= 3
    assert len(_retry_waits(caplog)) == attempts - 1
    assert sum(_retry_waits(caplog)) < 1.5


def test_it_retries_a_transient_server_error_on_a_get(bungie: FakeBungieServer) -> None:
    bungie.app.misbehave("error500", on="manifest", count=1)

    assert client().get_manifest()["version"] == bungie.app.current.version
    assert _seen(bungie, "manifest") == 2


def test_it_does_not_retry_a_get_when_asked_not_to(bungie: FakeBungieServer) -> None:
    bungie.app.misbehave("maintenance", on="manifest", count=1)

    with pytest.raises(BungieMaintenance):
        client().get("/Destiny2/Manifest/", retry=False)

    assert _seen(bungie, "manifest") == 1


def test_it_does_not_retry_an_html_client_error(bungie: FakeBungieServer) -> None:
    bungie.app.misbehave("html", on="manifest", status=403)

    with pytest.raises(BungieTransportError) as caught:
        client().get_manifest()

    assert caught.value.http_status == 403
    assert _seen(bungie, "manifest") == 1


@pytest.mark.parametrize("fault", ["throttle", "maintenance", "error500"])
def test_it_never_retries_a_post(bungie: FakeBungieServer, fault: str) -> None:
    bungie.app.misbehave(fault, on="actions", seconds=1)
    token = bungie.app.issue_token()["access_token"]

    with pytest.raises(BungieError):
        client().post(
            "/Destiny2/Actions/Items/EquipItem/",
            json={"itemId": "1", "characterId": "2", "membershipType": 3},
            access_token=token,
        )

    assert _seen(bungie, "actions") == 1


def test_it_sends_a_post_as_json_with_the_bearer(bungie: FakeBungieServer) -> None:
    token = bungie.app.issue_token()["access_token"]

    # membershipType 1 is not the fake player's (3): Bungie answers InvalidParameters,
    # which it can only do after reading the JSON body and accepting the bearer.
    with pytest.raises(BungieError) as caught:
        client().post(
            "/Destiny2/Actions/Items/EquipItem/",
            json={"itemId": "1", "characterId": "2", "membershipType": 1},
            access_token=token,
        )

    assert caught.value.error_code == 18
    assert caught.value.message_data == {"membershipType": "1"}
    (record,) = _recorded(bungie, "actions")
    assert record["method"] == "POST"
    assert _headers(record)["content-type"] == "application/json"
    assert "authorization" in _headers(record)


# ======================================================================================
# OAuth token endpoint
# ======================================================================================
def test_it_exchanges_an_authorization_code_for_tokens(bungie: FakeBungieServer, settings) -> None:
    code = _authorization_code(bungie, settings.BUNGIE_CLIENT_ID)

    tokens = client().oauth_token(
        client_id=settings.BUNGIE_CLIENT_ID,
        client_secret=settings.BUNGIE_CLIENT_SECRET,
        data={"grant_type": "authorization_code", "code": code},
    )

    assert tokens["token_type"] == "Bearer"
    assert tokens["access_token"] and tokens["refresh_token"] and tokens["membership_id"]
    # and the token works
    assert client().get(MEMBERSHIPS, access_token=tokens["access_token"])


@pytest.mark.parametrize(
    ("description", "client_id", "data"),
    [
        ("AuthorizationCodeInvalid", None, {"grant_type": "authorization_code", "code": "not-a-code"}),
        ("Missing required parameter grant_type", None, {"code": "not-a-code"}),
        ("Cannot parse client_id", "", {"grant_type": "authorization_code", "code": "not-a-code"}),
    ],
)
def test_it_raises_oauth_error_with_bungies_words_from_the_token_endpoint(
    bungie: FakeBungieServer, settings, description: str, client_id: str | None, data: dict[str, str]
) -> None:
    real = next(e["body"] for e in real_envelopes() if e["body"].get("error_description") == description)

    with pytest.raises(BungieOAuthError) as caught:
        client().oauth_token(
            client_id=settings.BUNGIE_CLIENT_ID if client_id is None else client_id,
            client_secret=settings.BUNGIE_CLIENT_SECRET,
            data=data,
        )

    exc = caught.value
    assert (exc.error, exc.description) == (real["error"], real["error_description"])
    assert exc.error_status == real["error"]
    assert exc.http_status == 400
    assert _seen(bungie, "token") == 1


def test_it_refuses_a_used_authorization_code(bungie: FakeBungieServer, settings) -> None:
    code = _authorization_code(bungie, settings.BUNGIE_CLIENT_ID)
    credentials = {"client_id": settings.BUNGIE_CLIENT_ID, "client_secret": settings.BUNGIE_CLIENT_SECRET}
    client().oauth_token(**credentials, data={"grant_type": "authorization_code", "code": code})

    with pytest.raises(BungieOAuthError) as caught:
        client().oauth_token(**credentials, data={"grant_type": "authorization_code", "code": code})

    assert (caught.value.error, caught.value.description) == ("invalid_grant", "AuthorizationCodeInvalid")


def test_it_raises_oauth_error_for_a_wrong_client_secret(bungie: FakeBungieServer, settings) -> None:
    with pytest.raises(BungieOAuthError) as caught:
        client().oauth_token(
            client_id=settings.BUNGIE_CLIENT_ID,
            client_secret="wrong",
            data={"grant_type": "refresh_token", "refresh_token": "x"},
        )
    assert (caught.value.error, caught.value.http_status) == ("invalid_client", 401)


def test_it_raises_maintenance_not_oauth_error_when_the_token_endpoint_is_down(
    bungie: FakeBungieServer, settings
) -> None:
    # Bungie has answered the token endpoint with HTTP 400 + SystemDisabled during
    # maintenance; a client that read that as "token invalid" logged every player out.
    bungie.app.misbehave("maintenance", on="token", status=400)

    with pytest.raises(BungieMaintenance) as caught:
        client().oauth_token(
            client_id=settings.BUNGIE_CLIENT_ID,
            client_secret=settings.BUNGIE_CLIENT_SECRET,
            data={"grant_type": "refresh_token", "refresh_token": "x"},
        )

    assert caught.value.http_status == 400


@pytest.mark.parametrize(("fault", "kind"), [("throttle", BungieThrottled), ("html", BungieTransportError)])
def test_it_never_retries_the_token_endpoint(
    bungie: FakeBungieServer, settings, fault: str, kind: type[BungieError]
) -> None:
    bungie.app.misbehave(fault, on="token", seconds=1)

    with pytest.raises(kind):
        client().oauth_token(
            client_id=settings.BUNGIE_CLIENT_ID,
            client_secret=settings.BUNGIE_CLIENT_SECRET,
            data={"grant_type": "refresh_token", "refresh_token": "x"},
        )

    assert _seen(bungie, "token") == 1


# ======================================================================================
# Downloads
# ======================================================================================
def test_it_streams_a_table_to_disk_with_its_size_and_sha256(bungie: FakeBungieServer, tmp_path) -> None:
    expected = _table_bytes(bungie)
    calls: list[tuple[int, int | None]] = []

    download = client().download(
        _table_path(bungie),
        directory=tmp_path,
        progress=lambda done, total: calls.append((done, total)),
        chunk_size=16384,
    )

    assert isinstance(download, Download)
    assert download.path.parent == tmp_path
    assert download.size == len(expected)
    assert download.sha256 == hashlib.sha256(expected).hexdigest()
    assert download.path.read_bytes() == expected
    assert len(calls) > 1
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert calls[-1] == (len(expected), len(expected))
    assert bungie.app.stats()["tables"] == {TABLE: 1}


def test_it_downloads_a_small_table_too(bungie: FakeBungieServer, tmp_path) -> None:
    expected = _table_bytes(bungie, SMALL_TABLE)
    download = client().download(_table_path(bungie, SMALL_TABLE), directory=tmp_path)
    assert (download.size, download.sha256) == (len(expected), hashlib.sha256(expected).hexdigest())


def test_it_adds_a_cache_buster_to_a_download(bungie: FakeBungieServer, tmp_path) -> None:
    client().download(_table_path(bungie), directory=tmp_path, params={"cb": "7"})
    (record,) = _recorded(bungie, "tables")
    assert record["query"] == "cb=7"


@pytest.mark.parametrize(
    ("fault", "status", "kind"),
    [
        ("truncate", None, BungieTransportError),  # Content-Length larger than the body
        ("html", None, BungieTransportError),  # the site's HTML shell with 200
        ("error500", None, BungieTransportError),
        ("maintenance", None, BungieMaintenance),  # the envelope with 503
        ("maintenance", 200, BungieMaintenance),  # the envelope with 200, where a table should be
        ("throttle", 429, BungieThrottled),
    ],
    ids=["truncate", "html", "error500", "maintenance-503", "maintenance-200", "throttle-429"],
)
def test_it_refuses_a_bad_table_file_and_leaves_no_temp_file(
    bungie: FakeBungieServer, tmp_path, fault: str, status: int | None, kind: type[BungieError]
) -> None:
    bungie.app.misbehave(fault, on="tables", status=status, seconds=1)

    with pytest.raises(kind) as caught:
        client().download(_table_path(bungie), directory=tmp_path, chunk_size=16384)

    assert type(caught.value) is kind
    if kind is BungieMaintenance:
        assert caught.value.error_code == 5
    assert list(tmp_path.iterdir()) == []
    assert _seen(bungie, "tables") == 1  # downloads are retried by the sync, not here


def test_it_raises_not_found_for_a_table_bungie_does_not_have(bungie: FakeBungieServer, tmp_path) -> None:
    missing = _table_path(bungie).replace(TABLE, "DestinyNoSuchDefinition")

    with pytest.raises(BungieNotFound) as caught:
        client().download(missing, directory=tmp_path)

    assert caught.value.http_status == 404
    assert list(tmp_path.iterdir()) == []


def test_it_raises_transport_error_when_a_table_is_slower_than_the_read_timeout(
    bungie: FakeBungieServer, tmp_path
) -> None:
    bungie.app.misbehave("slow", on="tables", seconds=1)
    impatient = BungieClient(root_url=bungie.url, api_key="fake-api-key", timeout=(1, 0.3), retry_budget=0)

    with pytest.raises(BungieTransportError):
        impatient.download(_table_path(bungie), directory=tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_it_raises_transport_error_when_a_download_cannot_connect(closed_port: int, tmp_path) -> None:
    refused = BungieClient(root_url=f"http://127.0.0.1:{closed_port}", api_key="fake-api-key", retry_budget=0)
    with pytest.raises(BungieTransportError):
        refused.download("/common/destiny2_content/json/en/x.json", directory=tmp_path)
    assert list(tmp_path.iterdir()) == []


# ======================================================================================
# Headers
# ======================================================================================
def test_it_sends_the_api_key_and_a_user_agent_naming_the_app(bungie: FakeBungieServer) -> None:
    client().get_manifest()

    (record,) = _recorded(bungie, "manifest")
    headers = _headers(record)
    assert "x-api-key" in headers  # the fake redacts the value; it accepted it (else 2101)
    assert headers["user-agent"] == USER_AGENT
    assert "DestinyVaultRaider" in headers["user-agent"]
    assert "authorization" not in headers


def test_it_sends_the_configured_api_key(bungie: FakeBungieServer, settings) -> None:
    settings.BUNGIE_API_KEY = "someone-elses-key"

    with pytest.raises(BungieError) as caught:
        _once().get_manifest()

    assert (caught.value.error_code, caught.value.error_status) == (2101, "ApiInvalidOrExpiredKey")


def test_it_sends_the_api_key_and_user_agent_on_downloads(bungie: FakeBungieServer, tmp_path) -> None:
    client().download(_table_path(bungie, SMALL_TABLE), directory=tmp_path)

    (record,) = _recorded(bungie, "tables")
    assert {"x-api-key", "user-agent"} <= _headers(record).keys()
    assert _headers(record)["user-agent"] == USER_AGENT


def test_it_sends_the_bearer_when_given_an_access_token(bungie: FakeBungieServer) -> None:
    token = bungie.app.issue_token()["access_token"]

    memberships = client().get(MEMBERSHIPS, access_token=token)

    assert memberships["destinyMemberships"]
    (record,) = _recorded(bungie, "memberships")
    assert "authorization" in _headers(record)


def test_it_does_not_keep_the_bearer_for_later_calls(bungie: FakeBungieServer) -> None:
    token = bungie.app.issue_token()["access_token"]
    client().get(MEMBERSHIPS, access_token=token)

    with pytest.raises(BungieAuthError) as caught:
        client().get(MEMBERSHIPS)

    assert caught.value.error_code == 99
    assert "authorization" not in _headers(_recorded(bungie, "memberships")[-1])


# ======================================================================================
# URLs
# ======================================================================================
@pytest.mark.parametrize(
    "absolute",
    [
        "https://www.bungie.net/Platform/Destiny2/Manifest/",
        "http://evil.example/x",
        "HTTPS://evil.example/x",
        "//evil.example/x",
        "ftp://evil.example/x",
    ],
)
def test_it_refuses_absolute_urls(settings, absolute: str) -> None:
    settings.BUNGIE_ROOT_URL = "https://bungie.test"
    with pytest.raises(ValueError):
        BungieClient().url(absolute)


def test_it_builds_every_url_from_bungie_root_url(settings) -> None:
    settings.BUNGIE_ROOT_URL = "https://bungie.test/prefix"
    settings.BUNGIE_API_KEY = "k"
    bungie_client = BungieClient()

    assert (
        bungie_client.url("/common/destiny2_content/json/en/X.json")
        == "https://bungie.test/prefix/common/destiny2_content/json/en/X.json"
    )
    assert bungie_client.url("common/x.png") == "https://bungie.test/prefix/common/x.png"
    assert bungie_client.platform_url("Destiny2/Manifest/") == "https://bungie.test/prefix/Platform/Destiny2/Manifest/"
    assert (
        bungie_client.platform_url("/Destiny2/Manifest/", {"a": "1"})
        == "https://bungie.test/prefix/Platform/Destiny2/Manifest/?a=1"
    )
    # Something that looks like a URL after /Platform/ is still a path on Bungie's host.
    assert bungie_client.platform_url("https://evil.example/x").startswith("https://bungie.test/prefix/Platform/")
    authorize = urlsplit(bungie_client.authorize_url(client_id="123", state="abc"))
    assert (authorize.scheme, authorize.netloc, authorize.path) == (
        "https",
        "bungie.test",
        "/prefix/en/OAuth/Authorize",
    )
    assert parse_qs(authorize.query) == {"client_id": ["123"], "response_type": ["code"], "state": ["abc"]}


def test_it_appends_params_to_a_path_that_has_a_query(settings) -> None:
    settings.BUNGIE_ROOT_URL = "https://bungie.test"
    assert BungieClient().url("/common/x.json?v=1", {"cb": "2"}) == "https://bungie.test/common/x.json?v=1&cb=2"


def test_the_shared_client_follows_the_settings(settings) -> None:
    settings.BUNGIE_ROOT_URL = "https://one.test"
    settings.BUNGIE_API_KEY = "k"
    first = client()
    assert client() is first
    assert first.url("/x") == "https://one.test/x"

    settings.BUNGIE_ROOT_URL = "https://two.test"
    assert client().url("/x") == "https://two.test/x"
    assert client().session.headers["X-API-Key"] == "k"


def test_every_error_code_dvr_names_is_bungies_own_name_and_number():
    import json
    from pathlib import Path

    from dvr.lib.bungie import PlatformErrorCode

    spec = json.loads((Path(__file__).parent / "fakebungie" / "data" / "openapi.json").read_text())
    values = spec["components"]["schemas"]["Exceptions.PlatformErrorCodes"]["x-enum-values"]
    bungies = {int(value["numericValue"]): value["identifier"] for value in values}

    assert {code.value: code.name for code in PlatformErrorCode} == {
        code.value: bungies.get(code.value) for code in PlatformErrorCode
    }


@pytest.mark.parametrize("announced", [True, False], ids=["by-content-length", "by-bytes-received"])
def test_a_file_larger_than_max_bytes_is_refused_without_retry_and_leaves_no_temp_file(
    bungie: FakeBungieServer, tmp_path, announced: bool
) -> None:
    body = b'{"1":{"hash":1,"pad":"' + b"x" * 100_000 + b'"}}'
    # Without a Content-Length the limit is met while the bytes arrive.
    headers: dict[str, str | None] = {} if announced else {"Content-Length": None}
    bungie.app.publish(version="big", raw={TABLE: body}, raw_headers={TABLE: headers} if headers else None)

    with pytest.raises(BungieError) as caught:
        client().download(_table_path(bungie), directory=tmp_path, chunk_size=16384, max_bytes=50_000)

    assert type(caught.value) is BungieError and not caught.value.retryable
    assert "more than the 50,000-byte limit for a file" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
