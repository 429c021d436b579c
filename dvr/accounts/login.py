"""Log in with Bungie: the OAuth 2 authorization-code flow, by hand.

1. ``/login/`` calls `login_begin`: a random ``state`` is bound to the session (with the
   time and the page to return to) and the browser goes to Bungie's authorize page.
2. Bungie sends the browser back to ``/oauth/callback/``; the view calls `login_state_take`
   (the state must be one this session issued, unused and younger than
   ``BUNGIE_LOGIN_STATE_SECONDS``; it is deleted whatever happens next), then
   `login_check_callback_error` (the player declined, or Bungie could not ask them).
3. `bungie_login` exchanges the code (confidential client), reads
   GetMembershipsForCurrentUser, and stores the player, their memberships and their
   encrypted tokens in one transaction. The view then logs the user in (which rotates the
   session key) and goes to the page the player came from, if it is a path on this site.

Every failure is a `LoginFailed` that carries what the player reads and the HTTP status;
none carries a token or a code, and none logs one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_variables

from dvr.accounts.models import BungieAccount, DestinyMembership
from dvr.accounts.oauth import BungieOAuthClient
from dvr.accounts.tokens import tokens_store
from dvr.lib import bungie

logger = logging.getLogger(__name__)

SESSION_KEY = "bungie_login"
# Logins a session may have in flight at once (one per open tab, say); oldest dropped.
MAX_PENDING_LOGINS = 5
# Where `next` may never point: these would start another login (a loop) or log out.
NEXT_PATH_REFUSED = ("/login/", "/oauth/", "/logout/")


# --- What the player reads when login fails ------------------------------------------------
@dataclass(frozen=True)
class Failure:
    status: int
    title: str
    message: str


FAILURES: dict[str, Failure] = {
    "declined": Failure(
        403, "You did not approve DVR", "You are not logged in, because the request was cancelled on Bungie."
    ),
    "state_missing": Failure(
        400, "That login did not start here", "This address was not reached from a login that DVR started."
    ),
    "state_invalid": Failure(
        400,
        "That login has expired or was already used",
        "A login works once and only for a few minutes. Please start again.",
    ),
    "code_invalid": Failure(
        400,
        "Bungie did not accept that login",
        "The approval has expired or was already used. Please log in again.",
    ),
    "bungie_rejected": Failure(
        400, "Bungie did not confirm your login", "Bungie did not accept the new login. Please try again."
    ),
    "maintenance": Failure(
        503, "Bungie is down for maintenance", "Bungie's services are offline for maintenance. Please try again later."
    ),
    "throttled": Failure(503, "Bungie is busy", "Bungie asked DVR to slow down. Please try again in a minute."),
    "unavailable": Failure(
        503, "Bungie is not answering", "Bungie could not be reached or did not answer sensibly. Please try again."
    ),
    "misconfigured": Failure(
        503,
        "Login with Bungie is not available",
        "DVR's connection to Bungie is not set up correctly. The people who run DVR have been told.",
    ),
}


class LoginFailed(Exception):
    """A login that did not happen: ``reason`` is a key of `FAILURES`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.failure = FAILURES[reason]

    @property
    def status(self) -> int:
        return self.failure.status


def _failed(reason: str, detail: str = "", *, level: int = logging.WARNING) -> LoginFailed:
    # `detail` is Bungie's own words or ours; never a token, a code or a state.
    logger.log(level, "bungie login failed reason=%s detail=%s", reason, detail or "-")
    return LoginFailed(reason, detail)


def _failed_from_bungie(exc: bungie.BungieError, *, step: str) -> LoginFailed:
    """The `LoginFailed` for a Bungie error at ``step`` (``token`` or ``memberships``)."""
    detail = f"{step}: {exc}"
    if isinstance(exc, bungie.BungieMaintenance):
        return _failed("maintenance", detail)
    if isinstance(exc, bungie.BungieThrottled):
        return _failed("throttled", detail)
    if isinstance(exc, bungie.BungieOAuthError):
        if exc.error == "invalid_grant":
            return _failed("code_invalid", detail)
        # invalid_client, invalid_request, unsupported_grant_type: DVR's configuration.
        return _failed("misconfigured", detail, level=logging.ERROR)
    if isinstance(exc, bungie.BungieAuthError):
        return _failed("bungie_rejected", detail)
    return _failed("unavailable", detail)


