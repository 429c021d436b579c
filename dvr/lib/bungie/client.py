"""The one Bungie.net client: every HTTP call DVR makes to Bungie goes through here.

`BungieClient` unwraps Bungie's envelope (`dvr.lib.bungie.errors.parse_envelope`) and
raises one of a few `BungieError` kinds for every failure. Idempotent GETs are retried
with backoff, honouring ``ThrottleSeconds``, within a bounded total time
(`dvr.lib.retry`). Every URL is built from ``settings.BUNGIE_ROOT_URL``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import orjson
import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter

from dvr.lib.bungie.errors import (
    BungieError,
    BungieNotFound,
    BungieOAuthError,
    BungieTransportError,
    parse_envelope,
)
from dvr.lib.retry import RetryPolicy, call_with_retries

logger = logging.getLogger(__name__)

USER_AGENT = "DestinyVaultRaider/1.0 (+https://github.com/dvr; Django)"


@dataclass(frozen=True)
class Download:
    """A file streamed to disk: where it is, how big, and the SHA-256 of its bytes."""

    path: Path
    size: int
    sha256: str


ProgressCallback = Callable[[int, int | None], None]


class BungieClient:
    """A pooled, timed, retrying client for Bungie.net.

    One instance per process is enough (`client()`); requests' Session pools connections.
    """

    def __init__(
        self,
        *,
        root_url: str | None = None,
        api_key: str | None = None,
        timeout: tuple[float, float] | None = None,
        retry_budget: float | None = None,
    ) -> None:
        self.root_url = (root_url if root_url is not None else settings.BUNGIE_ROOT_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else settings.BUNGIE_API_KEY
        self.timeout = timeout or tuple(settings.BUNGIE_TIMEOUT)
        self.retry_budget = retry_budget if retry_budget is not None else settings.BUNGIE_RETRY_BUDGET
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        if self.api_key:
            self.session.headers["X-API-Key"] = self.api_key

    # --- URLs ----------------------------------------------------------------------------
    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """An absolute Bungie URL for ``path`` (``/Platform/...``, ``/common/...``, icons)."""
        parts = urlsplit(path)
        if parts.scheme or parts.netloc or path.lstrip().startswith("//"):
            raise ValueError("pass a path, not a URL: every Bungie URL comes from BUNGIE_ROOT_URL")
        url = self.root_url + "/" + path.lstrip("/")
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return url

    def asset_url(self, path: object) -> str:
        """The URL of an icon or image path taken from Bungie's data, or "" when it is not a
        path on Bungie's host: the manifest is outside input, and a page must never point an
        ``<img>`` at another host (or at ``javascript:``)."""
        if not isinstance(path, str) or not path or any(ord(ch) < 32 for ch in path):
            return ""
        try:
            return self.url(path)
        except ValueError:
            return ""

    def platform_url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        return self.url("/Platform/" + path.lstrip("/"), params)

    def authorize_url(self, *, client_id: str, state: str) -> str:
        """Where to send a player's browser to approve DVR on Bungie.net."""
        return self.url("/en/OAuth/Authorize", {"client_id": client_id, "response_type": "code", "state": state})

    # --- /Platform calls -----------------------------------------------------------------
    # Tokens pass through here: every frame from here down is hidden from error reports.
    @sensitive_variables()
    def get(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        access_token: str | None = None,
        retry: bool = True,
    ) -> Any:
        """GET a ``/Platform`` path and return its ``Response``, retrying what is retryable."""
        return self.get_with_body(path, params=params, access_token=access_token, retry=retry)[0]

    @sensitive_variables()
    def get_with_body(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        access_token: str | None = None,
        retry: bool = True,
    ) -> tuple[Any, bytes]:
        """`get`, and the body as Bungie sent it (its envelope's JSON bytes): for a caller
        that keeps the answer, so it need not encode it again."""
        url = self.platform_url(path)
        return cast(tuple[Any, bytes], self._with_retries(
            lambda: self._call("GET", url, params=params, access_token=access_token, with_body=True),
            retry=retry,
            what=f"GET {path}",
        ))

    @sensitive_variables()
    def post(self, path: str, *, json: Mapping[str, Any], access_token: str | None = None) -> Any:
        """POST to a ``/Platform`` path once (actions are not idempotent: never retried here)."""
        return self._call("POST", self.platform_url(path), json=json, access_token=access_token)

    def get_manifest(self) -> dict[str, Any]:
        return self.get("/Destiny2/Manifest/")

    @sensitive_variables()
    def _call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
        access_token: str | None = None,
        with_body: bool = False,
    ) -> Any:
        headers = {"Authorization": f"Bearer {access_token}"} if access_token else None
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                data=orjson.dumps(json) if json is not None else None,
                headers={**(headers or {}), **({"Content-Type": "application/json"} if json is not None else {})},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise BungieTransportError(f"{method} {_path_of(url)} failed: {type(exc).__name__}") from exc
        parsed = parse_envelope(
            response.content,
            http_status=response.status_code,
            content_type=response.headers.get("Content-Type", ""),
        )
        return (parsed, response.content) if with_body else parsed

    def _with_retries(self, call: Callable[[], Any], *, retry: bool, what: str) -> Any:
        """Run ``call``; on a retryable error wait (ThrottleSeconds or backoff) and try again
        while the total time stays within ``retry_budget`` seconds."""
        policy = RetryPolicy(budget=self.retry_budget if retry else 0, base=1.0, cap=8.0, jitter=True)
        return call_with_retries(
            lambda attempt: call(),
            policy=policy,
            retryable=lambda exc: isinstance(exc, BungieError) and exc.retryable,
            hint=lambda exc: exc.throttle_seconds if isinstance(exc, BungieError) else 0.0,
            what=what,
        )

    # --- OAuth -----------------------------------------------------------------------------
    @sensitive_variables()
    def oauth_token(self, *, client_id: str, client_secret: str, data: Mapping[str, str]) -> dict[str, Any]:
        """POST to Bungie's token endpoint (confidential client) and return its JSON.

        Never retried: an authorization code and a refresh token are single-use.
        """
        url = self.platform_url("/App/OAuth/token/")
        try:
            response = self.session.post(
                url,
                data={**data, "client_id": client_id, "client_secret": client_secret},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise BungieTransportError(f"POST /Platform/App/OAuth/token/ failed: {type(exc).__name__}") from exc
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise BungieTransportError(
                f"the token endpoint answered HTTP {response.status_code} with a body that is not JSON",
                http_status=response.status_code,
            ) from None
        if isinstance(body, dict) and "ErrorCode" in body:
            # Maintenance and throttling come in Bungie's envelope even here.
            parse_envelope(response.content, http_status=response.status_code)
        if not isinstance(body, dict):
            raise BungieTransportError("the token endpoint answered JSON that is not an object")
        if "error" in body or response.status_code >= 400 or "access_token" not in body:
            raise BungieOAuthError(
                str(body.get("error") or "invalid_response"),
                str(body.get("error_description") or f"HTTP {response.status_code}"),
                http_status=response.status_code,
            )
        return body

    # --- Files -----------------------------------------------------------------------------
    def download(
        self,
        path: str,
        *,
        directory: Path | str | None = None,
        params: Mapping[str, Any] | None = None,
        progress: ProgressCallback | None = None,
        chunk_size: int = 1 << 18,
        max_bytes: int | None = None,
    ) -> Download:
        """Stream a Bungie file (``/common/destiny2_content/...``) to a temporary file.

        Hashes as it writes, calls ``progress(bytes_so_far, total_or_None)``, and checks the
        length received against ``Content-Length``: a short file is a transport error, never
        a partial table. A body that starts like HTML is refused too (Bungie has served its
        site's HTML shell with status 200 in place of a removed table). A file larger than
        ``max_bytes`` (announced or received) is refused with a `BungieError` that is not
        retried, before it fills the disk. The caller owns the file and deletes it.
        """
        url = self.url(path, params)
        try:
            response = self.session.get(url, stream=True, timeout=self.timeout)
        except requests.RequestException as exc:
            raise BungieTransportError(f"GET {path} failed: {type(exc).__name__}") from exc
        with response:
            if response.status_code != 200:
                _raise_for_file_status(path, response)
            expected = _int_or_none(response.headers.get("Content-Length"))
            if max_bytes is not None and expected is not None and expected > max_bytes:
                raise _too_large(path, expected, max_bytes)
            digest = hashlib.sha256()
            size = 0
            fd, name = tempfile.mkstemp(prefix="dvr-", suffix=".json", dir=directory)
            target = Path(name)
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in response.iter_content(chunk_size):
                        if size == 0 and chunk.lstrip()[:1] == b"<":
                            raise BungieTransportError(
                                f"GET {path}: HTTP 200 with an HTML page, not JSON", http_status=200
                            )
                        size += len(chunk)
                        if max_bytes is not None and size > max_bytes:
                            raise _too_large(path, size, max_bytes)
                        out.write(chunk)
                        digest.update(chunk)
                        if progress:
                            progress(size, expected)
                encoded = response.headers.get("Content-Encoding", "identity") not in ("", "identity")
                if expected is not None and not encoded and size != expected:
                    raise BungieTransportError(f"GET {path}: received {size} of {expected} bytes", http_status=200)
                if size <= _ENVELOPE_MAX_BYTES:
                    _raise_for_envelope_file(path, target)
            except requests.RequestException as exc:
                target.unlink(missing_ok=True)
                raise BungieTransportError(f"GET {path} broke off after {size} bytes: {type(exc).__name__}") from exc
            except BaseException:
                target.unlink(missing_ok=True)
                raise
        return Download(path=target, size=size, sha256=digest.hexdigest())


def _too_large(path: str, size: int, limit: int) -> BungieError:
    return BungieError(f"GET {path}: {size:,} bytes, more than the {limit:,}-byte limit for a file")


def _raise_for_file_status(path: str, response: requests.Response) -> None:
    """Raise the error for a file answer that is not 200: Bungie's envelope when it sent one
    (maintenance and throttling reach file downloads too), else the HTTP status."""
    body = response.raw.read(65536, decode_content=True) or b""
    if body[:1] == b"{":
        try:
            parse_envelope(body, http_status=response.status_code)
        except BungieError as exc:
            if exc.error_code is not None:
                raise
    if response.status_code == 404:
        raise BungieNotFound(f"GET {path}: HTTP 404", http_status=404)
    raise BungieTransportError(f"GET {path}: HTTP {response.status_code}", http_status=response.status_code)


# A table is an object keyed by hashes; a small file with Bungie's envelope keys is an error
# answered with status 200 (maintenance and throttling have reached file downloads that way).
_ENVELOPE_MAX_BYTES = 65536


def _raise_for_envelope_file(path: str, target: Path) -> None:
    try:
        body = orjson.loads(target.read_bytes())
    except orjson.JSONDecodeError:
        return
    if isinstance(body, dict) and "ErrorCode" in body and "ErrorStatus" in body:
        parse_envelope(orjson.dumps(body), http_status=200)
        raise BungieTransportError(f"GET {path}: HTTP 200 with a Bungie envelope, not a file", http_status=200)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _path_of(url: str) -> str:
    """A URL without its query string, for messages (queries may carry cache-busters)."""
    return url.split("?", 1)[0]


@lru_cache(maxsize=4)
def _client_for(root_url: str, api_key: str, timeout: tuple[float, float], retry_budget: float) -> BungieClient:
    return BungieClient(root_url=root_url, api_key=api_key, timeout=timeout, retry_budget=retry_budget)


def client() -> BungieClient:
    """This process's client for the configured Bungie: one pooled session per setting
    (a changed timeout or budget gets a client of its own)."""
    return _client_for(
        settings.BUNGIE_ROOT_URL, settings.BUNGIE_API_KEY, tuple(settings.BUNGIE_TIMEOUT), settings.BUNGIE_RETRY_BUDGET
    )
