"""Bad input from players and from Bungie: random and malformed, never a 500.

Property-based (hypothesis): the Bungie envelope parser, the inventory filter language, the
inventory and manifest pages' query strings. Schemathesis: our JSON endpoints against
docs/openapi.yaml, with random and malformed path, query and form input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dvr.lib.bungie import BungieError, parse_envelope
from inventory import filters

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

# JSON values of every shape, for bodies that parse but are not what Bungie should send.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
envelope_keys = st.sampled_from(["Response", "ErrorCode", "ThrottleSeconds", "ErrorStatus", "Message", "MessageData"])
# Texts orjson would not write: huge numbers, exponents, in Bungie's own fields.
json_texts = st.builds(
    lambda key, number: f'{{"{key}": {number}, "ErrorStatus": "x", "Message": "y"}}',
    st.sampled_from(["ErrorCode", "ThrottleSeconds", "Response"]),
    st.integers().map(str) | st.sampled_from(["1e400", "-1e400", "1.5", "-0", "1E2"]),
)
envelopes = st.dictionaries(envelope_keys, json_values | st.integers(-5, 3000), max_size=6)


# --- the Bungie envelope parser -------------------------------------------------------------------
@given(
    body=st.binary(max_size=300) | json_values.map(orjson.dumps) | envelopes.map(orjson.dumps)
    | json_texts.map(str.encode),
    status=st.sampled_from([200, 204, 301, 400, 401, 404, 429, 500, 502, 503]) | st.integers(100, 599),
    content_type=st.sampled_from(["", "application/json", "text/html"]),
)
@settings(max_examples=400, deadline=None)
def test_the_envelope_parser_returns_a_response_or_raises_a_bungie_error_and_nothing_else(body, status, content_type):
    try:
        parse_envelope(body, http_status=status, content_type=content_type)
    except BungieError as exc:
        str(exc)  # the message is printable whatever the fields held
        assert isinstance(exc.retryable, bool) and exc.throttle_seconds >= 0


@given(envelope=envelopes)
@settings(max_examples=200, deadline=None)
def test_an_envelope_is_success_only_when_bungie_says_error_code_1(envelope):
    try:
        response = parse_envelope(orjson.dumps(envelope), http_status=200)
    except BungieError:
        assert envelope.get("ErrorCode") != 1
    else:
        assert envelope.get("ErrorCode") == 1 and response == envelope.get("Response")


# --- the filter language -------------------------------------------------------------------------
@dataclass
class Item:
    name: str
    tier: str
    damage: str
    slot: str
    kind: str
    power: int | None
    equipped: bool
    location: str


items = st.builds(
    Item, name=st.text(max_size=20), tier=st.sampled_from(["", *filters.TIERS]),
    damage=st.sampled_from(["", *filters.DAMAGE_TYPES]), slot=st.sampled_from(["", *filters.SLOTS]),
    kind=st.sampled_from(["", "weapon", "armor", "ghost"]), power=st.none() | st.integers(0, 10**7),
    equipped=st.booleans(), location=st.sampled_from(["character", "vault", "postmaster"]),
)
words = st.sampled_from(["is:", "tier:", "slot:", "power:", "light:", "name:", "damage:", "-", '"', ":", ">=", "<",
                         "exotic", "weapon", "1800", "-", "1800-1900", "\\", "'", "\x00", "\u202e", " "])
queries = st.text(max_size=250) | st.lists(words, max_size=30).map("".join)


@given(text=queries, item=items, sort=st.text(max_size=10) | st.sampled_from(list(filters.SORTS)))
@settings(max_examples=500, deadline=None)
def test_the_filter_language_never_raises_and_only_keeps_what_it_read(text, item, sort):
    parsed = filters.parse_query(text)

    assert len(parsed.text) <= filters.MAX_QUERY_LENGTH
    assert isinstance(parsed.matches(item), bool)
    filters.sort_key(sort)(item)
    # Everything it could not read is reported back, where it is, and nothing it read is ignored.
    assert all(0 <= p.start <= p.end <= len(parsed.text) for p in parsed.problems)
    assert all(p.kind != "internal" for p in parsed.problems)
    assert len(parsed.ignored) == sum(1 for p in parsed.problems if p.kind in ("unknown", "value"))
    assert all(word in parsed.text and filters.parse_query(word).problems for word in parsed.ignored)


# --- pages with random query strings -------------------------------------------------------------
@pytest.mark.django_db
@given(q=queries, sort=st.text(max_size=12), htmx=st.booleans())
@settings(max_examples=25, deadline=None, suppress_health_check=FIXTURE_OK)
def test_the_inventory_page_answers_any_filter_without_an_error(client, player, q, sort, htmx):
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.get("/inventory/", {"q": q, "sort": sort}, headers=headers)

    assert response.status_code == 200


@pytest.mark.django_db
@given(
    segment=st.text(min_size=1, max_size=40).filter(lambda s: s not in (".", "..")),
    q=st.text(max_size=250),
    kind=st.text(max_size=10),
    page=st.text(max_size=8) | st.sampled_from(["²", "\u0661", "99999999999999999999", "-1", "0", "1e3"]),
)
@example(segment="v\x00", q="\x00", kind="\x00", page="\x00")
@example(segment="%00", q="%", kind="%00", page="%")
@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
def test_manifest_pages_answer_any_path_or_query_with_a_page_never_a_500(synced, segment, q, kind, page):
    part = quote(segment, safe="")
    for path, query in [
        (f"/manifest/{part}/", {}),
        (f"/manifest/{part}/{part}/", {"kind": kind, "page": page, "id": page}),
        (f"/manifest/{part}/DestinyInventoryItemDefinition/{part}/", {}),
        ("/manifest/search/", {"q": q}),
        (f"/api/definitions/{part}/{part}/", {"lang": kind, "version": segment}),
    ]:
        response = Client().get(path, query)
        assert response.status_code < 500, (path, query, response.status_code)


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "status"), [
    ("/manifest/v%00/", 400), ("/manifest/v/DestinyInventoryItemDefinition/%001/", 400),
    ("/api/definitions/T%00/1/", 400), ("/inventory/item/1%00/", 400),
    ("/api/definitions/DestinyInventoryItemDefinition/1/?version=%00", 404), ("/manifest/v/?id=%00", 404),
    ("/manifest/search/?q=a%00b", 200), ("/login/?next=/%00", 302),
    ("/api/manifest/changes?since=%00", 410), ("/api/manifest/changes?since=v&tables=A%00", 400),
    ("/Platform/Destiny2/Manifest/DestinyClassDefinition/1/?lc=%00", 400),
    ("/Platform/Destiny2/Manifest/T%00/1/", 400), ("/common/destiny2_content/json/en/a%00.json", 400),
    ("/api/definitions/DestinyClassDefinition/1/timeline/?lang=%00", 400),
])
def test_a_nul_byte_in_the_url_is_never_a_500(synced, url, status):
    # Postgres refuses NUL in text parameters: a NUL in the path is refused before any view,
    # and each query value that reaches the database is checked where it is used.
    assert Client().get(url).status_code == status


# --- schemathesis against our OpenAPI document ----------------------------------------------------
schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.yaml")
REFRESH_TOKEN = "schemathesis-refresh-token"


@schemathesis.auth().apply_to(path="/manifest/refresh/")
class RefreshToken:
    """The machine's bearer; schemathesis also sends none and wrong ones, expecting 401/403."""

    def get(self, case, context):
        return REFRESH_TOKEN

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def openapi_site(synced_site, settings):
    """The synced live site, its refresh endpoint open to REFRESH_TOKEN and not rate-limited."""
    settings.MANIFEST_REFRESH_TOKEN = REFRESH_TOKEN
    settings.MANIFEST_REFRESH_RATE_LIMIT = 10_000  # the limit has its own test (test_security.py)
    settings.MIRROR_RATE_LIMIT = 0  # the mirror's too (test_mirror.py)
    return synced_site


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=FIXTURE_OK)
def test_our_json_endpoints_keep_to_their_openapi_document_whatever_they_are_sent(case, openapi_site):
    case.call_and_validate(base_url=openapi_site)