# --- Step 1 and 2: state and next ------------------------------------------------------------
def safe_next_path(value: str | None, *, host: str) -> str | None:
    """``value`` when it is a path on this site (not ``//host``, ``https://…``, ``/\\host``)."""
    if not value or not value.startswith("/") or value.startswith(NEXT_PATH_REFUSED):
        return None
    if any(ord(char) < 32 or char == "\\" for char in value) or value.startswith("//"):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # "//[x": an unclosed IPv6 host (it was a 500 on /login/)
        return None
    if parts.scheme or parts.netloc:
        return None
    if not url_has_allowed_host_and_scheme(value, allowed_hosts={host}):
        return None
    return value


def login_begin(*, session: SessionBase, next_path: str | None) -> str:
    """Bind a new state (and ``next_path``, already checked) to ``session``; return the
    URL of Bungie's authorize page."""
    try:
        url, state = BungieOAuthClient.from_settings().get_authorization_url()
    except bungie.BungieOAuthError as exc:
        raise _failed("misconfigured", str(exc), level=logging.ERROR) from None
    now = time.time()
    pending = {
        key: value
        for key, value in _pending(session).items()
        if now - value["at"] < settings.BUNGIE_LOGIN_STATE_SECONDS
    }
    pending[state] = {"at": now, "next": next_path}
    session[SESSION_KEY] = dict(sorted(pending.items(), key=lambda kv: kv[1]["at"])[-MAX_PENDING_LOGINS:])
    return url


@sensitive_variables("state", "entry", "pending")
def login_state_take(*, session: SessionBase, state: str | None) -> str | None:
    """Check ``state`` against the session and delete it (single use); return its ``next``."""
    if not state:
        raise _failed("state_missing")
    pending = _pending(session)
    entry = pending.pop(state, None)
    session[SESSION_KEY] = pending
    if entry is None:
        raise _failed("state_invalid", "unknown or already used")
    if time.time() - entry["at"] >= settings.BUNGIE_LOGIN_STATE_SECONDS:
        raise _failed("state_invalid", "expired")
    return entry.get("next")


def _pending(session: SessionBase) -> dict[str, dict[str, Any]]:
    value = session.get(SESSION_KEY)
    return dict(value) if isinstance(value, dict) else {}


def login_check_callback_error(error: str | None) -> None:
    """Raise for an ``error`` Bungie sent back instead of a code (RFC 6749 §4.1.2.1)."""
    if not error:
        return
    if error == "access_denied":
        raise _failed("declined", level=logging.INFO)
    if error in ("temporarily_unavailable", "server_error"):
        raise _failed("unavailable", f"authorize: {error}")
    raise _failed("misconfigured", f"authorize: {error}", level=logging.ERROR)


# --- Step 3: tokens, the player, their memberships --------------------------------------------
class GeneralUser(TypedDict):
    """The parts of Bungie's ``User.GeneralUser`` DVR reads."""

    membershipId: str
    uniqueName: NotRequired[str]
    displayName: NotRequired[str]
    cachedBungieGlobalDisplayName: NotRequired[str]
    cachedBungieGlobalDisplayNameCode: NotRequired[int]


class UserInfoCard(TypedDict):
    """The parts of ``GroupsV2.GroupUserInfoCard`` DVR reads."""

    membershipType: int
    membershipId: str
    displayName: NotRequired[str]
    crossSaveOverride: NotRequired[int]
    applicableMembershipTypes: NotRequired[list[int]]


class UserMembershipData(TypedDict):
    """``User.UserMembershipData``: GetMembershipsForCurrentUser's ``Response``."""

    destinyMemberships: list[UserInfoCard]
    primaryMembershipId: NotRequired[str | None]
    bungieNetUser: GeneralUser


@dataclass(frozen=True)
class MembershipInfo:
    membership_type: int
    membership_id: str
    display_name: str
    cross_save_override: int
    applicable_membership_types: list[int]
    is_primary: bool


@dataclass(frozen=True)
class BungiePlayer:
    membership_id: str
    unique_name: str
    display_name: str
    memberships: list[MembershipInfo]


