"""DVR's OAuth application on Bungie: the authorize URL and the token endpoint.

HackSoft's shape: a small client with `get_authorization_url() -> (url, state)` and
`get_tokens(*, code)`, plus `refresh_tokens(*, refresh_token)`. The HTTP itself is
`dvr.lib.bungie`'s; this module only knows the grant types and the answer's shape.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from dvr.lib import bungie


@dataclass(frozen=True)
class TokenGrant:
    """What Bungie's token endpoint gave: tokens (never in a repr) and when they expire."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_expires_at: datetime
    membership_id: str

    @classmethod
    def from_response(cls, body: dict[str, Any], *, now: datetime) -> TokenGrant:
        """Parse the token endpoint's JSON; a confidential client always gets a refresh token."""
        try:
            return cls(
                access_token=str(body["access_token"]),
                refresh_token=str(body["refresh_token"]),
                access_expires_at=now + timedelta(seconds=int(body["expires_in"])),
                refresh_expires_at=now + timedelta(seconds=int(body["refresh_expires_in"])),
                membership_id=str(body.get("membership_id") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            # Name the missing field, never a value: the body holds the tokens.
            what = repr(exc.args[0]) if isinstance(exc, KeyError) and exc.args else "expiry"
            raise bungie.BungieTransportError(
                f"the token endpoint's answer has no usable {what} (is the application a confidential client?)"
            ) from None


class BungieOAuthClient:
    """DVR's OAuth application on Bungie (HackSoft's shape: authorization URL, tokens)."""

    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret

    def __repr__(self) -> str:
        return f"BungieOAuthClient(client_id={self.client_id!r})"

    @classmethod
    def from_settings(cls) -> BungieOAuthClient:
        if not (settings.BUNGIE_CLIENT_ID and settings.BUNGIE_CLIENT_SECRET):
            raise bungie.BungieOAuthError(
                "invalid_client", "BUNGIE_CLIENT_ID and BUNGIE_CLIENT_SECRET must both be set"
            )
        return cls(client_id=settings.BUNGIE_CLIENT_ID, client_secret=settings.BUNGIE_CLIENT_SECRET)

    def get_authorization_url(self) -> tuple[str, str]:
        """Bungie's authorize URL for a new random ``state``, and that state."""
        state = secrets.token_urlsafe(32)
        return bungie.client().authorize_url(client_id=self.client_id, state=state), state

    @sensitive_variables()
    def get_tokens(self, *, code: str) -> TokenGrant:
        """Exchange an authorization code (single use, never retried)."""
        return self._grant({"grant_type": "authorization_code", "code": code})

    @sensitive_variables()
    def refresh_tokens(self, *, refresh_token: str) -> TokenGrant:
        """New tokens for a refresh token; Bungie rotates it, so the old one is dead after this."""
        return self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token})

    @sensitive_variables()
    def _grant(self, data: dict[str, str]) -> TokenGrant:
        now = timezone.now()
        body = bungie.client().oauth_token(client_id=self.client_id, client_secret=self.client_secret, data=data)
        return TokenGrant.from_response(body, now=now)
