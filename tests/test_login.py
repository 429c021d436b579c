"""Log in with Bungie: the OAuth flow, its failures, the tokens at rest, refreshing them,
the account page. Everything Bungie says comes from the fake Bungie.net on loopback; the
player's approval is a POST to the fake's authorize page, as the browser would send it."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import time_machine
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from dvr.accounts.login import account_upsert, player_from_memberships
from dvr.accounts.models import BungieAccount, BungieToken, DestinyMembership
from dvr.accounts.tokens import (
    LoginRequired,
    access_token_for,
    access_token_refresh,
    with_token_retry,
)
from dvr.lib import bungie as dvr_bungie
from tests.fakebungie.player import BUNGIE_MEMBERSHIP_ID, DESTINY_MEMBERSHIP_ID
from tests.fakebungie.server import FakeBungieServer
from tests.support import answer_on_bungie, log_in, start_login, stored_tokens

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
BUNGIE_NAME = "Guardian#1234"
MEMBERSHIPS = "/User/GetMembershipsForCurrentUser/"


# --- helpers: the player's side of the dance ---------------------------------------------------
def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def token_calls(bungie: FakeBungieServer) -> int:
    return bungie.app.stats()["counts"].get("token", 0)


def memberships_with(token: str) -> dict[str, Any]:
    return dvr_bungie.client().get(MEMBERSHIPS, access_token=token, retry=False)


def assert_friendly_failure(response: Any, status: int, words: str, client: Client, *, tokens: int = 0) -> None:
    body = response.content.decode()
    assert response.status_code == status, body
    assert words in body
    assert "Log in with Bungie again" in body and 'href="/"' in body
    assert not logged_in(client)
    assert BungieToken.objects.count() == tokens


# --- /login/ ---------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_login_sends_the_browser_to_bungies_authorize_page_with_client_id_code_and_a_state(client, bungie):
    location = start_login(client)

    parts = urlsplit(location)
    query = dict(parse_qsl(parts.query))
    assert f"{parts.scheme}://{parts.netloc}" == bungie.url
    assert parts.path == "/en/OAuth/Authorize"
    assert query["client_id"] == "12345" and query["response_type"] == "code"
    assert len(query["state"]) >= 32
    assert query["state"] in client.session["bungie_login"]


@pytest.mark.django_db
def test_every_login_gets_a_new_random_state(client, bungie):
    states = {dict(parse_qsl(urlsplit(start_login(client)).query))["state"] for _ in range(3)}

    assert len(states) == 3


@pytest.mark.django_db
def test_login_without_client_credentials_is_a_friendly_503(client, bungie, settings):
    settings.BUNGIE_CLIENT_SECRET = ""

    response = client.get("/login/")

    assert_friendly_failure(response, 503, "Login with Bungie is not available", client)


# --- the happy path -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_approving_on_bungie_logs_the_player_in_with_their_bungie_name_and_memberships(client, bungie):
    response = log_in(client, bungie)

    assert response.status_code == 302 and response["Location"] == "/"
    assert logged_in(client)
    account = BungieAccount.objects.get()
    assert account.membership_id == BUNGIE_MEMBERSHIP_ID
    assert account.unique_name == BUNGIE_NAME
    assert account.user.username == f"bungie-{BUNGIE_MEMBERSHIP_ID}"
    assert not account.user.has_usable_password()
    membership = account.memberships.get()
    assert (membership.membership_type, membership.membership_id) == (3, DESTINY_MEMBERSHIP_ID)
    assert membership.is_primary and membership.platform_name == "Steam"
    home = client.get("/").content.decode()
    assert BUNGIE_NAME in home and "Log out" in home and "Log in with Bungie" not in home


@pytest.mark.django_db
def test_the_login_rotates_the_session_key(client, bungie):
    authorize_url = start_login(client)
    before = client.session.session_key

    client.get("/oauth/callback/", answer_on_bungie(bungie, authorize_url))

    assert logged_in(client)
    assert client.session.session_key != before


@pytest.mark.django_db
def test_the_player_comes_back_to_the_page_they_started_from(client, bungie):
    response = log_in(client, bungie, next_path="/manifest/?page=2")

    assert response.status_code == 302
    assert response["Location"] == "/manifest/?page=2"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/",
        "//evil.example/",
        "///evil.example/",
        "/\\evil.example/",
        "\\\\evil.example/",
        "https:evil.example",
        "http://testserver.evil.example/",
        "javascript:alert(1)",
        "/\r\nLocation: https://evil.example/",
        "/\t/evil.example/",
        " //evil.example/",
        "/login/",
    ],
)
def test_a_next_that_leaves_the_site_is_dropped(client, bungie, next_path):
    response = log_in(client, bungie, next_path=next_path)

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert logged_in(client)


@pytest.mark.django_db
def test_two_tabs_can_log_in_at_once_and_each_state_works_once(client, bungie):
    first, second = start_login(client, "/first/"), start_login(client, "/second/")

    first_answer, second_answer = answer_on_bungie(bungie, first), answer_on_bungie(bungie, second)

    assert client.get("/oauth/callback/", second_answer)["Location"] == "/second/"
    assert client.get("/oauth/callback/", first_answer)["Location"] == "/first/"
    assert client.get("/oauth/callback/", first_answer).status_code == 400


@pytest.mark.django_db
def test_logging_in_again_after_a_rename_updates_the_same_user(client, bungie):
    log_in(client, bungie)
    user_id = get_user_model().objects.get().pk
    bungie.app.player.display_name = "Renamed"

    log_in(Client(), bungie)

    account = BungieAccount.objects.get()
    assert get_user_model().objects.get().pk == user_id == account.user_id
    assert account.unique_name == "Renamed#1234"
    assert account.memberships.get().display_name == "Renamed"


@pytest.mark.django_db
def test_the_cross_save_primary_membership_is_stored_first_and_stale_ones_removed(bungie):
    # Shapes from a real cross-save player (linkedaccounts-2025-07-15.json): PlayStation
    # is the cross-save primary, Xbox and Steam play through it.
    data = {
        "bungieNetUser": {
            "membershipId": "9876543",
            "uniqueName": "VidBoi#0042",
            "displayName": "VidBoi",
            "cachedBungieGlobalDisplayName": "VidBoi",
            "cachedBungieGlobalDisplayNameCode": 42,
        },
        "primaryMembershipId": "4611686018433092312",
        "destinyMemberships": [
            {"membershipType": 1, "membershipId": "4611686018430000001", "displayName": "VidBoi-X",
             "crossSaveOverride": 2, "applicableMembershipTypes": []},
            {"membershipType": 3, "membershipId": "4611686018470000003", "displayName": "VidBoi",
             "crossSaveOverride": 2, "applicableMembershipTypes": []},
            {"membershipType": 2, "membershipId": "4611686018433092312", "displayName": "VidBoi-BMC",
             "crossSaveOverride": 2, "applicableMembershipTypes": [1, 3, 5, 6, 2]},
        ],
    }
    account = account_upsert(player=player_from_memberships(data))
    DestinyMembership.objects.create(account=account, membership_type=5, membership_id="1")
    data["destinyMemberships"] = data["destinyMemberships"][1:]  # Bungie no longer lists Xbox

    account = account_upsert(player=player_from_memberships(data))

    assert account.unique_name == "VidBoi#0042"
    rows = [(m.platform_name, m.is_primary, m.is_overridden) for m in account.memberships.all()]
    assert rows == [("PlayStation", True, False), ("Steam", False, True)]


def test_without_cross_save_the_first_listed_membership_is_primary():
    data = {
        "bungieNetUser": {"membershipId": "1", "uniqueName": "A#0001"},
        "primaryMembershipId": None,
        "destinyMemberships": [
            {"membershipType": 3, "membershipId": "30", "crossSaveOverride": 0},
            {"membershipType": 2, "membershipId": "20", "crossSaveOverride": 0},
        ],
    }

    player = player_from_memberships(data)

    assert [(m.membership_id, m.is_primary) for m in player.memberships] == [("30", True), ("20", False)]


# --- logout ---------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_logout_is_a_post_with_csrf(bungie):
    browser = Client(enforce_csrf_checks=True)
    log_in(browser, bungie)

    assert browser.get("/logout/").status_code == 405
    assert browser.post("/logout/").status_code == 403
    assert logged_in(browser)
    page = browser.get("/").content.decode()
    token = browser.cookies["csrftoken"].value
    assert 'action="/logout/"' in page

    response = browser.post("/logout/", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 302
    assert not logged_in(browser)
    assert "Log in with Bungie" in browser.get("/").content.decode()


# --- failures the player can read -------------------------------------------------------------------
@pytest.mark.django_db
def test_declining_on_bungie_is_a_friendly_403_and_logs_nobody_in(client, bungie):
    answer = answer_on_bungie(bungie, start_login(client), approve=False)
    assert answer["error"] == "access_denied"

    response = client.get("/oauth/callback/", answer)

    assert_friendly_failure(response, 403, "You did not approve DVR", client)
    assert token_calls(bungie) == 0


@pytest.mark.django_db
def test_a_callback_without_state_is_refused(client, bungie):
    answer = answer_on_bungie(bungie, start_login(client))

    response = client.get("/oauth/callback/", {"code": answer["code"]})

    assert_friendly_failure(response, 400, "That login did not start here", client)
    assert token_calls(bungie) == 0


@pytest.mark.django_db
def test_a_callback_with_a_wrong_state_is_refused_before_the_code_is_used(client, bungie):
    answer = answer_on_bungie(bungie, start_login(client))

    response = client.get("/oauth/callback/", {**answer, "state": answer["state"][:-2] + "xx"})

    assert_friendly_failure(response, 400, "expired or was already used", client)
    assert token_calls(bungie) == 0
    assert answer["code"] not in response.content.decode()  # the page's links do not echo it


@pytest.mark.django_db
def test_a_state_issued_to_another_browser_is_refused(client, bungie):
    # Login CSRF: an attacker's own approved callback, handed to a victim's browser.
    attacker = Client()
    answer = answer_on_bungie(bungie, start_login(attacker))
    start_login(client)

    response = client.get("/oauth/callback/", answer)

    assert_friendly_failure(response, 400, "expired or was already used", client)


@pytest.mark.django_db
def test_a_replayed_callback_is_refused_and_changes_nothing(client, bungie):
    answer = answer_on_bungie(bungie, start_login(client))
    assert client.get("/oauth/callback/", answer).status_code == 302
    client.post("/logout/")
    BungieToken.objects.all().delete()

    response = client.get("/oauth/callback/", answer)

    assert_friendly_failure(response, 400, "expired or was already used", client)


@pytest.mark.django_db
def test_a_state_older_than_ten_minutes_is_refused(client, bungie):
    answer = answer_on_bungie(bungie, start_login(client))

    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        response = client.get("/oauth/callback/", answer)

    assert_friendly_failure(response, 400, "expired or was already used", client)


@pytest.mark.django_db
def test_a_callback_replayed_in_the_same_browser_is_refused_before_its_code_is_sent_again(client, bungie):
    # Single use is DVR's own check, not the fake's used-code refusal: no second token call.
    answer = answer_on_bungie(bungie, start_login(client))
    assert client.get("/oauth/callback/", answer).status_code == 302
    calls = token_calls(bungie)

    response = client.get("/oauth/callback/", answer)

    assert response.status_code == 400 and "expired or was already used" in response.content.decode()
    assert token_calls(bungie) == calls


@pytest.mark.django_db
def test_a_state_issued_eleven_minutes_ago_is_refused_though_bungies_code_is_fresh(client, bungie):
    # The expiry is DVR's own check: the code Bungie gives now is good, the state is not.
    with time_machine.travel(timezone.now() - timedelta(minutes=11)):
        location = start_login(client)
    answer = answer_on_bungie(bungie, location)

    response = client.get("/oauth/callback/", answer)

    assert_friendly_failure(response, 400, "expired or was already used", client)
    assert token_calls(bungie) == 0


@pytest.mark.django_db
def test_a_token_for_another_bungie_account_than_the_memberships_name_logs_nobody_in(client, bungie, monkeypatch):
    issue = bungie.app._issue_tokens_locked

    def token_for_someone_else(member: str) -> dict[str, Any]:
        return {**issue(member), "membership_id": "99999999"}

    monkeypatch.setattr(bungie.app, "_issue_tokens_locked", token_for_someone_else)
    answer = answer_on_bungie(bungie, start_login(client))

    response = client.get("/oauth/callback/", answer)

    assert_friendly_failure(response, 400, "Bungie did not confirm your login", client)
    assert not BungieAccount.objects.exists()


@pytest.mark.django_db
def test_a_used_code_is_refused_with_a_friendly_400(client, bungie):
    used = answer_on_bungie(bungie, start_login(client))
    assert client.get("/oauth/callback/", used).status_code == 302
    other = Client()
    fresh_state = dict(parse_qsl(urlsplit(start_login(other)).query))["state"]

    response = other.get("/oauth/callback/", {"code": used["code"], "state": fresh_state})

    assert_friendly_failure(response, 400, "Bungie did not accept that login", other, tokens=1)


@pytest.mark.django_db
def test_a_callback_without_a_code_is_refused(client, bungie):
    state = dict(parse_qsl(urlsplit(start_login(client)).query))["state"]

    response = client.get("/oauth/callback/", {"state": state})

    assert_friendly_failure(response, 400, "Bungie did not accept that login", client)


@pytest.mark.django_db
@pytest.mark.parametrize("error", ["temporarily_unavailable", "server_error"])
def test_bungie_unable_to_ask_the_player_is_a_friendly_503(client, bungie, error):
    state = dict(parse_qsl(urlsplit(start_login(client)).query))["state"]

    response = client.get("/oauth/callback/", {"error": error, "state": state})

    assert_friendly_failure(response, 503, "Bungie is not answering", client)


@pytest.mark.django_db
def test_maintenance_on_bungies_authorize_page_logs_nobody_in_and_the_login_can_resume(client, bungie):
    authorize_url = start_login(client)
    bungie.app.misbehave("maintenance", on="authorize", count=1)

    during = requests.get(authorize_url, timeout=10)

    assert during.status_code == 503
    assert not logged_in(client)
    assert client.get("/oauth/callback/", answer_on_bungie(bungie, authorize_url)).status_code == 302
    assert logged_in(client)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "on", "status", "words"),
    [
        ("maintenance", "token", 503, "Bungie is down for maintenance"),  # Bungie: HTTP 400 + ErrorCode 5
        ("maintenance", "memberships", 503, "Bungie is down for maintenance"),
        ("throttle", "token", 503, "Bungie is busy"),
        ("html", "token", 503, "Bungie is not answering"),
        ("error500", "token", 503, "Bungie is not answering"),
        ("truncate_json", "token", 503, "Bungie is not answering"),
        ("html", "memberships", 503, "Bungie is not answering"),
        ("invalid_token", "memberships", 400, "Bungie did not confirm your login"),
    ],
)
def test_bungie_failing_during_the_callback_is_a_friendly_page(client, bungie, kind, on, status, words):
    answer = answer_on_bungie(bungie, start_login(client))
    bungie.app.misbehave(kind, on=on, seconds=0)

    response = client.get("/oauth/callback/", answer)

    assert_friendly_failure(response, status, words, client)
    assert not BungieAccount.objects.exists()


@pytest.mark.django_db
def test_a_token_endpoint_401_for_a_wrong_client_secret_is_a_503_and_an_error_for_the_operator(
    client, bungie, settings, caplog
):
    answer = answer_on_bungie(bungie, start_login(client))
    settings.BUNGIE_CLIENT_SECRET = "not-the-secret"

    with caplog.at_level(logging.WARNING, logger="inventory"):
        response = client.get("/oauth/callback/", answer)

    assert_friendly_failure(response, 503, "Login with Bungie is not available", client)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("invalid_client" in message for message in errors)


@pytest.mark.django_db
def test_a_failed_login_leaves_a_logged_in_player_as_they_were(client, bungie, player_without_manifest):
    answer = answer_on_bungie(bungie, start_login(client))
    bungie.app.misbehave("maintenance", on="token")

    response = client.get("/oauth/callback/", answer)

    assert response.status_code == 503
    assert client.session["_auth_user_id"] == str(player_without_manifest.user_id)
    assert BUNGIE_NAME in response.content.decode() and "Log out" in response.content.decode()


# --- tokens at rest ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_token_columns_hold_no_plaintext_token(bungie, player_without_manifest):
    access, refresh = stored_tokens(player_without_manifest)
    assert memberships_with(access)["bungieNetUser"]["membershipId"] == BUNGIE_MEMBERSHIP_ID

    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token_encrypted, refresh_token_encrypted FROM inventory_bungietoken")
        raw = cursor.fetchall()

    assert len(raw) == 1
    for column in raw[0]:
        column = column.decode() if isinstance(column, bytes | memoryview) else str(column)
        assert access not in column and refresh not in column
        assert column.startswith("gAAAAA")  # a Fernet token (version byte 0x80)
    everything = repr(list(BungieToken.objects.values())) + repr(list(BungieAccount.objects.values()))
    assert access not in everything and refresh not in everything


@pytest.mark.django_db
def test_tokens_never_reach_the_browser_or_the_session(client, bungie):
    pages = [log_in(client, bungie), client.get("/"), client.get("/account/")]
    access, refresh = stored_tokens(BungieAccount.objects.get())

    for response in pages:
        seen = response.content.decode() + str(response.headers) + str(response.cookies)
        assert access not in seen and refresh not in seen
    session = str(dict(client.session.items()))
    assert access not in session and refresh not in session


@pytest.mark.django_db
def test_the_admin_shows_when_tokens_expire_but_never_the_tokens(bungie, player_without_manifest, admin_client):
    access, refresh = stored_tokens(player_without_manifest)
    ciphertext = BungieToken.objects.get().access_token_encrypted
    pages = [
        admin_client.get("/admin/accounts/bungieaccount/"),
        admin_client.get(f"/admin/accounts/bungieaccount/{player_without_manifest.pk}/change/"),
        admin_client.get("/admin/accounts/bungietoken/"),
        admin_client.get(f"/admin/accounts/bungietoken/{BungieToken.objects.get().pk}/change/"),
    ]

    for response in pages:
        body = response.content.decode()
        assert response.status_code == 200
        assert BUNGIE_NAME in body
        assert access not in body and refresh not in body and ciphertext not in body


@pytest.mark.django_db
def test_tokens_and_codes_are_never_logged(client, bungie, caplog):
    caplog.set_level(logging.DEBUG)
    answer = answer_on_bungie(bungie, start_login(client))
    client.get("/oauth/callback/", answer)
    account = BungieAccount.objects.get()
    first_access, first_refresh = stored_tokens(account)
    with time_machine.travel(timezone.now() + timedelta(minutes=59, seconds=30)):
        access_token_for(account)
    second_access, second_refresh = stored_tokens(account)
    bungie.app.expire_tokens(refresh=True)
    with pytest.raises(LoginRequired) as raised:
        with_token_retry(account, memberships_with)

    secrets = [answer["code"], answer["state"], first_access, first_refresh, second_access, second_refresh]
    ours = [r for r in caplog.records if not r.name.startswith("tests.")]  # not the fake's own log
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in ours) + str(raised.value)
    assert "bungie token refreshed" in logged and "bungie login required" in logged
    for secret in secrets:
        assert secret not in logged


@pytest.mark.django_db
def test_tokens_stay_readable_across_a_key_rotation(bungie, player_without_manifest, settings):
    access, refresh = stored_tokens(player_without_manifest)
    old_key = settings.TOKEN_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, old_key]
    assert stored_tokens(player_without_manifest) == (access, refresh)  # old rows open with the old key

    assert call_command("rotate_token_keys") == "re-encrypted 1 token rows with the newest key"
    settings.TOKEN_ENCRYPTION_KEYS = [new_key]

    assert stored_tokens(player_without_manifest) == (access, refresh)
    assert access_token_for(player_without_manifest) == access


@pytest.mark.django_db
def test_tokens_no_configured_key_opens_require_logging_in_again(bungie, player_without_manifest, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(LoginRequired):
        access_token_for(player_without_manifest)


# --- refreshing ---------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_an_access_token_good_for_more_than_a_minute_is_used_as_it_is(bungie, player_without_manifest):
    access, _ = stored_tokens(player_without_manifest)
    calls = token_calls(bungie)

    assert access_token_for(player_without_manifest) == access
    assert token_calls(bungie) == calls


@pytest.mark.django_db
def test_an_access_token_expiring_within_a_minute_is_refreshed_before_use(bungie, player_without_manifest):
    access, refresh = stored_tokens(player_without_manifest)
    calls = token_calls(bungie)

    with time_machine.travel(timezone.now() + timedelta(minutes=59, seconds=30)):
        new_access = access_token_for(player_without_manifest)
        assert memberships_with(new_access)["bungieNetUser"]["membershipId"] == BUNGIE_MEMBERSHIP_ID

    assert new_access != access
    assert token_calls(bungie) == calls + 1
    assert stored_tokens(player_without_manifest) == (new_access, stored_tokens(player_without_manifest)[1])
    assert stored_tokens(player_without_manifest)[1] != refresh  # Bungie rotated it; the new one is kept
    assert BungieToken.objects.get().access_expires_at > timezone.now() + timedelta(minutes=59)


@pytest.mark.django_db
def test_maintenance_during_an_early_refresh_keeps_using_the_still_valid_token(bungie, player_without_manifest):
    access, _ = stored_tokens(player_without_manifest)
    bungie.app.misbehave("maintenance", on="token")

    with time_machine.travel(timezone.now() + timedelta(minutes=59, seconds=30)):
        assert access_token_for(player_without_manifest) == access


@pytest.mark.django_db
def test_maintenance_during_a_needed_refresh_is_a_bungie_error_not_a_logout(bungie, player_without_manifest):
    bungie.app.misbehave("maintenance", on="token")

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        with pytest.raises(dvr_bungie.BungieMaintenance):
            access_token_for(player_without_manifest)

    assert BungieToken.objects.exists()


@pytest.mark.django_db
def test_an_auth_error_from_bungie_refreshes_once_and_calls_again(bungie, player_without_manifest):
    access, _ = stored_tokens(player_without_manifest)
    bungie.app.expire_tokens()  # Bungie refuses a token DVR still thinks good
    calls = token_calls(bungie)

    data = with_token_retry(player_without_manifest, memberships_with)

    assert data["bungieNetUser"]["membershipId"] == BUNGIE_MEMBERSHIP_ID
    assert token_calls(bungie) == calls + 1
    assert stored_tokens(player_without_manifest)[0] != access


@pytest.mark.django_db
def test_a_second_refusal_after_refreshing_is_not_retried_again(bungie, player_without_manifest):
    bungie.app.misbehave("invalid_token", on="memberships")
    calls = token_calls(bungie)

    with pytest.raises(dvr_bungie.BungieAuthError):
        with_token_retry(player_without_manifest, memberships_with)

    assert token_calls(bungie) == calls + 1


@pytest.mark.django_db
def test_a_refresh_after_another_request_already_refreshed_reuses_its_token(bungie, player_without_manifest):
    rejected, _ = stored_tokens(player_without_manifest)
    first = access_token_refresh(player_without_manifest, rejected=rejected)
    calls = token_calls(bungie)

    second = access_token_refresh(player_without_manifest, rejected=rejected)

    assert second == first != rejected
    assert token_calls(bungie) == calls


@pytest.mark.django_db(transaction=True)
def test_two_requests_refreshing_at_once_make_one_token_call_and_keep_the_newest_refresh_token(client, bungie):
    log_in(client, bungie)
    account = BungieAccount.objects.get()
    calls = token_calls(bungie)
    bungie.app.misbehave("slow", on="token", seconds=0.5)  # the first holds the lock a while
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def request() -> None:
        try:
            barrier.wait()
            results.append(access_token_for(BungieAccount.objects.get(pk=account.pk)))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        threads = [threading.Thread(target=request) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

        assert errors == []
        assert len(results) == 2 and results[0] == results[1]
        assert token_calls(bungie) == calls + 1
        assert stored_tokens(account)[0] == results[0]
        # The stored refresh token is the newest: Bungie accepts it.
        bungie.app.reset()
        assert access_token_refresh(account, rejected=results[0]) != results[0]


@pytest.mark.django_db
def test_an_expired_refresh_token_at_bungie_requires_login_and_deletes_the_tokens(bungie, player_without_manifest):
    bungie.app.expire_tokens(refresh=True)

    with pytest.raises(LoginRequired):
        with_token_retry(player_without_manifest, memberships_with)

    assert not BungieToken.objects.exists()


@pytest.mark.django_db
def test_a_wrong_client_secret_during_a_refresh_keeps_every_players_tokens(bungie, player_without_manifest, settings):
    # DVR's own configuration is wrong, not the player's login: logging everyone out would not help.
    account = player_without_manifest
    before = stored_tokens(account)
    settings.BUNGIE_CLIENT_SECRET = "not-the-secret"

    with time_machine.travel(timezone.now() + timedelta(hours=2)):  # the access token has expired
        with pytest.raises(dvr_bungie.BungieOAuthError) as refused:
            access_token_for(account)

    assert refused.value.error == "invalid_client"
    assert stored_tokens(account) == before


@pytest.mark.django_db
def test_a_refresh_token_past_its_expiry_requires_login_without_asking_bungie(bungie, player_without_manifest):
    calls = token_calls(bungie)

    with time_machine.travel(timezone.now() + timedelta(days=91)):
        with pytest.raises(LoginRequired):
            access_token_for(player_without_manifest)

    assert token_calls(bungie) == calls
    assert not BungieToken.objects.exists()


@pytest.mark.django_db
def test_a_lapsed_login_sends_the_player_to_log_in_with_their_page_as_next(client, bungie, player_without_manifest):
    bungie.app.expire_tokens(refresh=True)

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = client.get("/account/?tab=memberships")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Faccount%2F%3Ftab%3Dmemberships"
    # …and logging in again brings them back there.
    assert log_in(client, bungie, next_path="/account/?tab=memberships")["Location"] == "/account/?tab=memberships"


@pytest.mark.django_db
def test_a_lapsed_login_in_an_htmx_request_redirects_the_whole_page(client, bungie, player_without_manifest):
    bungie.app.expire_tokens(refresh=True)

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = client.get("/account/", HTTP_HX_REQUEST="true", HTTP_REFERER="http://testserver/manifest/")

    assert response["HX-Redirect"] == "/login/?next=%2Fmanifest%2F"


# --- the account page ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_account_page_shows_the_bungie_name_memberships_and_when_tokens_expire(
    client, bungie, player_without_manifest
):
    response = client.get("/account/")

    body = response.content.decode()
    assert response.status_code == 200
    assert BUNGIE_NAME in body and DESTINY_MEMBERSHIP_ID in body and "Steam" in body and "Primary" in body
    token = BungieToken.objects.get()
    assert token.access_expires_at.strftime("%Y-%m-%d %H:%M") in body
    assert token.refresh_expires_at.strftime("%Y-%m-%d %H:%M") in body
    assert "Disconnect" in body


@pytest.mark.django_db
def test_the_account_page_asks_anonymous_visitors_to_log_in(client):
    response = client.get("/account/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/account/"


@pytest.mark.django_db
def test_disconnect_deletes_the_stored_tokens(client, bungie, player_without_manifest):
    assert client.get("/account/disconnect/").status_code == 405

    response = client.post("/account/disconnect/", follow=True)

    assert not BungieToken.objects.exists()
    body = response.content.decode()
    assert "DVR no longer holds any Bungie tokens" in body and "Not connected" in body
    with pytest.raises(LoginRequired):
        access_token_for(player_without_manifest)


# --- configuration ---------------------------------------------------------------------------------
def _start_django(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "TOKEN_ENCRYPTION_KEYS", "DATABASE_URL"}}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "dvr.settings", "SECRET_KEY": "x" * 60,
             "ALLOWED_HOSTS": "dvr.example.com", **env},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


def test_with_debug_off_missing_token_encryption_keys_stop_start_up_clearly():
    result = _start_django({"DEBUG": "false"})

    assert result.returncode != 0
    assert "TOKEN_ENCRYPTION_KEYS must be set when DEBUG is off" in result.stderr


def test_a_malformed_token_encryption_key_stops_start_up_without_echoing_it():
    bad = base64.urlsafe_b64encode(b"too-short-a-key").decode()

    result = _start_django({"DEBUG": "false", "TOKEN_ENCRYPTION_KEYS": f"{Fernet.generate_key().decode()},{bad}"})

    assert result.returncode != 0
    assert "TOKEN_ENCRYPTION_KEYS: key 2 is not a Fernet key" in result.stderr
    assert bad not in result.stderr


def test_with_debug_on_and_no_keys_a_development_key_comes_from_secret_key():
    result = _start_django({"DEBUG": "true"})

    assert result.returncode == 0, result.stderr
