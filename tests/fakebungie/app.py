"""``FakeBungie``: a WSGI app that speaks Bungie.net's protocol, with all state inside.

Everything lives on one instance behind one lock, so a test can start a server, drive
it from Python (``fake.publish()``, ``fake.misbehave()``, ...) or over HTTP
(``/__fake__/...``), and look at what the client did (``fake.stats()``).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import logging
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from . import icons
from .datasets import ALL_LANGUAGES, LANGUAGES, Body, BytesBody, Published, datasets, get_dataset, make_guid
from .envelopes import PlatformError, error_body, success_body
from .faults import Fault, classify
from .items import GENERAL_VAULT, ItemSpec, table_files
from .player import PROFILE_SIZES, Player
from .plugs import Roll, roll

log = logging.getLogger(__name__)

# Bungie's real limits, when switched on (`FakeBungie.quirks(limits=True)`): about one
# TransferItem per second per account, and 25 /Platform requests per second per API key
# averaged over 10 s (throttled for ~10 s past it).
TRANSFER_INTERVAL = 1.0
CLIENT_WINDOW = 10.0
CLIENT_LIMIT = 250
CLIENT_THROTTLE_SECONDS = 10

DEFAULT_DATASET = "2026-06-16"
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 7_776_000
AUTH_CODE_SECONDS = 600
SECRET_HEADERS = {"authorization", "x-api-key", "cookie", "proxy-authorization"}
# Components that need the owner's token (everything else here is public).
PRIVATE_COMPONENTS = {102, 103, 201}
COMPONENT_NAMES = {
    "profiles": 100,
    "profileinventories": 102,
    "profilecurrencies": 103,
    "characters": 200,
    "characterinventories": 201,
    "characterequipment": 205,
    "iteminstances": 300,
    "itemstats": 304,
    "itemsockets": 305,
    "itemreusableplugs": 310,
}


ERROR_500_HTML = (
    b"<!DOCTYPE html><html><head><title>Bungie.net - Error</title></head><body>"
    b"<h1>Server Error</h1><p>An error occurred while processing your request.</p></body></html>"
)


@dataclass
class Token:
    value: str
    membership_id: str
    expires_at: float


@dataclass
class Alert:
    key: str
    html: str
    level: int = 1
    type: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "AlertKey": self.key,
            "AlertHtml": self.html,
            "AlertTimestamp": "2026-06-16T17:00:00Z",
            "AlertLink": "https://help.bungie.net/",
            "AlertLevel": self.level,
            "AlertType": self.type,
        }


def _rule(path: str, endpoint: str, methods: Iterable[str] = ("GET",)) -> Rule:
    # Bungie's paths are case-insensitive: routing happens on the lower-cased path.
    return Rule(path.lower(), endpoint=endpoint, methods=list(methods))


URLS = Map(
    [
        _rule("/Platform/Destiny2/Manifest/", "manifest"),
        _rule("/Platform/Destiny2/Manifest/<entity_type>/<hash_id>/", "entity"),
        _rule("/Platform/GlobalAlerts/", "alerts"),
        _rule("/Platform/App/OAuth/token/", "token", ["POST"]),
        _rule("/Platform/User/GetMembershipsForCurrentUser/", "memberships"),
        _rule("/Platform/Destiny2/<membership_type>/Profile/<membership_id>/", "profile"),
        _rule("/Platform/Destiny2/Actions/Items/TransferItem/", "transfer", ["POST"]),
        _rule("/Platform/Destiny2/Actions/Items/EquipItem/", "equip", ["POST"]),
        _rule("/Platform/Destiny2/Actions/Items/PullFromPostmaster/", "pull", ["POST"]),
        _rule("/common/destiny2_content/json/<lang>/<filename>", "table"),
        _rule("/common/destiny2_content/icons/<path:rest>", "icon"),
        _rule("/common/destiny2_content/screenshots/<path:rest>", "icon"),
        _rule("/img/<path:rest>", "icon"),
        _rule("/en/OAuth/Authorize", "authorize", ["GET", "POST"]),
        _rule("/__fake__/<action>", "control", ["GET", "POST"]),
    ],
    strict_slashes=True,
)


SHARED_ROLL = "shared"  # the instance id every copy's roll is drawn for, with ``cache_profiles``


class FakeBungie:
    """The fake Bungie.net. Call it as a WSGI app; drive it with the methods below."""

    def __init__(
        self,
        dataset: str = DEFAULT_DATASET,
        items: ItemSpec | None = None,
        *,
        api_key: str = "fake-api-key",
        client_id: str = "12345",
        client_secret: str = "fake-client-secret",
        redirect_uri: str = "http://127.0.0.1:8000/oauth/callback/",
        profile_size: str = "normal",
        vault_items: int | None = None,
        player_seed: int = 0,
        players: int = 1,
        profile_latency: float = 0.0,
        cache_profiles: bool = False,
        languages: Iterable[str] = LANGUAGES,
    ) -> None:
        self._lock = threading.RLock()
        # The manifest lists these languages' tables (Bungie's are ALL_LANGUAGES).
        self.languages = tuple(languages)
        if not self.languages or set(self.languages) - set(ALL_LANGUAGES):
            raise ValueError(f"languages must be some of {', '.join(ALL_LANGUAGES)}")
        # Bungie's GetProfile takes ~100-200 ms; the fake answers at once unless asked
        # (the players bench, P5). Slept outside the lock: concurrent players wait together.
        self.profile_latency = profile_latency
        # Many large players (P5): a player's GetProfile body kept while their items are
        # unchanged, sent again with fresh timestamps, and each item hash's roll drawn once
        # for every copy and player (drawing a player's 1,200 rolls is ~90 ms under the lock,
        # and keeping every player's rolls ~25 MB each).
        self._profile_bodies: dict[str, tuple[Hashable, bytes, bytes]] | None = {} if cache_profiles else None
        self._shared_rolls: dict[tuple[ItemSpec, int], Roll] = {}
        self.api_key = api_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._versions: list[Published] = []
        self._by_guid: dict[str, Published] = {}
        self._faults: list[Fault] = []
        self._flap = False
        self._table_404_after_publish = 0
        self._manifest_requests = 0
        # Bungie's own limits (`quirks(limits=True)`): off unless a test asks (the fault suite does).
        self._limits = False
        self._last_transfer: dict[str, float] = {}  # per account (Bungie membership id)
        self._client_calls: dict[str, deque[float]] = {}
        self._alerts: list[Alert] = []
        self._codes: dict[str, tuple[str, float]] = {}
        self._access: dict[str, Token] = {}
        self._refresh: dict[str, Token] = {}
        self._counts: Counter[str] = Counter()
        self._table_counts: Counter[str] = Counter()
        self._recent: deque[dict[str, Any]] = deque(maxlen=500)

        ds = get_dataset(dataset)
        spec = items or ItemSpec()
        self._publish_locked(ds, spec, version=ds.version)
        n_vault = vault_items if vault_items is not None else PROFILE_SIZES[profile_size]
        # ``players`` > 1 (the soak): each login (an approved authorization, or a token
        # issued by hand) gets the next player in turn; player 0 is the demo player.
        if players < 1:
            raise ValueError("players must be at least 1")
        self.players = [
            Player.generate(spec.summaries(), vault_items=n_vault, vault_capacity=self._vault_capacity(),
                            seed=player_seed + number, number=number)
            for number in range(players)
        ]
        self.player = self.players[0]
        self._by_member = {p.bungie_membership_id: p for p in self.players}
        self._by_destiny = {p.destiny_membership_id: p for p in self.players}
        # Every roll the players' items need, drawn in the background from the start (~2 ms
        # each, thousands): not under the lock when each player's first GetProfile comes.
        self._rolls_drawn = threading.Event()
        if cache_profiles:
            hashes = sorted({i.item_hash for p in self.players for i in p.items.values() if i.instanced})
            threading.Thread(target=self._draw_rolls, args=(spec, hashes), name="fakebungie-rolls",
                             daemon=True).start()
        self._logins = 0

    # ==================================================================================
    # Python control API
    # ==================================================================================
    @property
    def current(self) -> Published:
        with self._lock:
            return self._versions[-1]

    @property
    def versions(self) -> list[Published]:
        with self._lock:
            return list(self._versions)

    def publish(
        self,
        dataset: str | None = None,
        items: ItemSpec | None = None,
        *,
        same_version: bool = False,
        version: str | None = None,
        without: Iterable[str] = (),
        corrupt: dict[str, str] | None = None,
        raw: dict[str, bytes] | None = None,
        raw_headers: dict[str, dict[str, str | None]] | None = None,
    ) -> Published:
        """Make a new current manifest version with new GUIDs in every path.

        The version string is the dataset's own; if that is already taken, a synthetic
        ``<dataset version>-fake<N>``; ``version=`` forces one; ``same_version=True`` keeps
        the current string while the paths change (a real Bungie quirk). Older versions'
        files keep being served. ``without`` leaves tables out of the listing (a table
        that disappears); ``corrupt`` serves a table broken: ``{"Table": "list"}`` (not an
        object keyed by hash) or ``{"Table": "hash_mismatch"}`` (an entry's hash differs
        from its key). ``raw`` serves tables as exactly the bytes given (a hostile table:
        any body at all) and ``raw_headers`` replaces a table's response headers (e.g.
        ``{"Table": {"Content-Length": "5000000000"}}``, None leaves a header out); a table named in either that the
        dataset lacks is added to the listing.
        """
        with self._lock:
            ds = get_dataset(dataset) if dataset else self.current.dataset
            spec = items or self.current.items
            if same_version:
                version = self.current.version
            elif version is None:
                version = ds.version
                if any(v.version == version for v in self._versions):
                    version = f"{ds.version}-fake{len(self._versions)}"
            return self._publish_locked(ds, spec, version=version, without=frozenset(without), corrupt=corrupt,
                                        raw=raw, raw_headers=raw_headers)

    def revert(self) -> Published:
        """Withdraw the newest publish: the endpoint answers the previous version again,
        with its old paths (Bungie has reverted a publish whose files 404'd)."""
        with self._lock:
            if len(self._versions) < 2:
                raise ValueError("nothing to revert to")
            self._versions.pop()
            return self._versions[-1]

    def _publish_locked(
        self,
        ds: Any,
        spec: ItemSpec,
        *,
        version: str,
        without: frozenset[str] = frozenset(),
        corrupt: dict[str, str] | None = None,
        raw: dict[str, bytes] | None = None,
        raw_headers: dict[str, dict[str, str | None]] | None = None,
    ) -> Published:
        # Monotonic even after a revert, so no two publishes share a GUID.
        self._publish_count = number = getattr(self, "_publish_count", -1) + 1
        pub = Published(
            number=number, version=version, dataset=ds, items=spec, guid=make_guid(version, number),
            without=without, corrupt=dict(corrupt or {}), raw=dict(raw or {}), raw_headers=dict(raw_headers or {}),
            languages=self.languages,
        )
        self._versions.append(pub)
        self._by_guid[pub.guid] = pub
        self._manifest_requests = 0
        # Generate the item table (in every language served) in the background now, so the
        # first download of a full-size (~190 MB, several seconds) table does not stall the client.
        threading.Thread(target=table_files, args=(spec, self.languages), name="fakebungie-items",
                         daemon=True).start()
        log.info("published %s (dataset %s, %d items, guid %s)", version, ds.name, len(spec), pub.guid)
        return pub

    def misbehave(
        self,
        kind: str,
        on: str = "all",
        count: int | None = None,
        *,
        seconds: float = 1.0,
        status: int | None = None,
        code: int = 1618,
    ) -> Fault | None:
        """Switch a fault on for requests of path kind ``on`` (``count`` times, or until reset)."""
        # The two quirks are switchable here too, so one call shape covers everything.
        if kind == "flap":
            self.quirks(flap=True)
            return None
        if kind == "table_404_after_publish":
            self.quirks(table_404_after_publish=count if count is not None else 1)
            return None
        fault = Fault(kind=kind, on=on, count=count, seconds=seconds, status=status, code=code)
        with self._lock:
            self._faults.append(fault)
        return fault

    def quirks(
        self, *, flap: bool | None = None, table_404_after_publish: int | None = None, limits: bool | None = None
    ) -> None:
        """``flap``: the Manifest endpoint alternates current/previous version.
        ``table_404_after_publish=K``: each file of the newest version 404s its first K times.
        ``limits``: Bungie's real limits: one TransferItem per second per account and 25
        /Platform requests per second per API key averaged over 10 s, each answered past
        the limit with ErrorCode 36 and its ThrottleSeconds."""
        with self._lock:
            if limits is not None:
                self._limits = limits
                self._last_transfer.clear()
                self._client_calls.clear()
            if flap is not None:
                self._flap = flap
                self._manifest_requests = 0  # the next Manifest call answers the newest version
            if table_404_after_publish is not None:
                self._table_404_after_publish = table_404_after_publish

    def reset(self, *, stats: bool = False) -> None:
        """Clear faults and quirks (and optionally the request statistics)."""
        with self._lock:
            self._faults.clear()
            self._flap = False
            self._table_404_after_publish = 0
            self._limits = False
            if stats:
                self._counts.clear()
                self._table_counts.clear()
                self._recent.clear()

    def set_alerts(self, alerts: list[dict[str, Any]]) -> None:
        with self._lock:
            self._alerts = [
                Alert(key=a.get("key", f"alert-{i}"), html=a.get("html", ""), level=a.get("level", 1))
                for i, a in enumerate(alerts)
            ]

    def expire_tokens(self, *, refresh: bool = False) -> None:
        """Expire every access token (and refresh token with ``refresh=True``)."""
        with self._lock:
            for tok in self._access.values():
                tok.expires_at = 0
            if refresh:
                for tok in self._refresh.values():
                    tok.expires_at = 0

    def issue_token(self) -> dict[str, Any]:
        """Skip the browser: a token response as if the player approved the app."""
        with self._lock:
            return self._issue_tokens_locked(self._next_player_locked().bungie_membership_id)

    def _next_player_locked(self) -> Player:
        """The player the next login belongs to (always the one player unless ``players`` > 1)."""
        player = self.players[self._logins % len(self.players)]
        self._logins += 1
        return player

    def add_item(
        self, item_hash: int, *, place: str = "vault", character_id: str | None = None, bucket_hash: int | None = None
    ) -> str:
        """Give the player an item (e.g. a hash not in the manifest yet); returns its instance id."""
        with self._lock:
            kwargs: dict[str, Any] = {}
            if bucket_hash is not None:
                kwargs["bucket_hash"] = bucket_hash
            return self.player.add_item(item_hash, place=place, character_id=character_id, **kwargs).key  # type: ignore[arg-type]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counts": dict(self._counts),
                "tables": dict(self._table_counts),
                "recent": list(self._recent),
                "faults": [f.to_dict() for f in self._faults],
            }

    def player_state(self, number: int = 0) -> dict[str, Any]:
        with self._lock:
            return self.players[number].state()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "current": self._version_info(self.current),
                "versions": [self._version_info(v) for v in self._versions],
                "datasets": {name: ds.version for name, ds in datasets().items()},
                "redirect_uri": self.redirect_uri,
                "flap": self._flap,
                "table_404_after_publish": self._table_404_after_publish,
                "limits": self._limits,
                "rolls_drawn": self._rolls_drawn.is_set(),  # ``cache_profiles``: all drawn ahead
            }

    @staticmethod
    def _version_info(v: Published) -> dict[str, Any]:
        return {
            "version": v.version,
            "dataset": v.dataset.name,
            "guid": v.guid,
            "items": v.items.to_dict(),
            "number": v.number,
        }

    def _vault_capacity(self) -> int:
        buckets = self.current.entity("DestinyInventoryBucketDefinition", GENERAL_VAULT) or {}
        return int(buckets.get("itemCount") or 600)

    # ==================================================================================
    # WSGI
    # ==================================================================================
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        record: dict[str, Any] = {}
        try:
            response = self._handle(request, record)
        except HTTPException as exc:
            response = exc.get_response(environ)
        record["status"] = response.status_code
        return response(environ, start_response)

    def _handle(self, request: Request, record: dict[str, Any]) -> Response:
        adapter = URLS.bind(request.host, path_info=request.path.lower(), default_method=request.method)
        if request.path.lower().startswith("/__fake__/"):
            endpoint, args = adapter.match()
            return self._control(request, args["action"])
        kind = classify(request.path, request.method)
        self._record(request, kind, record)
        fault = self._take_fault(kind)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
            fault = None
        if fault is not None and fault.kind not in ("truncate", "truncate_json"):
            return self._fault_response(fault, request)
        if kind not in ("tables", "icons", "authorize") and self._over_client_limit(request):
            return self._json(PlatformError(36, throttle_seconds=CLIENT_THROTTLE_SECONDS).body())
        try:
            endpoint, matched = adapter.match()
            args = dict(matched)
        except NotFound:
            return self._not_found(request)
        except RequestRedirect:
            # Bungie wants trailing slashes and redirects without them (dropping the
            # Authorization header on the way, which is why clients get WebAuthRequired).
            location = request.path + "/" + (f"?{request.query_string.decode()}" if request.query_string else "")
            return Response(b"", 301, headers={"Location": location})
        try:
            if request.path.lower().startswith("/platform/") and endpoint != "token":
                self._check_api_key(request)
            if endpoint == "table":  # routing saw the lower-cased path; file names keep case
                args["filename"] = request.path.rsplit("/", 1)[1]
            response = getattr(self, f"_ep_{endpoint}")(request, **args)
        except PlatformError as err:
            response = self._json(err.body(), err.status)
        if fault is not None:
            response = self._truncate(response, close=fault.kind == "truncate")
        return response

    # -- bookkeeping --------------------------------------------------------------------------
    def _record(self, request: Request, kind: str, record: dict[str, Any]) -> None:
        headers = {k: ("[redacted]" if k.lower() in SECRET_HEADERS else v) for k, v in request.headers.items()}
        record.update(
            method=request.method,
            path=request.path,
            query=request.query_string.decode(),
            kind=kind,
            headers=headers,
            time=time.time(),
        )
        with self._lock:
            self._counts[kind] += 1
            if kind == "actions":  # transfers, equips and pulls counted apart as well
                self._counts[request.path.rstrip("/").rsplit("/", 1)[-1].lower()] += 1
            self._recent.append(record)

    def _over_client_limit(self, request: Request) -> bool:
        """With the limits on: this API key has sent more than CLIENT_LIMIT /Platform
        requests in the last CLIENT_WINDOW seconds (this one counted)."""
        if not self._limits or not request.path.lower().startswith("/platform/"):
            return False
        now = time.monotonic()
        with self._lock:
            calls = self._client_calls.setdefault(request.headers.get("X-API-Key", ""), deque())
            while calls and calls[0] <= now - CLIENT_WINDOW:
                calls.popleft()
            calls.append(now)
            return len(calls) > CLIENT_LIMIT

    def _take_fault(self, kind: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(kind):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _fault_response(self, fault: Fault, request: Request) -> Response:
        if fault.kind == "maintenance":
            # Bungie's token endpoint answered maintenance with HTTP 400 (Bungie-net/api#1048).
            default = 400 if classify(request.path) == "token" else 503
            return self._json(error_body(5), fault.status or default)
        if fault.kind == "throttle":
            return self._json(error_body(36, throttle_seconds=int(fault.seconds)), fault.status or 200)
        if fault.kind == "expired_token":
            return self._json(error_body(2111), fault.status or 401)
        if fault.kind == "invalid_token":
            return self._json(error_body(99), fault.status or 401)
        if fault.kind == "refuse":
            return self._json(error_body(fault.code), fault.status or 200)
        if fault.kind == "html":
            return Response(
                self.current.dataset.html_page, fault.status or 200, content_type="text/html; charset=utf-8"
            )
        return Response(ERROR_500_HTML, fault.status or 500, content_type="text/html; charset=utf-8")

    @staticmethod
    def _truncate(response: Response, *, close: bool) -> Response:
        """Half a body: with the full Content-Length and a dropped connection (``close``), or
        a shorter body with a matching Content-Length (truncated JSON that parses as junk)."""
        full = int(response.headers.get("Content-Length") or 0)
        if not full:
            data = response.get_data()
            full = len(data)
            response = Response(data, response.status_code, headers=list(response.headers.items()))
        half = full // 2
        source = response.response

        def first_bytes() -> Iterator[bytes]:
            remaining = half
            for piece in source:
                if remaining <= 0:
                    break
                chunk = piece.encode() if isinstance(piece, str) else piece
                yield chunk[:remaining]
                remaining -= len(chunk[:remaining])
            if hasattr(source, "close"):
                source.close()

        out = Response(
            first_bytes(), response.status_code, headers=list(response.headers.items()), direct_passthrough=True
        )
        # Werkzeug's server closes every connection after the body, so a short body under
        # the full Content-Length is exactly "connection closed after half".
        out.headers["Content-Length"] = str(full if close else half)
        return out

    @staticmethod
    def _json(body: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(body), status, content_type="application/json; charset=utf-8")

    @staticmethod
    def _json_bytes(data: bytes) -> Response:
        return Response(data, 200, content_type="application/json; charset=utf-8")

    def _ok(self, payload: Any) -> Response:
        return self._json(success_body(payload))

    def _not_found(self, request: Request) -> Response:
        if request.path.lower().startswith("/platform/"):
            return self._json(error_body(21), 404)
        return Response(
            b"<html><body><h1>404 Not Found</h1></body></html>", 404, content_type="text/html; charset=utf-8"
        )

    def _check_api_key(self, request: Request) -> None:
        key = request.headers.get("X-API-Key")
        if not key:
            raise PlatformError(2102, status=401)
        if key != self.api_key:
            raise PlatformError(2101, status=401)

    def _bearer(self, request: Request, *, required: bool) -> Token | None:
        header = request.headers.get("Authorization", "")
        if not header:
            if required:
                raise PlatformError(99, status=401)
            return None
        scheme, _, value = header.partition(" ")
        with self._lock:
            token = self._access.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            raise PlatformError(99, status=401)
        if token.expires_at <= time.time():
            raise PlatformError(2111, status=401)
        return token

    # ==================================================================================
    # Manifest and content
    # ==================================================================================
    def _ep_manifest(self, request: Request) -> Response:
        with self._lock:
            self._manifest_requests += 1
            pub = self._versions[-1]
            if self._flap and len(self._versions) > 1 and self._manifest_requests % 2 == 0:
                pub = self._versions[-2]
        return self._ok(pub.manifest_response())

    def _ep_entity(self, request: Request, entity_type: str, hash_id: str) -> Response:
        pub = self.current
        table = next((t for t in pub.dataset.served_tables() if t.lower() == entity_type.lower()), None)
        if table is None:
            raise PlatformError(18, message_data=(("entityType", entity_type),))
        try:
            item_hash = int(hash_id)
        except ValueError:
            raise PlatformError(18, message_data=(("hashIdentifier", hash_id),)) from None
        entry = pub.entity(table, item_hash % 2**32)
        if entry is None:
            raise PlatformError(21)
        return self._ok(entry)

    def _ep_table(self, request: Request, lang: str, filename: str) -> Response:
        if not filename.endswith(".json"):
            return self._not_found(request)
        stem = filename[: -len(".json")]
        table, guid = stem[:-37], stem[-36:]  # "<Table>-<36-char GUID>"; GUIDs contain dashes
        with self._lock:
            pub = self._by_guid.get(guid)
            if pub is None or lang not in pub.languages:
                return self._not_found(request)
            if pub is self._versions[-1] and self._table_404_after_publish:
                seen = pub.served_counts.get(request.path, 0) + 1
                pub.served_counts[request.path] = seen
                if seen <= self._table_404_after_publish:
                    return self._not_found(request)
            self._table_counts[table] += 1
        body: Body | None = pub.aggregate_body(lang) if table == "aggregate" else pub.body(lang, table)
        if body is None:
            return self._not_found(request)
        response = self._stream(body)
        for name, value in pub.raw_headers.get(table, {}).items():
            if value is None:  # a header left out (e.g. no Content-Length: read to the end)
                response.headers.pop(name, None)
            else:
                response.headers[name] = value
        return response

    @staticmethod
    def _stream(body: Body, content_type: str = "application/json") -> Response:
        response = Response(body.chunks(), 200, content_type=content_type, direct_passthrough=True)
        response.headers["Content-Length"] = str(body.size())
        response.headers["Cache-Control"] = "public, max-age=31536000"
        return response

    def _ep_icon(self, request: Request, rest: str) -> Response:
        """A generated PNG for any icon path (icons.py): deterministic, cached, long-lived."""
        return self._stream(BytesBody(icons.png_for(request.path)), "image/png")

    def _ep_alerts(self, request: Request) -> Response:
        with self._lock:
            return self._ok([a.to_api() for a in self._alerts])

    # ==================================================================================
    # OAuth
    # ==================================================================================
    def _ep_authorize(self, request: Request) -> Response:
        params = request.values
        client_id, state = params.get("client_id", ""), params.get("state", "")
        if client_id != self.client_id or params.get("response_type", "code") != "code":
            return Response(
                b"<html><body><h1>Invalid client</h1></body></html>", 400, content_type="text/html; charset=utf-8"
            )
        if request.method == "POST":
            if "approve" not in request.form:
                return self._redirect({"error": "access_denied", "state": state})
            code = secrets.token_hex(16)
            with self._lock:
                self._codes[code] = (self._next_player_locked().bungie_membership_id,
                                     time.time() + AUTH_CODE_SECONDS)
            return self._redirect({"code": code, "state": state})
        cancel = html.escape(self._redirect_url({"error": "access_denied", "state": state}))
        with self._lock:
            signed_in = self.players[self._logins % len(self.players)]
        page = f"""<!DOCTYPE html>
<html><head><title>Authorize - Bungie.net (fake)</title></head><body>
<h1>Authorize application</h1>
<p>Signed in as <strong class="player-name">{html.escape(signed_in.bungie_name)}</strong>.</p>
<p>Application {html.escape(client_id)} would like to access your Destiny account.</p>
<form method="post" action="/en/OAuth/Authorize">
<input type="hidden" name="client_id" value="{html.escape(client_id)}">
<input type="hidden" name="response_type" value="code">
<input type="hidden" name="state" value="{html.escape(state)}">
<button type="submit" name="approve" value="1">Approve</button>
</form>
<a href="{cancel}" class="cancel">Cancel</a>
</body></html>"""
        return Response(page, 200, content_type="text/html; charset=utf-8")

    def _redirect_url(self, params: dict[str, str]) -> str:
        sep = "&" if "?" in self.redirect_uri else "?"
        return f"{self.redirect_uri}{sep}{urlencode(params)}"

    def _redirect(self, params: dict[str, str]) -> Response:
        return Response(b"", 302, headers={"Location": self._redirect_url(params)})

    @staticmethod
    def _oauth_error(error: str, description: str, status: int = 400) -> Response:
        return FakeBungie._json({"error": error, "error_description": description}, status)

    def _ep_token(self, request: Request) -> Response:
        form = request.form
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return self._oauth_error("invalid_client", "Cannot parse client credentials", 401)
        grant_type = form.get("grant_type")
        if not grant_type:
            return self._oauth_error("invalid_request", "Missing required parameter grant_type")
        if not client_id:
            return self._oauth_error("invalid_request", "Cannot parse client_id")
        if client_id != self.client_id:
            return self._oauth_error("invalid_client", "ApplicationNotFound", 401)
        if self.client_secret and client_secret != self.client_secret:
            return self._oauth_error("invalid_client", "ClientSecretInvalid", 401)
        with self._lock:
            if grant_type == "authorization_code":
                code = self._codes.pop(form.get("code", ""), None)  # single use
                if code is None or code[1] < time.time():
                    return self._oauth_error("invalid_grant", "AuthorizationCodeInvalid")
                member = code[0]
            elif grant_type == "refresh_token":
                old = self._refresh.pop(form.get("refresh_token", ""), None)  # rotates
                if old is None:
                    return self._oauth_error("invalid_grant", "ProvidedTokenNotValidRefreshToken")
                if old.expires_at <= time.time():
                    return self._oauth_error("invalid_grant", "RefreshTokenExpired")
                member = old.membership_id
            else:
                return self._oauth_error("unsupported_grant_type", f"Unsupported grant_type {grant_type}")
            return self._json(self._issue_tokens_locked(member))

    def _issue_tokens_locked(self, member: str) -> dict[str, Any]:
        now = time.time()
        access = Token(secrets.token_urlsafe(32), member, now + ACCESS_TOKEN_SECONDS)
        refresh = Token(secrets.token_urlsafe(32), member, now + REFRESH_TOKEN_SECONDS)
        self._access[access.value] = access
        self._refresh[refresh.value] = refresh
        return {
            "access_token": access.value,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,
            "refresh_token": refresh.value,
            "refresh_expires_in": REFRESH_TOKEN_SECONDS,
            "membership_id": member,
        }

    # ==================================================================================
    # User, profile, actions
    # ==================================================================================
    def _ep_memberships(self, request: Request) -> Response:
        token = self._bearer(request, required=True)
        with self._lock:
            return self._ok(self._player_of(token).memberships())

    def _player_of(self, token: Token | None) -> Player:
        assert token is not None
        return self._by_member[token.membership_id]

    def _ep_profile(self, request: Request, membership_type: str, membership_id: str) -> Response:
        components = self._components(request.args.get("components", ""))
        if not components:
            raise PlatformError(18, message_data=(("components", "At least one component is required"),))
        token = self._bearer(request, required=False)
        if self.profile_latency:
            time.sleep(self.profile_latency)
        with self._lock:
            player = self._by_destiny.get(membership_id)
            if player is None or membership_type not in ("3", "-1"):
                raise PlatformError(1601)
            # Private components only for the owner's own token (Bungie's privacy).
            authorized = token is not None and token.membership_id == player.bungie_membership_id
            if self._profile_bodies is not None:
                return self._json_bytes(self._cached_profile(player, components, authorized=authorized))
            body = self.profile_response(components, authorized=authorized, fragments=True, player=player)
        return self._ok(body)

    def _cached_profile(self, player: Player, components: set[int], *, authorized: bool) -> bytes:
        """GetProfile's whole answer for ``player``: the kept body when the item table and
        every item's place are as when it was drawn, with this moment's timestamps."""
        assert self._profile_bodies is not None
        key = (id(self.current.items), frozenset(components), authorized, player.fingerprint())
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
        kept = self._profile_bodies.get(player.bungie_membership_id)
        if kept is not None and kept[0] == key:
            return kept[2].replace(kept[1], now)
        body = self.profile_response(components, authorized=authorized, fragments=True, player=player,
                                     shared_rolls=True)
        data = orjson.dumps(success_body(body))
        self._profile_bodies[player.bungie_membership_id] = (key, body["responseMintedTimestamp"].encode(), data)
        return data

    def profile_response(
        self, components: set[int], *, authorized: bool = True, fragments: bool = False, player: Player | None = None,
        shared_rolls: bool = False,
    ) -> dict[str, Any]:
        """GetProfile's ``Response`` for these components, as the endpoint answers it (each
        instance's roll drawn from its definition). ``fragments``: each roll as the JSON
        bytes the endpoint serializes (fast), not as Python objects. ``shared_rolls``: one
        roll per item hash, whatever the instance (``cache_profiles``)."""
        with self._lock:
            spec = self.current.items
            body = (player or self.player).profile(
                components,
                authorized=authorized,
                rolls=(lambda i: self._shared_roll(spec, i.item_hash)) if shared_rolls
                else lambda i: roll(spec, i.item_hash, i.key),
                fragments=fragments,
            )
        return body

    def _draw_rolls(self, spec: ItemSpec, hashes: list[int]) -> None:
        for item_hash in hashes:
            with self._lock:
                self._shared_roll(spec, item_hash)
        self._rolls_drawn.set()

    def _shared_roll(self, spec: ItemSpec, item_hash: int) -> Roll:
        """The one roll of ``item_hash`` every copy shares (``shared_rolls``), kept for good:
        a few thousand item hashes, not one roll per instance of every player."""
        kept = self._shared_rolls.get((spec, item_hash))
        if kept is None:
            kept = self._shared_rolls[(spec, item_hash)] = roll(spec, item_hash, SHARED_ROLL)
        return kept

    @staticmethod
    def _components(raw: str) -> set[int]:
        out = set()
        for part in raw.split(","):
            part = part.strip()
            if part.isdigit():
                out.add(int(part))
            elif part.lower() in COMPONENT_NAMES:
                out.add(COMPONENT_NAMES[part.lower()])
        return out

    def _action_body(self, request: Request) -> tuple[dict[str, Any], Player]:
        """The action's JSON body and the player whose token sent it."""
        token = self._bearer(request, required=True)
        try:
            body = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            raise PlatformError(18) from None
        if not isinstance(body, dict):
            raise PlatformError(18)
        with self._lock:
            player = self._player_of(token)
        if int(body.get("membershipType", 0)) != player.membership_type:
            raise PlatformError(18, message_data=(("membershipType", str(body.get("membershipType"))),))
        return body, player

    def _ep_transfer(self, request: Request) -> Response:
        body, player = self._action_body(request)
        with self._lock:
            if self._limits:
                now = time.monotonic()
                if now - self._last_transfer.get(player.bungie_membership_id, 0.0) < TRANSFER_INTERVAL:
                    raise PlatformError(36, throttle_seconds=1)
                self._last_transfer[player.bungie_membership_id] = now
            player.transfer(
                item_hash=int(body.get("itemReferenceHash", 0)),
                item_id=body.get("itemId"),
                character_id=body.get("characterId"),
                to_vault=bool(body.get("transferToVault")),
                stack_size=int(body.get("stackSize", 1)),
            )
        return self._ok(0)

    def _ep_equip(self, request: Request) -> Response:
        body, player = self._action_body(request)
        with self._lock:
            player.equip(item_id=body.get("itemId"), character_id=body.get("characterId"))
        return self._ok(0)

    def _ep_pull(self, request: Request) -> Response:
        body, player = self._action_body(request)
        with self._lock:
            player.pull_from_postmaster(
                item_hash=int(body.get("itemReferenceHash", 0)),
                item_id=body.get("itemId"),
                character_id=body.get("characterId"),
            )
        return self._ok(0)

    # ==================================================================================
    # HTTP control API (/__fake__/...), JSON in and out
    # ==================================================================================
    def _control(self, request: Request, action: str) -> Response:
        try:
            body = orjson.loads(request.get_data() or b"{}") if request.method == "POST" else {}
            result = self._control_action(action, body)
        except (ValueError, TypeError, KeyError) as exc:
            return self._json({"error": str(exc)}, 400)
        if result is None:
            return self._json({"error": f"unknown control action {action!r}"}, 404)
        return self._json(result)

    def _control_action(self, action: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if action == "publish":
            items = body.get("items")
            spec_fields = {k: body[k] for k in ("count", "seed", "changed", "added", "removed") if k in body}
            if body.get("churn") is not None:
                # {"churn": {"changed": f, "added": f, "removed": f}}: edit the current
                # table further (ItemSpec.churned), so each such publish has a diff.
                spec: ItemSpec | None = self.current.items.churned(**body["churn"])
            elif items is not None or spec_fields:
                base = self.current.items.to_dict()
                base.update(items or {})
                base.update(spec_fields)
                spec = ItemSpec(**base)
            else:
                spec = None
            pub = self.publish(
                body.get("dataset"),
                spec,
                same_version=bool(body.get("same_version")),
                version=body.get("version"),
                without=body.get("without", ()),
                corrupt=body.get("corrupt"),
                # Bytes travel as base64: a hostile table need not be valid UTF-8.
                raw={t: base64.b64decode(b) for t, b in (body.get("raw") or {}).items()},
                raw_headers=body.get("raw_headers"),
            )
            return self._version_info(pub)
        if action == "revert":
            return self._version_info(self.revert())
        if action == "misbehave":
            fault = self.misbehave(
                body["kind"],
                body.get("on", "all"),
                body.get("count"),
                seconds=body.get("seconds", 1.0),
                status=body.get("status"),
                code=body.get("code", 1618),
            )
            return fault.to_dict() if fault is not None else self.state()
        if action == "quirks":
            self.quirks(flap=body.get("flap"), table_404_after_publish=body.get("table_404_after_publish"),
                        limits=body.get("limits"))
            return self.state()
        if action == "reset":
            self.reset(stats=bool(body.get("stats")))
            return {"ok": True}
        if action == "stats":
            return self.stats()
        if action == "player":
            return self.player_state(int(body.get("number", 0)))
        if action == "players":
            with self._lock:
                return {"players": [p.state() for p in self.players]}
        if action == "state":
            return self.state()
        if action == "alerts":
            self.set_alerts(body.get("alerts", []))
            return {"ok": True}
        if action == "expire-tokens":
            self.expire_tokens(refresh=bool(body.get("refresh")))
            return {"ok": True}
        if action == "token":
            return self.issue_token()
        if action == "add-item":
            key = self.add_item(
                int(body["itemHash"]),
                place=body.get("place", "vault"),
                character_id=body.get("characterId"),
                bucket_hash=body.get("bucketHash"),
            )
            return {"itemInstanceId": key}
        if action == "config":
            with self._lock:
                if "redirect_uri" in body:
                    self.redirect_uri = body["redirect_uri"]
            return self.state()
        return None
