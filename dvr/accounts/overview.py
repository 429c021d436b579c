"""The account page's data, and "Disconnect"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from dvr.accounts.models import BungieAccount, BungieToken, DestinyMembership
from dvr.accounts.tokens import access_token_for, bungie_account_for, tokens_delete
from dvr.lib import bungie

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


@dataclass(frozen=True)
class AccountOverview:
    account: BungieAccount
    memberships: list[DestinyMembership]
    connected: bool
    access_expires_at: datetime | None
    refresh_expires_at: datetime | None
    # Why the token could not be refreshed just now (Bungie down), for the page to say.
    bungie_problem: str


def account_overview(*, user: AbstractBaseUser | AnonymousUser) -> AccountOverview:
    """Who the player is on Bungie, their memberships, and their tokens' lifetimes.

    A lapsed access token is refreshed first, so the times shown are the real ones; a dead
    refresh token raises `LoginRequired` (the player logs in again and comes back here).
    """
    account = bungie_account_for(user)
    problem = ""
    if BungieToken.objects.filter(account=account).exists():
        try:
            access_token_for(account)
        except bungie.BungieError as exc:
            problem = (
                "Bungie is in maintenance." if isinstance(exc, bungie.BungieMaintenance) else ("Bungie did not answer.")
            )
    token = BungieToken.objects.filter(account=account).first()
    return AccountOverview(
        account=account,
        memberships=list(account.memberships.all()),
        connected=token is not None,
        access_expires_at=token.access_expires_at if token else None,
        refresh_expires_at=token.refresh_expires_at if token else None,
        bungie_problem=problem,
    )


def account_disconnect(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Delete the player's stored tokens; they stay logged in to DVR until they log out."""
    return tokens_delete(account=bungie_account_for(user))
