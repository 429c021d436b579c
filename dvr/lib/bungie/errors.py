"""What Bungie says when it says no: a few exception kinds, and the envelope parser.

Bungie answers ``/Platform`` calls in an envelope::

    {"Response": ..., "ErrorCode": 1, "ThrottleSeconds": 0, "ErrorStatus": "Success",
     "Message": "Ok", "MessageData": {}}

`parse_envelope` unwraps it and turns every failure into one of a small set of exceptions
(all `BungieError`), so callers decide on kinds, never on raw codes or HTTP statuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from dvr.lib.bungie.codes import AUTH_CODES, NOT_FOUND_CODES, THROTTLE_CODES, PlatformErrorCode, code_of

# Statuses worth another try for an idempotent GET; 4xx other than 429 are final.
RETRY_HTTP_STATUSES = frozenset({429, 500, 502, 503, 504})


class BungieError(Exception):
    """Bungie said no, or could not be understood. Carries Bungie's own words."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        error_code: int | None = None,
        error_status: str = "",
        throttle_seconds: float = 0,
        http_status: int | None = None,
        message_data: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.error_status = error_status
        self.throttle_seconds = throttle_seconds
        self.http_status = http_status
        self.message_data = dict(message_data or {})

    def __str__(self) -> str:
        if self.error_code is not None:
            return f"{self.message} (ErrorCode {self.error_code} {self.error_status})"
        return self.message


class BungieMaintenance(BungieError):
    """ErrorCode 5 SystemDisabled: Bungie is down for maintenance."""

    retryable = True


class BungieThrottled(BungieError):
    """Too many requests: wait ``throttle_seconds`` (or back off) and try again."""

    retryable = True


class BungieAuthError(BungieError):
    """The player's token is expired, revoked or not enough: refresh it or log in again."""


class BungieNotFound(BungieError):
    """The thing asked for does not exist (HTTP 404, or a not-found ErrorCode)."""


class BungieTransportError(BungieError):
    """No usable answer: network failure, timeout, HTTP 5xx, HTML or truncated JSON."""

    retryable = True


class BungieOAuthError(BungieError):
    """The OAuth token endpoint refused: ``error`` and ``error_description`` (RFC 6749)."""

    def __init__(self, error: str, description: str, *, http_status: int | None = None) -> None:
        super().__init__(f"OAuth {error}: {description}", error_status=error, http_status=http_status)
        self.error = error
        self.description = description


def error_from_envelope(body: Mapping[str, Any], *, http_status: int | None = None) -> BungieError:
    """The exception for a Bungie envelope whose ErrorCode is not Success."""
    code = code_of(body.get("ErrorCode"))
    try:
        throttle = float(body.get("ThrottleSeconds") or 0)
    except (TypeError, ValueError):
        throttle = 0.0
    message_data = body.get("MessageData")
    kwargs: dict[str, Any] = {
        "error_code": code,
        "error_status": str(body.get("ErrorStatus") or ""),
        "throttle_seconds": max(throttle, 0.0),
        "http_status": http_status,
        "message_data": message_data if isinstance(message_data, Mapping) else None,
    }
    message = str(body.get("Message") or "Bungie returned an error")
    if code == PlatformErrorCode.SystemDisabled:
        return BungieMaintenance(message, **kwargs)
    if code in THROTTLE_CODES or throttle > 0:
        return BungieThrottled(message, **kwargs)
    if code in AUTH_CODES:
        return BungieAuthError(message, **kwargs)
    if code in NOT_FOUND_CODES or http_status == 404:
        return BungieNotFound(message, **kwargs)
    return BungieError(message, **kwargs)


def parse_envelope(content: bytes, *, http_status: int, content_type: str = "") -> Any:
    """Unwrap one Bungie ``/Platform`` answer; return ``Response`` or raise a `BungieError`.

    Bungie has answered 200 with an HTML page (maintenance shells, removed files), so the
    body decides, not the status: anything that is not a JSON envelope is a transport error.
    """
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        kind = "an HTML page" if content.lstrip()[:1] == b"<" else "a body that is not JSON"
        if http_status == 404:
            raise BungieNotFound(f"HTTP 404 with {kind}", http_status=http_status) from None
        error = BungieTransportError(
            f"Bungie answered HTTP {http_status} with {kind} ({content_type or 'no content type'})",
            http_status=http_status,
        )
        # An HTML shell with 200 or a 5xx is worth another try; a 4xx (but 429) is final.
        error.retryable = http_status < 400 or http_status in RETRY_HTTP_STATUSES
        raise error from None
    if not isinstance(body, dict) or "ErrorCode" not in body:
        raise BungieTransportError(
            f"Bungie answered HTTP {http_status} with JSON that is not an envelope",
            http_status=http_status,
        )
    if code_of(body.get("ErrorCode")) != PlatformErrorCode.Success:
        raise error_from_envelope(body, http_status=http_status)
    return body.get("Response")


