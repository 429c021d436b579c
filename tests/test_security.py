"""Security checks: CSRF on every POST, login fixation and open redirects, tokens kept out of
error reports, the refresh endpoint's bearer and rate limit, other players' items, headers.

Covered elsewhere (and listed in docs/RELIABILITY.md): state replay, a state from another
browser and state expiry (test_login.py), session rotation at login (test_login.py),
tokens encrypted at rest and never logged (test_login.py), admin and refresh refused to
non-staff (test_manifest_entrypoints.py), check --deploy (test_foundation.py,
test_deploy_files.py), the CSP in a real browser (test_csp_browser.py).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import orjson
import pytest
import requests
from cryptography.fernet import Fernet
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RegexPattern
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from dvr.accounts.login import safe_next_path
from tests.support import answer_on_bungie, at_a_window_start, log_in, start_login, stored_tokens

ROOT = Path(__file__).resolve().parent.parent
TITAN = "2305843009262373961"
STRANGER_ITEM = "6917529999999999999"
STRANGER_CHARACTER = "2305843009999999999"


def vault_item(bungie) -> dict:
    return next(i for i in bungie.app.player_state()["items"] if i["place"] == "vault" and i["item_type"] == 3)


# --- CSRF on every POST ------------------------------------------------------------------------
def _our_routes() -> list[str]:
    """Every URL of DVR's own apps, with each parameter filled in (admin aside)."""
    paths: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if route.startswith("admin/"):
                    continue
                walk(pattern.url_patterns, prefix + route)
            elif isinstance(pattern, URLPattern) and isinstance(pattern.pattern, RegexPattern):
                # A regex route (the mirror's case-insensitive Bungie paths): Django writes it out.
                fill = {"language": "en", "filename": "f.json"}
                groups = pattern.pattern.regex.groupindex
                paths.append(reverse(pattern.name, kwargs={k: fill.get(k, "1") for k in groups}))
            elif isinstance(pattern, URLPattern):
                concrete = (prefix + route).replace("<str:version>", "v").replace("<str:table>", "t")
                concrete = concrete.replace("<str:hash_id>", "1").replace("<str:entity_type>", "T")
                concrete = re.sub(r"<int:\w+>", "1", concrete.replace("<str:kind>", "weapons"))
                paths.append("/" + concrete.replace("<str:item_id>", "1"))

    walk(get_resolver().url_patterns, "")
    return sorted(set(paths))


# The POST endpoints: each must refuse a request without the CSRF token.
STATE_CHANGING = {
    "/logout/", "/account/disconnect/", "/inventory/move/", "/inventory/equip/", "/inventory/pull/",
    "/inventory/vault-matching/", "/manifest/refresh/", "/updateManifest",
    # The player's own data: tags and notes, saved searches, DIM imports, wish lists.
    "/inventory/item/1/annotate/", "/inventory/tag-matching/", "/inventory/searches/",
    "/inventory/searches/1/rename/", "/inventory/searches/1/delete/", "/inventory/searches/1/default/",
    "/inventory/dim/import/", "/inventory/wishlists/", "/inventory/wishlists/1/delete/",
}


@pytest.mark.django_db
def test_every_post_without_a_csrf_token_is_refused_and_changes_nothing(player, synced):
    player.user.is_staff = True
    player.user.save()
    client = Client(enforce_csrf_checks=True)
    client.force_login(player.user)
    item = vault_item(synced)
    before = synced.app.player_state()["items"]
    form = {"item": item["key"], "to": TITAN, "character": TITAN, "q": "is:weapon", "force": "1"}

    routes = _our_routes()
    answers = {path: client.post(path, form).status_code for path in routes}

    assert STATE_CHANGING <= set(routes), "a POST endpoint was renamed: update this list"
    assert {path: answers[path] for path in STATE_CHANGING} == dict.fromkeys(STATE_CHANGING, 403)
    # Every other route refuses the POST too (CSRF first, or 405 where CSRF is exempt).
    assert {p: s for p, s in answers.items() if s not in (403, 405)} == {}
    admin_login = client.post("/admin/login/", {"username": "x", "password": "y"})
    assert admin_login.status_code == 403
    assert synced.app.player_state()["items"] == before
    assert synced.app.stats()["counts"].get("transferitem", 0) == 0
    assert client.get("/account/").status_code == 200  # still logged in: logout refused too


