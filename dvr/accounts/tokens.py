"""A player's Bungie tokens: stored encrypted, refreshed in time, refreshed once on refusal.

What other code uses (the inventory pages, transfers, equips)::

    account = bungie_account_for(request.user)          # LoginRequired if none
    profile = with_token_retry(account, lambda token: bungie.client().get(path, access_token=token))

* `access_token_for(account)` returns a usable access token, refreshing it first when it
  expires within `REFRESH_MARGIN`.
* `with_token_retry(account, call)` calls ``call(access_token)``; on a `BungieAuthError`
  (Bungie refused a token DVR thought good: revoked early, clock skew) it refreshes once
  and calls again. A second refusal propagates.
* Both raise `LoginRequired` when the player must log in again: no stored tokens, a
  refresh token that is expired or revoked, or tokens no configured key decrypts.
  `dvr.accounts.middleware.BungieLoginRequiredMiddleware` turns it into a redirect to
  ``/login/?next=<the page>``, so views just let it propagate.
* Other `BungieError`s (maintenance, throttling, transport) propagate: the caller shows
  "Bungie is unavailable". A proactive refresh that fails that way while the current
  access token is still valid quietly uses the current one.

Refreshing takes a row lock (``SELECT … FOR UPDATE``; on SQLite the database's write
lock) for the length of the token call. Bungie rotates refresh tokens, so two requests
refreshing at once would otherwise both spend the same refresh token and one would store
a dead one; with the lock the second waits, re-reads the row, and reuses the first's new
token instead of calling Bungie.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from dvr.accounts.crypto import TokenUndecryptable, token_decrypt, token_encrypt, token_reencrypt
from dvr.accounts.models import BungieAccount, BungieToken
from dvr.accounts.oauth import BungieOAuthClient
from dvr.lib import bungie

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from dvr.accounts.oauth import TokenGrant

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Refresh an access token this long before Bungie would refuse it (requests take time,
# clocks differ). Bungie's access tokens live an hour.
REFRESH_MARGIN = timedelta(seconds=60)


class LoginRequired(Exception):
    """The player must log in with Bungie again (the message says why; it names no token)."""


def bungie_account_for(user: AbstractBaseUser | AnonymousUser) -> BungieAccount:
    """The Bungie account of a logged-in user; `LoginRequired` for anyone else."""
    if not user.is_authenticated:
        raise LoginRequired("not logged in")
    try:
        return BungieAccount.objects.get(user_id=user.pk)
    except BungieAccount.DoesNotExist:
        raise LoginRequired("this user has no Bungie account") from None


@sensitive_variables("grant")
def tokens_store(*, account: BungieAccount, grant: TokenGrant) -> BungieToken:
    """Encrypt and save ``grant``'s tokens as ``account``'s (replacing any)."""
    token, _ = BungieToken.objects.update_or_create(
        account=account,
        defaults={
            "access_token_encrypted": token_encrypt(grant.access_token),
            "refresh_token_encrypted": token_encrypt(grant.refresh_token),
            "access_expires_at": grant.access_expires_at,
            "refresh_expires_at": grant.refresh_expires_at,
        },
    )
    return token


def tokens_delete(*, account: BungieAccount) -> bool:
    """Forget ``account``'s tokens ("Disconnect"). True when there were some."""
    deleted, _ = BungieToken.objects.filter(account=account).delete()
    if deleted:
        logger.info("bungie tokens deleted account=%s", account.pk)
    return bool(deleted)


@sensitive_variables("row")
def access_token_for(account: BungieAccount) -> str:
    """A usable access token for ``account``, refreshed first if it expires within
    `REFRESH_MARGIN`. Raises `LoginRequired`, or a `BungieError` from the refresh."""
    row = BungieToken.objects.filter(account=account).first()
    if row is None:
        raise LoginRequired("no Bungie tokens stored")
    now = timezone.now()
    if row.access_expires_at > now + REFRESH_MARGIN:
        return _decrypt(row.access_token_encrypted, account)
    try:
        return _refresh(account, reuse=lambda fresh, access: fresh.access_expires_at > timezone.now() + REFRESH_MARGIN)
    except bungie.BungieError as exc:
        # Early refresh failed for a passing reason: the current token still works a while.
        if exc.retryable and row.access_expires_at > timezone.now():
            logger.warning("bungie token refresh deferred account=%s reason=%s", account.pk, exc)
            return _decrypt(row.access_token_encrypted, account)
        raise


