"""The ways in to a sync besides the command: the schedule, the admin action and button,
the refresh endpoint (and its 2017 alias), and the webhook that tells operators."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_q.brokers import get_broker
from django_q.models import Schedule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from manifest.locking import sync_lock
from manifest.models import ManifestVersion
from manifest.sync import manifest_sync
from manifest.tasks import SCHEDULE_NAME

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker():
    queue = get_broker()
    queue.purge_queue()
    yield queue
    queue.purge_queue()


def csrf_client(user) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.get("/admin/login/")  # sets the CSRF cookie
    client.force_login(user)
    return client, client.cookies["csrftoken"].value


@contextmanager
def sync_running_elsewhere() -> Iterator[None]:
    """Another thread (its own database session) holds the sync lock for the block."""
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with sync_lock():
                holding.set()
                done.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    try:
        yield
    finally:
        done.set()
        holder.join(10)


REFRESH_BUTTON = "/admin/manifest/manifestversion/refresh/"


# --- the schedule -------------------------------------------------------------------------
def test_the_schedule_exists_exactly_once_after_migrating_twice(settings):
    settings.MANIFEST_CHECK_MINUTES = 7
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)

    schedules = Schedule.objects.filter(name=SCHEDULE_NAME)
    assert schedules.count() == 1
    schedule = schedules.get()
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "manifest.tasks.refresh_manifest", Schedule.MINUTES, 7, -1
    )


def test_cluster_settings_suit_a_long_job(settings):
    q = settings.Q_CLUSTER
    assert q["timeout"] < q["retry"]
    assert q["max_attempts"] == 1
    assert q["catch_up"] is False


# --- the refresh endpoint -------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/manifest/refresh/", "/updateManifest"])
def test_staff_with_csrf_queues_a_refresh(path, staff, broker):
    client, token = csrf_client(staff)

    response = client.post(path, HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 202
    body = response.json()
    assert body["queued"] is True and body["task_id"]
    assert broker.queue_size() == 1


def test_staff_without_csrf_is_refused(staff, broker):
    client, _ = csrf_client(staff)

    response = client.post("/manifest/refresh/")

    assert response.status_code == 403
    assert broker.queue_size() == 0


def test_a_player_who_is_not_staff_is_refused(plain_user, broker):
    client, token = csrf_client(plain_user)

    response = client.post("/manifest/refresh/", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 403
    assert broker.queue_size() == 0


def test_anonymous_is_asked_to_authenticate(client, broker):
    response = client.post("/manifest/refresh/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert broker.queue_size() == 0


def test_the_bearer_token_queues_a_refresh_without_a_session(client, settings, broker):
    settings.MANIFEST_REFRESH_TOKEN = "s3cret-refresh-token"

    response = client.post("/manifest/refresh/", {"force": "1"}, HTTP_AUTHORIZATION="Bearer s3cret-refresh-token")

    assert response.status_code == 202
    assert response.json()["force"] is True
    assert broker.queue_size() == 1


@pytest.mark.parametrize("header", ["Bearer wrong", "Bearer ", "Basic czNjcmV0", "s3cret-refresh-token"])
def test_a_bad_bearer_token_is_refused(client, settings, broker, header):
    settings.MANIFEST_REFRESH_TOKEN = "s3cret-refresh-token"

    response = client.post("/manifest/refresh/", HTTP_AUTHORIZATION=header)

    assert response.status_code == 403
    assert broker.queue_size() == 0


def test_no_bearer_token_is_accepted_when_none_is_configured(client, settings, broker):
    settings.MANIFEST_REFRESH_TOKEN = ""

    response = client.post("/manifest/refresh/", HTTP_AUTHORIZATION="Bearer ")

    assert response.status_code == 403


def test_get_is_not_allowed(client):
    assert client.get("/manifest/refresh/").status_code == 405


def test_two_refreshes_while_idle_queue_one_job_and_the_second_is_told_so(staff, broker):
    client, token = csrf_client(staff)

    first = client.post("/manifest/refresh/", HTTP_X_CSRFTOKEN=token)
    second = client.post("/manifest/refresh/", HTTP_X_CSRFTOKEN=token)

    assert first.json()["queued"] is True
    assert second.status_code == 202
    assert second.json() == {"queued": False, "running": False, "already_queued": True,
                             "message": "a manifest refresh is already queued and starts soon"}
    assert broker.queue_size() == 1


def test_two_clicks_of_the_admin_button_queue_one_job(staff, broker):
    client, token = csrf_client(staff)

    client.post(REFRESH_BUTTON, {"csrfmiddlewaretoken": token})
    response = client.post(REFRESH_BUTTON, {"csrfmiddlewaretoken": token}, follow=True)

    assert "Nothing queued: a manifest refresh is already queued" in response.content.decode()
    assert broker.queue_size() == 1


def test_once_the_queued_refresh_starts_another_can_be_queued(bungie, staff, broker):
    from manifest.tasks import refresh_manifest

    client, token = csrf_client(staff)
    assert client.post("/manifest/refresh/", HTTP_X_CSRFTOKEN=token).json()["queued"] is True
    broker.purge_queue()

    refresh_manifest()  # what the cluster runs

    assert client.post("/manifest/refresh/", HTTP_X_CSRFTOKEN=token).json()["queued"] is True
    assert broker.queue_size() == 1


# --- the admin ----------------------------------------------------------------------------------
def test_the_admin_action_queues_a_refresh_and_says_so(bungie, staff, broker):
    manifest_sync()
    client = Client()
    client.force_login(staff)
    version = ManifestVersion.objects.get()

    response = client.post(
        "/admin/manifest/manifestversion/",
        {"action": "refresh_manifest", "_selected_action": [version.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Manifest refresh queued" in response.content.decode()
    assert broker.queue_size() == 1


def test_the_admin_button_works_before_any_manifest_exists(staff, broker):
    client = Client()
    client.force_login(staff)

    response = client.post(REFRESH_BUTTON, follow=True)

    assert "Manifest refresh queued" in response.content.decode()
    assert broker.queue_size() == 1


def test_the_changelist_shows_the_refresh_button_as_a_form_with_csrf(staff):
    client = Client()
    client.force_login(staff)

    page = client.get("/admin/manifest/manifestversion/").content.decode()

    form = page[page.index(f'action="{REFRESH_BUTTON}"'):]
    assert form.index("csrfmiddlewaretoken") < form.index("Refresh manifest</button>") < form.index("</form>")


def test_the_admin_button_queues_a_refresh_and_returns_to_the_changelist(staff, broker):
    client, token = csrf_client(staff)

    response = client.post(REFRESH_BUTTON, {"csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert response["Location"] == "/admin/manifest/manifestversion/"
    assert "Manifest refresh queued (task " in client.get(response["Location"]).content.decode()
    assert broker.queue_size() == 1


def test_the_admin_button_says_so_when_a_sync_is_already_running(staff, broker):
    client = Client()
    client.force_login(staff)

    with sync_running_elsewhere():
        response = client.post(REFRESH_BUTTON, follow=True)

    assert "A manifest sync is already running; nothing queued." in response.content.decode()
    assert broker.queue_size() == 0


def test_the_admin_button_needs_a_post_with_csrf(staff, broker):
    client, _ = csrf_client(staff)

    assert client.get(REFRESH_BUTTON).status_code == 405
    assert client.post(REFRESH_BUTTON).status_code == 403
    assert broker.queue_size() == 0


def test_a_staff_member_without_permission_on_versions_cannot_press_the_button(broker):
    clerk = get_user_model().objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    client = Client()
    client.force_login(clerk)

    assert client.post(REFRESH_BUTTON).status_code == 403
    assert broker.queue_size() == 0


def test_a_player_who_is_not_staff_cannot_press_the_button(plain_user, broker):
    client = Client()
    client.force_login(plain_user)

    response = client.post(REFRESH_BUTTON)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert broker.queue_size() == 0


def test_the_admin_lists_versions_with_status_counts_and_reason(bungie, staff):
    manifest_sync()
    bungie.app.publish("2026-06-09")
    bungie.app.misbehave("truncate_json", on="tables")
    manifest_sync()
    client = Client()
    client.force_login(staff)

    page = client.get("/admin/manifest/manifestversion/").content.decode()

    assert "244122.26.06.10.2000-1-bnet.65386" in page
    assert "not valid JSON" in page
    change_page = f"/admin/manifest/manifestversion/{ManifestVersion.objects.first().pk}/change/"
    assert client.get(change_page).status_code == 200


def test_a_player_cannot_open_the_admin(plain_user):
    client = Client()
    client.force_login(plain_user)

    response = client.get("/admin/manifest/manifestversion/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- the webhook ------------------------------------------------------------------------------
@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict], list[int]]]:
    """A Slack-like receiver on loopback; ``statuses`` decides what it answers."""
    received: list[dict] = []
    statuses: list[int] = [200]

    @Request.application
    def app(request: Request) -> Response:
        received.append(json.loads(request.get_data()))
        return Response("ok", status=statuses[0])

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received, statuses
    server.shutdown()


def test_the_webhook_hears_of_a_new_version(bungie, settings, webhook):
    url, received, _ = webhook
    settings.MANIFEST_WEBHOOK_URL = url

    manifest_sync()
    manifest_sync()  # no change: no message

    assert len(received) == 1
    assert "244122.26.06.10.2000-1-bnet.65386 is live" in received[0]["text"]
    assert received[0]["content"] == received[0]["text"]
    assert received[0]["dvr"]["outcome"] == "live"


def test_the_webhook_hears_of_a_failed_sync(bungie, settings, webhook):
    url, received, _ = webhook
    settings.MANIFEST_WEBHOOK_URL = url
    bungie.app.misbehave("truncate_json", on="tables")

    manifest_sync()

    assert len(received) == 1
    assert "failed" in received[0]["text"]


def test_a_failing_webhook_never_fails_the_sync(bungie, settings, webhook):
    url, _, statuses = webhook
    statuses[0] = 500
    settings.MANIFEST_WEBHOOK_URL = url

    assert manifest_sync().outcome == "live"


def test_an_unreachable_webhook_never_fails_the_sync(bungie, settings):
    settings.MANIFEST_WEBHOOK_URL = "http://127.0.0.1:9/hook"

    assert manifest_sync().outcome == "live"


def test_a_failing_version_is_told_once_and_again_when_it_goes_live(bungie, settings, webhook):
    url, received, _ = webhook
    manifest_sync()
    settings.MANIFEST_WEBHOOK_URL = url
    published = bungie.app.publish("2026-06-23")
    bungie.app.misbehave("truncate_json", on="tables")

    failures = [manifest_sync() for _ in range(3)]
    bungie.app.reset()
    live = manifest_sync()

    assert [r.outcome for r in failures] == ["failed"] * 3 and live.outcome == "live"
    assert [m["text"].split(":")[0] for m in received] == [
        "DVR manifest sync failed", f"Destiny 2 manifest {published.version} is live on DVR",
    ]


def test_a_version_failing_for_hours_gets_a_reminder_at_most_every_few_hours(bungie, settings, webhook):
    from datetime import timedelta

    from django.db.models import F

    from manifest.models import ManifestState

    url, received, _ = webhook
    settings.MANIFEST_WEBHOOK_URL = url
    settings.MANIFEST_WEBHOOK_REMINDER_HOURS = 6
    bungie.app.misbehave("truncate_json", on="tables")
    manifest_sync()
    manifest_sync()
    assert len(received) == 1

    # Seven hours on: the message was sent that long ago.
    ManifestState.objects.update(alert_sent_at=F("alert_sent_at") - timedelta(hours=7))
    manifest_sync()
    manifest_sync()

    assert len(received) == 2
    assert received[1]["text"].startswith("DVR manifest sync still failing (reminder, at most every 6 h): ")


def test_a_new_failing_version_is_told_even_while_another_was_failing(bungie, settings, webhook):
    url, received, _ = webhook
    settings.MANIFEST_WEBHOOK_URL = url
    bungie.app.misbehave("truncate_json", on="tables")
    manifest_sync()
    bungie.app.publish("2026-06-23")

    manifest_sync()
    manifest_sync()

    assert len(received) == 2
    assert all(m["text"].startswith("DVR manifest sync failed: ") for m in received)


def test_bungie_going_back_to_the_live_version_is_told_as_a_recovery(bungie, settings, webhook):
    url, received, _ = webhook
    manifest_sync()
    settings.MANIFEST_WEBHOOK_URL = url
    bungie.app.publish("2026-06-23")
    bungie.app.misbehave("truncate_json", on="tables")
    manifest_sync()
    bungie.app.reset()
    bungie.app.revert()  # Bungie withdrew the broken publish

    assert manifest_sync().outcome == "unchanged"
    manifest_sync()

    assert len(received) == 2
    assert received[1]["text"].startswith("DVR recovered: ")