# --- login: fixation and open redirects -----------------------------------------------------------
@pytest.mark.django_db
def test_a_session_key_known_before_login_gives_nothing_after_it(bungie):
    victim = Client()
    victim.get("/login/")  # the session exists before login (it holds the state)
    planted = victim.cookies["sessionid"].value
    answer = answer_on_bungie(bungie, start_login(victim))
    assert victim.get("/oauth/callback/", answer).status_code == 302

    attacker = Client()
    attacker.cookies["sessionid"] = planted
    assert victim.cookies["sessionid"].value != planted
    assert victim.get("/account/").status_code == 200
    response = attacker.get("/account/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


EVIL_NEXT = [
    "//evil.example/", "///evil.example/", "https://evil.example/", "http:evil.example", "/\\evil.example",
    "\\\\evil.example", "/\t/evil.example", " //evil.example", "javascript:alert(1)", "//evil.example@127.0.0.1",
    "/%2F%2Fevil.example", "https:/evil.example", "/login/?next=//evil.example", "\x00//evil.example",
    "//[evil.example", "/x?a=//[",
]


@pytest.mark.django_db
@pytest.mark.parametrize("evil", EVIL_NEXT)
def test_a_next_that_could_leave_the_site_is_never_followed_after_login(client, bungie, evil):
    response = log_in(client, bungie, next_path=evil)

    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert "evil.example" not in location or location.startswith("/%2F")


@given(st.text(max_size=60) | st.sampled_from(EVIL_NEXT).flatmap(lambda s: st.text(max_size=5).map(s.__add__)))
@hypothesis_settings(max_examples=300, deadline=None)
def test_safe_next_path_only_ever_returns_a_local_path(value):
    result = safe_next_path(value, host="dvr.example")

    if result is not None:
        assert result == value
        assert result.startswith("/") and not result.startswith(("//", "/\\"))
        assert not any(ord(ch) < 32 or ch == "\\" for ch in result)
        assert urlsplit(urljoin("https://dvr.example/here/", result)).netloc == "dvr.example"


@pytest.mark.django_db
def test_a_lapsed_login_never_returns_to_another_sites_referer(client, player, synced):
    from dvr.accounts.models import BungieToken

    BungieToken.objects.all().delete()
    response = client.post("/inventory/move/", {"item": "1", "to": "vault"}, HTTP_REFERER="https://evil.example/x")

    assert response.status_code == 302
    assert response["Location"] == "/login/"


# --- tokens out of error reports ------------------------------------------------------------------
@pytest.mark.django_db
def test_tokens_are_absent_from_the_error_page_the_logs_and_the_error_report(
    player, synced, settings, caplog, monkeypatch
):
    """An unexpected failure while a token is in use: the player sees the plain 500 page, and
    neither the log nor the report Django mails to ADMINS carries the token."""
    from django.views.debug import ExceptionReporter

    access, refresh = stored_tokens(player)
    settings.DEBUG = False
    reports: list[str] = []

    def boom(self, method, url, **kwargs):
        raise RuntimeError("the network library broke")

    def report(request, exc_info):  # what AdminEmailHandler would send, as text and HTML
        reporter = ExceptionReporter(request, *exc_info, is_email=True)
        reports.append(reporter.get_traceback_text() + reporter.get_traceback_html())

    from django.core.signals import got_request_exception

    def on_exception(sender, request=None, **kwargs):
        report(request, sys.exc_info())

    got_request_exception.connect(on_exception)
    monkeypatch.setattr(requests.Session, "request", boom)
    caplog.set_level(logging.DEBUG)
    client = Client(raise_request_exception=False)
    client.force_login(player.user)
    try:
        response = client.post("/inventory/move/", {"item": vault_item(synced)["key"], "to": TITAN},
                               HTTP_AUTHORIZATION="Bearer should-be-hidden")
    finally:
        got_request_exception.disconnect(on_exception)

    assert response.status_code == 500
    assert reports and "the network library broke" in reports[0]
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for secret in (access, refresh):
        assert secret not in response.content.decode()
        assert secret not in logged
        assert secret not in reports[0]


# --- the refresh endpoint -------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["s3cret-token", "wrong-token!", "x", "s3cret-tokeX", "s3cret-token-and-more"])
def test_the_bearer_is_compared_in_constant_time(client, settings, monkeypatch, sent, bungie):
    settings.MANIFEST_REFRESH_TOKEN = "s3cret-token"
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)

    response = client.post("/manifest/refresh/", HTTP_AUTHORIZATION=f"Bearer {sent}")

    assert compared == [(sent.encode(), b"s3cret-token")]
    assert response.status_code == (202 if sent == "s3cret-token" else 403)


