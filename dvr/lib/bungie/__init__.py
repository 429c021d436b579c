"""Bungie.net, as DVR speaks to it: the one client, its errors, Bungie's error codes.

    from dvr.lib import bungie
    manifest = bungie.client().get_manifest()        # raises a bungie.BungieError kind
"""

from dvr.lib.bungie.client import USER_AGENT, BungieClient, Download, ProgressCallback, client
from dvr.lib.bungie.codes import AUTH_CODES, NOT_FOUND_CODES, THROTTLE_CODES, PlatformErrorCode, code_of
from dvr.lib.bungie.errors import (
    RETRY_HTTP_STATUSES,
    BungieAuthError,
    BungieError,
    BungieMaintenance,
    BungieNotFound,
    BungieOAuthError,
    BungieThrottled,
    BungieTransportError,
    error_from_envelope,
    parse_envelope,
)

__all__ = [
    "AUTH_CODES",
    "NOT_FOUND_CODES",
    "RETRY_HTTP_STATUSES",
    "THROTTLE_CODES",
    "USER_AGENT",
    "BungieAuthError",
    "BungieClient",
    "BungieError",
    "BungieMaintenance",
    "BungieNotFound",
    "BungieOAuthError",
    "BungieThrottled",
    "BungieTransportError",
    "Download",
    "PlatformErrorCode",
    "ProgressCallback",
    "client",
    "code_of",
    "error_from_envelope",
    "parse_envelope",
]