def bungie_name(user: GeneralUser) -> str:
    """The Bungie name as players see it: ``Name#0123`` (the code has four digits)."""
    name, code = user.get("cachedBungieGlobalDisplayName"), user.get("cachedBungieGlobalDisplayNameCode")
    if name and code is not None:
        return f"{name}#{int(code):04d}"
    return user.get("uniqueName") or user.get("displayName") or f"Guardian {user['membershipId']}"


def player_from_memberships(data: UserMembershipData) -> BungiePlayer:
    """Who logged in, and their Destiny memberships with the primary one first.

    Primary: the card Bungie names in ``primaryMembershipId`` (set under cross save); else
    a card whose cross-save override is its own type; else the first card Bungie lists.
    """
    user = data["bungieNetUser"]
    cards = data.get("destinyMemberships") or []
    primary_id = str(data.get("primaryMembershipId") or "")
    primary = next((i for i, c in enumerate(cards) if primary_id and str(c["membershipId"]) == primary_id), None)
    if primary is None:
        crossed = (i for i, c in enumerate(cards) if c.get("crossSaveOverride") == c["membershipType"] != 0)
        primary = next(crossed, 0)
    memberships = [
        MembershipInfo(
            membership_type=int(card["membershipType"]),
            membership_id=str(card["membershipId"]),
            display_name=str(card.get("displayName") or ""),
            cross_save_override=int(card.get("crossSaveOverride") or 0),
            applicable_membership_types=[int(t) for t in card.get("applicableMembershipTypes") or []],
            is_primary=index == primary,
        )
        for index, card in enumerate(cards)
    ]
    memberships.sort(key=lambda m: not m.is_primary)  # stable: Bungie's order after the primary
    return BungiePlayer(
        membership_id=str(user["membershipId"]),
        unique_name=bungie_name(user),
        display_name=str(user.get("cachedBungieGlobalDisplayName") or user.get("displayName") or ""),
        memberships=memberships,
    )


def account_upsert(*, player: BungiePlayer) -> BungieAccount:
    """Create or update the Django user, account and memberships of ``player``, keyed by
    the Bungie membership id (a renamed player stays the same user)."""
    user_model = get_user_model()
    with transaction.atomic():
        user, created = user_model.objects.get_or_create(username=f"bungie-{player.membership_id}")
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        account, _ = BungieAccount.objects.update_or_create(
            membership_id=player.membership_id,
            defaults={"user": user, "unique_name": player.unique_name, "display_name": player.display_name},
        )
        keep = []
        for info in player.memberships:
            membership, _ = DestinyMembership.objects.update_or_create(
                account=account,
                membership_type=info.membership_type,
                membership_id=info.membership_id,
                defaults={
                    "display_name": info.display_name,
                    "cross_save_override": info.cross_save_override,
                    "applicable_membership_types": info.applicable_membership_types,
                    "is_primary": info.is_primary,
                },
            )
            keep.append(membership.pk)
        account.memberships.exclude(pk__in=keep).delete()
    return account


@sensitive_variables("code", "grant", "oauth")
def bungie_login(*, code: str) -> BungieAccount:
    """Finish a login: exchange ``code``, read who it is, store them and their tokens."""
    if not code:
        raise _failed("code_invalid", "no code in the callback")
    try:
        oauth = BungieOAuthClient.from_settings()
    except bungie.BungieOAuthError as exc:
        raise _failed("misconfigured", str(exc), level=logging.ERROR) from None
    try:
        grant = oauth.get_tokens(code=code)
    except bungie.BungieError as exc:
        raise _failed_from_bungie(exc, step="token") from None
    try:
        # No retries: the player is waiting, and the error page says "try again".
        data = bungie.client().get("/User/GetMembershipsForCurrentUser/", access_token=grant.access_token, retry=False)
        player = player_from_memberships(data)
    except bungie.BungieError as exc:
        raise _failed_from_bungie(exc, step="memberships") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise _failed("unavailable", f"memberships: unexpected shape ({type(exc).__name__} {exc})") from None
    if grant.membership_id and grant.membership_id != player.membership_id:
        raise _failed("bungie_rejected", "the token and the memberships name different players")
    with transaction.atomic():
        account = account_upsert(player=player)
        tokens_store(account=account, grant=grant)
    logger.info("bungie login membership_id=%s memberships=%d", player.membership_id, len(player.memberships))
    return account