@sensitive_variables("rejected")
def access_token_refresh(account: BungieAccount, *, rejected: str) -> str:
    """A new access token for ``account`` after Bungie refused ``rejected``; a token that
    another request stored meanwhile is reused, not refreshed again."""
    return _refresh(
        account,
        reuse=lambda fresh, access: (
            not hmac.compare_digest(access, rejected) and fresh.access_expires_at > timezone.now()
        ),
    )


@sensitive_variables("token")
def with_token_retry(account: BungieAccount, call: Callable[[str], T]) -> T:
    """``call(access_token)``, refreshing and calling once more if Bungie refuses the token."""
    token = access_token_for(account)
    try:
        return call(token)
    except bungie.BungieAuthError as exc:
        logger.info("bungie token refused account=%s reason=%s; refreshing once", account.pk, exc)
        return call(access_token_refresh(account, rejected=token))


@sensitive_variables("access", "refresh", "grant")
def _refresh(account: BungieAccount, *, reuse: Callable[[BungieToken, str], bool]) -> str:
    """Under the row lock: the stored access token if ``reuse(row, token)`` says it will do,
    else new tokens from Bungie, stored before the lock is released."""
    gone = ""
    with transaction.atomic():
        row = BungieToken.objects.select_for_update().filter(account=account).first()
        if row is None:
            gone = "no Bungie tokens stored"
        else:
            access = _decrypt(row.access_token_encrypted, account)
            if reuse(row, access):
                return access
            if row.refresh_expires_at <= timezone.now():
                row.delete()
                gone = "the refresh token has expired"
            else:
                refresh = _decrypt(row.refresh_token_encrypted, account)
                try:
                    grant = BungieOAuthClient.from_settings().refresh_tokens(refresh_token=refresh)
                except bungie.BungieOAuthError as exc:
                    if exc.error != "invalid_grant":
                        raise  # DVR's own configuration: logging in again would not help
                    row.delete()
                    gone = f"Bungie refused the refresh token ({exc.description})"
                else:
                    tokens_store(account=account, grant=grant)
                    logger.info("bungie token refreshed account=%s", account.pk)
                    return grant.access_token
    # Raised outside the transaction so the deletion of dead tokens is kept.
    logger.info("bungie login required account=%s reason=%s", account.pk, gone)
    raise LoginRequired(gone)


@sensitive_variables()
def _decrypt(ciphertext: str, account: BungieAccount) -> str:
    try:
        return token_decrypt(ciphertext)
    except TokenUndecryptable as exc:
        logger.warning("bungie tokens unreadable account=%s: %s", account.pk, exc)
        raise LoginRequired("stored tokens cannot be decrypted") from None


def tokens_reencrypt() -> tuple[int, int]:
    """Re-encrypt every stored token under the newest key (key rotation); returns
    (rows re-encrypted, rows no configured key opens). Each row under its own lock, so a
    refresh running meanwhile is never overwritten with older tokens."""
    rotated = unreadable = 0
    for pk in BungieToken.objects.values_list("pk", flat=True):
        with transaction.atomic():
            row = BungieToken.objects.select_for_update().filter(pk=pk).first()
            if row is None:
                continue
            try:
                row.access_token_encrypted = token_reencrypt(row.access_token_encrypted)
                row.refresh_token_encrypted = token_reencrypt(row.refresh_token_encrypted)
            except TokenUndecryptable:
                unreadable += 1
                continue
            row.save(update_fields=["access_token_encrypted", "refresh_token_encrypted", "updated_at"])
            rotated += 1
    return rotated, unreadable
