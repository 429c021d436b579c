"""Bungie's response envelope and the error bodies the fake answers with.

Codes and ``ErrorStatus`` identifiers come from ``Exceptions.PlatformErrorCodes`` in the
spec. Messages are the real ones where a real body was published (``error-envelopes.json``,
quoted from Bungie-net/api issues); the others are rebuilt in Bungie's style and marked so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson

from .items import DATA_DIR


@dataclass(eq=False)
class PlatformError(Exception):
    """An error answered in the envelope; ``status`` is the HTTP status Bungie uses."""

    code: int
    status: int = 200
    throttle_seconds: int = 0
    message_data: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.throttle_seconds, dict(self.message_data))


# code -> (ErrorStatus, Message). "rebuilt" = no public real body for this code.
_MESSAGES: dict[int, tuple[str, str]] = {
    1: ("Success", "Ok"),
    5: ("SystemDisabled", "This system is temporarily disabled for maintenance."),
    18: ("InvalidParameters", "The input parameters were invalid, please enter valid input, and try again."),
    21: ("NotFound", "The requested resource was not found."),  # rebuilt
    36: (
        "ThrottleLimitExceededMomentarily",
        "Patience is a virtue! Please wait a moment before performing this action again.",
    ),
    99: ("WebAuthRequired", "Please sign-in to continue."),  # rebuilt
    1601: ("DestinyAccountNotFound", "We were unable to find your Destiny account information."),  # rebuilt
    1620: ("DestinyCharacterNotFound", "The character you requested was not found."),  # rebuilt
    1672: ("DestinyThrottledByGameServer", "The game server is busy right now. Please try again later."),  # rebuilt
    1623: ("DestinyItemNotFound", "The item requested was not found."),  # rebuilt
    1641: ("DestinyItemUniqueEquipRestricted", "You can only equip one exotic item of each kind at a time."),  # rebuilt
    1642: ("DestinyNoRoomInDestination", "There are no item slots available to transfer this item."),  # rebuilt
    1643: (
        "DestinyServiceFailure",
        "We couldn't get your Destiny data right now, something funky's going on.  Try again later.",
    ),
    1648: ("DestinyUniquenessViolation", "You already have the maximum number of this unique item."),  # rebuilt
    1656: (
        "DestinyCannotPerformActionOnEquippedItem",
        "You cannot perform this action on an equipped item.",
    ),  # rebuilt
    1671: (
        "DestinyCannotPerformActionAtThisLocation",
        "You cannot perform this action at your current location.",
    ),  # rebuilt
    1673: ("DestinyItemNotTransferrableHasSideEffects", "This item cannot be transferred."),  # rebuilt
    2101: ("ApiInvalidOrExpiredKey", "The API key is invalid or expired."),  # rebuilt
    2102: ("ApiKeyMissingFromRequest", "Please provide an API key."),  # rebuilt
    2106: ("AuthorizationCodeInvalid", "Authorization code is invalid."),
    2111: ("AccessTokenHasExpired", "Access token has expired, please log in again."),  # rebuilt
}


@functools.cache
def real_envelopes() -> list[dict[str, Any]]:
    return orjson.loads((DATA_DIR / "api" / "error-envelopes.json").read_bytes())["envelopes"]


def _real_body(code: int) -> dict[str, Any] | None:
    for entry in real_envelopes():
        body = entry["body"]
        if body.get("ErrorCode") == code and "Response" not in body:
            return body
    return None


def error_body(code: int, throttle_seconds: int = 0, message_data: dict[str, str] | None = None) -> dict[str, Any]:
    real = _real_body(code)
    status, message = _MESSAGES.get(code, ("UnhandledException", "An unexpected error occurred."))
    if real is not None:
        status, message = real["ErrorStatus"], real["Message"]
    return {
        "ErrorCode": code,
        "ThrottleSeconds": throttle_seconds,
        "ErrorStatus": status,
        "Message": message,
        "MessageData": message_data or {},
    }


def success_body(response: Any) -> dict[str, Any]:
    return {
        "Response": response,
        "ErrorCode": 1,
        "ThrottleSeconds": 0,
        "ErrorStatus": "Success",
        "Message": "Ok",
        "MessageData": {},
    }