@pytest.mark.django_db
def test_the_refresh_endpoint_is_rate_limited_per_caller_with_retry_after(client, settings, bungie):
    settings.MANIFEST_REFRESH_TOKEN = "s3cret-token"
    settings.MANIFEST_REFRESH_RATE_LIMIT = 3

    with at_a_window_start(seconds_in=1):
        answers = [client.post("/manifest/refresh/", HTTP_AUTHORIZATION="Bearer s3cret-token") for _ in range(5)]
        # Guessing tokens from one address is limited too, and apart from the real token's count.
        guesses = [client.post("/manifest/refresh/", HTTP_AUTHORIZATION=f"Bearer guess-{n}").status_code
                   for n in range(5)]

    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    limited = answers[3]
    assert limited["Retry-After"] == "59"  # the window's end, 59 s away
    assert limited.json() == {"error": "too many refresh requests", "retry_after": 59}
    assert guesses == [403, 403, 403, 429, 429]


# --- other players' items -------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(("path", "form"), [
    ("/inventory/move/", {"item": STRANGER_ITEM, "to": "vault"}),
    ("/inventory/move/", {"item": STRANGER_ITEM, "to": TITAN}),
    ("/inventory/equip/", {"item": STRANGER_ITEM, "character": TITAN}),
    ("/inventory/pull/", {"item": STRANGER_ITEM}),
    ("/inventory/equip/", {"item": "VAULT", "character": STRANGER_CHARACTER}),
    ("/inventory/move/", {"item": "VAULT", "to": STRANGER_CHARACTER}),
])
def test_a_player_cannot_move_or_equip_what_is_not_theirs(client, player, synced, path, form):
    before = synced.app.player_state()["items"]
    form = {k: (vault_item(synced)["key"] if v == "VAULT" else v) for k, v in form.items()}

    response = client.post(path, form, follow=True)

    body = response.content.decode()
    assert response.status_code == 200
    assert "not in your inventory" in body or "not yours" in body
    assert synced.app.player_state()["items"] == before
    counts = synced.app.stats()["counts"]
    assert counts.get("transferitem", 0) == counts.get("equipitem", 0) == counts.get("pullfrompostmaster", 0) == 0


@pytest.mark.django_db
def test_a_player_cannot_see_an_item_that_is_not_theirs(client, player, synced):
    assert client.get(f"/inventory/item/{STRANGER_ITEM}/").status_code == 404
    assert client.get("/inventory/item/../../admin/").status_code in (301, 302, 404)


# --- headers ----------------------------------------------------------------------------------------
HEADERS_SCRIPT = """
import json
from django.test import Client
response = Client().get("/api/no-such-thing/", secure=True)  # a JSON 404: no static files needed
print(json.dumps(dict(response.headers)))
"""


def test_the_production_shape_sends_hsts_nosniff_referrer_policy_frame_options_and_a_csp():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DEBUG="false", SECRET_KEY="headers-test-" + "k" * 50, ALLOWED_HOSTS="testserver",
               TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(), DJANGO_SETTINGS_MODULE="dvr.settings",
               BUNGIE_ROOT_URL="https://www.bungie.net")
    code = "import django; django.setup()\n" + HEADERS_SCRIPT
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    headers = json.loads(done.stdout.strip().splitlines()[-1])

    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    csp = {part.split()[0]: part.split()[1:] for part in headers["Content-Security-Policy"].split("; ")}
    assert csp["default-src"] == ["'self'"] and csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert csp["img-src"] == ["'self'", "data:", "https://www.bungie.net"]


@pytest.mark.django_db
def test_every_page_sends_the_csp_with_bungies_image_host(client, player, synced, settings):
    for path in ("/", "/manifest/", "/inventory/", "/account/", "/api/manifest/"):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert f"img-src 'self' data: {settings.BUNGIE_ROOT_URL}" in policy


def test_no_template_has_an_inline_script_style_or_event_handler():
    import re

    inline = re.compile(r"""<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=|javascript:""", re.I)
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in (ROOT / "templates").rglob("*.html")
                 for n, line in enumerate(path.read_text().splitlines(), 1) if inline.search(line)]
    assert offenders == []



