"""Bungie misbehaving (maintenance, throttling, HTTP 500, HTML bodies, answers slower than the
read timeout) during a sync, a page view, a login and a transfer. Each case: the site keeps
answering (never a 500), nothing is lost or mixed, and once Bungie is back the same action
works with nobody stepping in."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from dvr.accounts.models import BungieAccount
from manifest.lookup import forget_active_seq
from manifest.models import Definition, ManifestState, ManifestVersion
from manifest.sync import manifest_sync
from tests.support import answer_on_bungie, log_in, start_login

pytestmark = pytest.mark.django_db

KINDS = ["maintenance", "throttle", "error500", "html", "slow"]
TITAN = "2305843009262373961"
NEW_DATASET = "2026-06-23"


@pytest.fixture
def faulty(bungie, settings):
    """The fake, with a short read timeout (so `slow` is a read timeout) and short retries."""
    settings.BUNGIE_TIMEOUT = (2.0, 0.5)
    settings.BUNGIE_RETRY_BUDGET = 2
    return bungie


def misbehave(bungie, kind: str, on: str) -> None:
    # Slow answers take 1.5 s against a 0.5 s read timeout; throttling asks for 1 s.
    bungie.app.misbehave(kind, on=on, seconds=1.5 if kind == "slow" else 1.0)


def site_answers(client: Client) -> None:
    """The pages a visitor reads still answer, from the live version."""
    for path in ("/", "/manifest/", "/api/manifest/", "/healthz"):
        assert client.get(path).status_code in (200, 503), path  # 503 only for a stale /healthz
    assert client.get("/manifest/").status_code == 200


# --- during a sync ---------------------------------------------------------------------------------
@pytest.mark.parametrize("on", ["manifest", "tables"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_fault_during_a_sync_keeps_the_live_version_and_the_next_sync_recovers(faulty, client, kind, on):
    first = manifest_sync()
    assert first.outcome == "live"
    rows = Definition.objects.count()
    published = faulty.app.publish(NEW_DATASET)
    misbehave(faulty, kind, on)

    failed = manifest_sync()

    assert failed.outcome == "failed", failed.summary()
    if on == "manifest":  # maintenance and throttling are "try again later" (exit 75)
        assert failed.temporary == (kind in ("maintenance", "throttle"))
    state = ManifestState.get()
    assert state.active.version == first.version and Definition.objects.count() == rows
    forget_active_seq()
    site_answers(client)
    assert client.get("/api/manifest/").json()["version"] == first.version

    faulty.app.reset()
    again = manifest_sync()  # what the schedule does a few minutes later

    assert again.outcome == "live" and again.version == published.version, again.summary()
    assert not ManifestVersion.objects.filter(status__in=["checking", "downloading"]).exists()
    forget_active_seq()
    assert client.get("/api/manifest/").json()["version"] == published.version


# --- during a page view ------------------------------------------------------------------------------
def vault_keys(bungie) -> set[str]:
    return {i["key"] for i in bungie.app.player_state()["items"] if i["place"] == "vault"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_fault_during_a_page_view_shows_the_last_profile_or_a_clear_page_never_a_500(
    client, player, faulty, kind
):
    first = client.get("/inventory/")
    assert first.status_code == 200
    misbehave(faulty, kind, "profile")

    response = client.get("/inventory/?refresh=1")  # "refresh from Bungie": Bungie is asked

    page = response.content.decode()
    assert response.status_code in (200, 502, 503), response.status_code
    if response.status_code == 200:
        # The player's own items, as last seen, and said to be so.
        assert "last profile DVR saw" in page
        assert all(f"/inventory/item/{key}/" in page for key in list(vault_keys(faulty))[:5])
    else:
        assert "can't be shown right now" in page

    faulty.app.reset()
    assert "last profile DVR saw" not in client.get("/inventory/?refresh=1").content.decode()


# --- during a login ------------------------------------------------------------------------------------
@pytest.mark.parametrize("on", ["token", "memberships"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_fault_during_a_login_is_a_friendly_page_and_the_next_login_works(client, faulty, kind, on):
    assert manifest_sync().outcome == "live"
    answer = answer_on_bungie(faulty, start_login(client))
    misbehave(faulty, kind, on)

    response = client.get("/oauth/callback/", answer)

    assert response.status_code == 503, response.status_code
    assert "Bungie" in response.content.decode()
    assert "_auth_user_id" not in client.session and not BungieAccount.objects.exists()

    faulty.app.reset()
    assert log_in(client, faulty).status_code == 302
    assert "_auth_user_id" in client.session and BungieAccount.objects.count() == 1


# --- during a transfer -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_a_fault_during_a_transfer_says_so_and_the_page_shows_where_the_item_really_is(
    client, player, faulty, kind
):
    client.get("/inventory/")
    item = next(i for i in faulty.app.player_state()["items"] if i["place"] == "vault" and i["item_type"] == 3)
    misbehave(faulty, kind, "actions")

    response = client.post("/inventory/move/", {"item": item["key"], "to": TITAN}, follow=True)

    assert response.status_code == 200
    body = response.content.decode()
    assert "Moved " not in body
    expected = {"maintenance": "down for maintenance", "throttle": "limiting how fast"}
    assert expected.get(kind, "tell whether that worked") in body
    faulty.app.reset()
    if kind == "slow":
        time.sleep(1.6)  # Bungie acts after DVR gave up waiting: let it finish
    else:
        assert next(i for i in faulty.app.player_state()["items"] if i["key"] == item["key"])["place"] == "vault"
    # The page refreshed from Bungie shows where the item really is, and the move can be made again.
    page = client.get("/inventory/?refresh=1").content.decode()
    assert f"/inventory/item/{item['key']}/" in page
    moved = client.post("/inventory/move/", {"item": item["key"], "to": TITAN}, follow=True).content.decode()
    assert " to your Titan." in moved or "already there" in moved
    assert next(i for i in faulty.app.player_state()["items"] if i["key"] == item["key"])["place"] != "vault"
