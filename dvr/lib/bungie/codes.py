"""Bungie's PlatformErrorCodes that DVR decides on, by Bungie's own names.

Names and numbers are those of ``Exceptions.PlatformErrorCodes`` in Bungie's OpenAPI spec
(a test checks every member against it). Compare an envelope's ``ErrorCode`` with these,
never with a bare number.
"""

from __future__ import annotations

from enum import IntEnum


class PlatformErrorCode(IntEnum):
    Success = 1
    SystemDisabled = 5
    InsufficientPrivileges = 12
    ParameterParseFailure = 7
    InvalidParameters = 18
    NotFound = 21
    WebAuthModuleAsyncFailed = 22
    ThrottleLimitExceeded = 31
    ThrottleLimitExceededMinutes = 35
    ThrottleLimitExceededMomentarily = 36
    ThrottleLimitExceededSeconds = 37
    PerEndpointRequestThrottleExceeded = 51
    PerApplicationThrottleExceeded = 54
    PerApplicationAnonymousThrottleExceeded = 55
    PerApplicationAuthenticatedThrottleExceeded = 56
    PerUserThrottleExceeded = 57
    WebAuthRequired = 99
    DestinyAccountNotFound = 1601
    DestinyCharacterNotFound = 1620
    DestinyItemNotFound = 1623
    DestinyItemBucketNotFound = 1629
    DestinyBucketNotFound = 1633
    DestinyCharacterNotInTower = 1634
    DestinyItemUniqueEquipRestricted = 1641
    DestinyNoRoomInDestination = 1642
    DestinyUniquenessViolation = 1648
    DestinyCannotPerformActionOnEquippedItem = 1656
    DestinyCannotPerformActionAtThisLocation = 1671
    DestinyThrottledByGameServer = 1672
    ApiInvalidOrExpiredKey = 2101
    ApiKeyMissingFromRequest = 2102
    AuthorizationCodeInvalid = 2106
    OriginHeaderDoesNotMatchKey = 2107
    AccessNotPermittedByApplicationScope = 2108
    RefreshTokenNotYetValid = 2110
    AccessTokenHasExpired = 2111
    ApplicationTokenFormatNotValid = 2112
    OAuthAccessTokenExpired = 2115
    ApplicationTokenKeyIdDoesNotExist = 2116
    ProvidedTokenNotValidRefreshToken = 2117
    RefreshTokenExpired = 2118
    AuthorizationRecordInvalid = 2119
    TokenPreviouslyRevoked = 2120
    TokenInvalidMembership = 2121
    AuthorizationCodeStale = 2122
    AuthorizationRecordExpired = 2123
    AuthorizationRecordRevoked = 2124
    AuthorizationRecordInactiveApiKey = 2125
    AuthorizationRecordApiKeyMatching = 2126


C = PlatformErrorCode

# Too many requests, of whichever kind: wait ThrottleSeconds (or back off) and try again.
THROTTLE_CODES = frozenset({
    C.ThrottleLimitExceeded, C.ThrottleLimitExceededMinutes, C.ThrottleLimitExceededMomentarily,
    C.ThrottleLimitExceededSeconds, C.PerEndpointRequestThrottleExceeded, C.PerApplicationThrottleExceeded,
    C.PerApplicationAnonymousThrottleExceeded, C.PerApplicationAuthenticatedThrottleExceeded,
    C.PerUserThrottleExceeded, C.DestinyThrottledByGameServer,
})
# The player's token or authorization. Not the API-key codes (ApiInvalidOrExpiredKey,
# ApiKeyMissingFromRequest, OriginHeaderDoesNotMatchKey, AuthorizationRecordInactiveApiKey,
# AuthorizationRecordApiKeyMatching): those are DVR's own configuration, not the player's.
AUTH_CODES = frozenset({
    C.InsufficientPrivileges, C.WebAuthModuleAsyncFailed, C.WebAuthRequired, C.AuthorizationCodeInvalid,
    C.AccessNotPermittedByApplicationScope, C.RefreshTokenNotYetValid, C.AccessTokenHasExpired,
    C.ApplicationTokenFormatNotValid, C.OAuthAccessTokenExpired, C.ApplicationTokenKeyIdDoesNotExist,
    C.ProvidedTokenNotValidRefreshToken, C.RefreshTokenExpired, C.AuthorizationRecordInvalid,
    C.TokenPreviouslyRevoked, C.TokenInvalidMembership, C.AuthorizationCodeStale, C.AuthorizationRecordExpired,
    C.AuthorizationRecordRevoked,
})
NOT_FOUND_CODES = frozenset({
    C.NotFound, C.DestinyAccountNotFound, C.DestinyCharacterNotFound, C.DestinyItemNotFound,
    C.DestinyItemBucketNotFound, C.DestinyBucketNotFound,
})


def code_of(value: object) -> PlatformErrorCode | int | None:
    """An envelope's ``ErrorCode`` as a member when DVR knows it, the number otherwise."""
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    try:
        return PlatformErrorCode(number)
    except ValueError:
        return number