# --- a hostile manifest: script in Bungie's text, icons off Bungie's host ------------------------
HOSTILE_TEXT = "<script>alert('dvr')</script>\"'><img src=x onerror=alert(1)>"
HOSTILE_VERSION = "<svg onload=alert(2)>\"'"  # no "/": the version pages have a URL for it
UNESCAPED = ("<script>alert", "<img src=x onerror", "<svg onload")


def publish_hostile_items(bungie) -> None:
    """Every item's name and description carry script and quote-breaking text, and every
    icon points off Bungie's host (the fake's own item table, changed and served raw)."""
    from tests.fakebungie.datasets import ITEM_TABLE

    table = orjson.loads(b"".join(bungie.app.current.body("en", ITEM_TABLE).chunks()))
    for number, entry in enumerate(table.values()):
        display = entry.setdefault("displayProperties", {})
        display["name"] = f"{HOSTILE_TEXT} {display.get('name', '')}"
        display["description"] = HOSTILE_TEXT
        display["icon"] = ("https://evil.example/i.png", "//evil.example/i.png", "javascript:alert(3)")[number % 3]
    bungie.app.publish(version=HOSTILE_VERSION, raw={ITEM_TABLE: orjson.dumps(table)})
    from manifest.lookup import forget_active_seq, forget_local_summaries
    from manifest.sync import manifest_sync

    assert manifest_sync().outcome == "live"
    forget_active_seq()
    forget_local_summaries()


def hostile_pages(client: Client, staff_client: Client, bungie) -> dict[str, str]:
    """Every page a hostile name reaches, by name, as HTML."""
    from manifest.models import Definition, ManifestVersion

    weapons = [i for i in bungie.app.player_state()["items"] if i["instanced"] and i["item_type"] == 3]
    version = ManifestVersion.objects.get(version=HOSTILE_VERSION)
    base = f"/manifest/{quote(HOSTILE_VERSION, safe='')}/"
    changed = Definition.objects.filter(valid_from=version.seq, entity_type="DestinyInventoryItemDefinition").first()
    urls = {
        "vault": (client, "/inventory/"),
        "item": (client, f"/inventory/item/{weapons[0]['key']}/"),
        "quick view": (client, f"/inventory/item/{weapons[0]['key']}/quick/"),
        "compare": (client, "/inventory/compare/?q=is:weapon"),
        "home": (client, "/"),
        "manifest history and chart": (client, "/manifest/"),
        "version": (client, f"{base}?id={version.pk}"),
        "table changes": (client, f"{base}DestinyInventoryItemDefinition/?kind=changed&id={version.pk}"),
        "entry diff": (client, f"{base}DestinyInventoryItemDefinition/{changed.hash}/?id={version.pk}"),
        "search": (client, "/manifest/search/?q=script"),
        "admin versions": (staff_client, "/admin/manifest/manifestversion/"),
        "admin version": (staff_client, f"/admin/manifest/manifestversion/{version.pk}/change/"),
    }
    pages = {}
    for name, (who, url) in urls.items():
        response = who.get(url)
        assert response.status_code == 200, (name, url, response.status_code)
        pages[name] = response.content.decode()
    return pages


@pytest.mark.django_db
def test_script_in_a_manifests_names_is_shown_as_text_on_every_page_it_reaches(client, player, synced, staff):
    publish_hostile_items(synced)
    staff_client = Client()
    staff_client.force_login(staff)

    pages = hostile_pages(client, staff_client, synced)

    for name, html in pages.items():
        assert not [s for s in UNESCAPED if s in html], name
    reached = {name for name, html in pages.items() if "&lt;script&gt;alert" in html or "&lt;svg onload" in html}
    assert reached == set(pages)


@pytest.mark.django_db
def test_an_icon_path_off_bungies_host_is_never_an_image_source(client, player, synced, staff):
    publish_hostile_items(synced)
    staff_client = Client()
    staff_client.force_login(staff)

    pages = hostile_pages(client, staff_client, synced)

    for name, html in pages.items():
        sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
        assert all(src.startswith((synced.url + "/", "/static/")) for src in sources), (name, sources[:5])
        links = re.findall(r'\s(?:src|href|srcset|action)="([^"]*)"', html)
        assert not [link for link in links if "evil.example" in link or "javascript:" in link], name
