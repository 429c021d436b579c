"""Getting a player's profile from Bungie, and the pages that need it.

One ``GetProfile`` call per page view (with the components the page needs), and a page
whatever Bungie is doing:

* Bungie in maintenance or throttling: the last profile DVR saw (`inventory.snapshots`),
  with its age and why;
* profiles are ordered by Bungie's ``responseMintedTimestamp``: Bungie caches profiles for
  seconds to minutes after a move, so an answer older than the last one seen is discarded.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from django.conf import settings
from django.core.cache import cache

from dvr.accounts.models import BungieAccount, DestinyMembership
from dvr.accounts.tokens import LoginRequired, with_token_retry
from dvr.lib import bungie
from dvr.lib.cache import cache_or
from inventory import filters
from inventory.annotations import annotation_of
from inventory.page import (
    InventoryPage,
    ItemDetail,
    build_page,
    built_items,
    item_page,
    needs_profile,
    recent_items,
)
from inventory.profile import Profile, ProfileResponse
from inventory.saved_searches import default_query, saved_searches_for
from inventory.snapshots import (
    Snapshot,
    fresh_key,
    mark_fresh,
    minted_from_cached,
    minted_key,
    snapshot_load,
    snapshot_save,
)
from inventory.wishlists import wish_matches, wishes_for
from manifest.lookup import active_seq

logger = logging.getLogger(__name__)

# Profile, characters, inventories, equipment, item instances, stats (304), sockets (305) and
# reusable plugs (310): the last three are the rolls an item page and compare show.
PROFILE_COMPONENTS = "100,102,103,200,201,205,300,304,305,310"
ALERTS_SECONDS = 300
ALERTS_KEY = "bungie:alerts"


class ProfileUnavailable(Exception):
    """Bungie could not give the profile and DVR has none saved to show instead."""

    def __init__(self, reason: str, *, maintenance: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maintenance = maintenance


def primary_membership(account: BungieAccount) -> DestinyMembership:
    membership = account.memberships.first()  # ordered primary first
    if membership is None:
        raise ProfileUnavailable("Your Bungie account has no Destiny 2 characters.", maintenance=False)
    return membership


def profile_fetch(
    *, account: BungieAccount, saved: Snapshot | None = None, saved_minted: datetime | None = None
) -> tuple[Profile, str]:
    """(the profile, why it is not fresh — "" when it is).

    Calls Bungie once. A newer answer replaces the saved snapshot; an older one (Bungie's
    profile cache after a move) is discarded in favour of the saved one. When Bungie is
    down, the saved snapshot is returned with the reason; with none, `ProfileUnavailable`.
    ``saved`` is the snapshot when the caller has it; ``saved_minted`` only its minted time
    (a page view's): the snapshot is then read from the cache only if it is used. With
    neither, DVR has no snapshot.
    """
    if saved is not None:
        saved_minted = saved.minted

    def saved_profile() -> Profile | None:
        snapshot = saved if saved is not None else snapshot_load(account=account)
        return snapshot.profile if snapshot is not None else None

    membership = primary_membership(account)
    path = f"/Destiny2/{membership.membership_type}/Profile/{membership.membership_id}/"
    try:
        response, body = with_token_retry(
            account,
            lambda token: bungie.client().get_with_body(
                path, params={"components": PROFILE_COMPONENTS}, access_token=token
            ),
        )
    except LoginRequired:
        raise
    except bungie.BungieError as exc:
        maintenance = isinstance(exc, bungie.BungieMaintenance)
        reason = (
            "Bungie is down for maintenance" if maintenance
            else "Bungie asked us to slow down" if isinstance(exc, bungie.BungieThrottled)
            else "Bungie could not be reached"
        )
        logger.warning("profile fetch failed account=%s reason=%s", account.pk, exc)
        if saved_minted is not None and (older := saved_profile()) is not None:
            return older, reason
        raise ProfileUnavailable(reason, maintenance=maintenance or exc.retryable) from exc
    if not isinstance(response, dict):
        raise ProfileUnavailable("Bungie sent a profile DVR could not read.", maintenance=False)
    profile = Profile(cast(ProfileResponse, response), json=body)  # saved as Bungie sent it
    mark_fresh(account=account, seconds=settings.PROFILE_REUSE_SECONDS)
    if saved_minted is not None and profile.minted is not None:
        if profile.minted < saved_minted:
            if (newer := saved_profile()) is not None:
                return newer, ""
        elif profile.minted == saved_minted:  # Bungie's cached answer again: the saved one already
            return profile, ""
    snapshot_save(account=account, profile=profile)
    return profile, ""


def global_alerts(cached: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Bungie's GlobalAlerts, fetched at most every five minutes (shared through the cache).
    ``cached`` is what the cache held (None: nothing)."""
    alerts = cached
    if alerts is None:
        try:
            alerts = bungie.client().get("/GlobalAlerts/", retry=False) or []
        except bungie.BungieError:
            alerts = []
        fetched = alerts
        cache_or(lambda: cache.set(ALERTS_KEY, fetched, timeout=ALERTS_SECONDS), None, what="alerts")
    return [a for a in alerts if isinstance(a, dict)]


def inventory_page(
    *, account: BungieAccount, query_text: str | None = "", sort: str = "power", reuse: bool = False
) -> InventoryPage:
    """The logged-in player's inventory page (see the module docstring). With ``reuse`` (a
    filter or sort typed on the page), a profile Bungie gave within the last
    ``PROFILE_REUSE_SECONDS`` is used again instead of asking Bungie: this process's tiles
    of it when it built them (`page.recent_items`), else the saved snapshot.
    ``query_text`` None (no filter given at all): the player's default saved search."""
    searches = saved_searches_for(account=account)  # the chips; one query
    if query_text is None:
        query_text = default_query(searches)
    # The saved profile's minted time, whether it is fresh, and the alerts: one round trip.
    keys = [minted_key(account), fresh_key(account), ALERTS_KEY]
    cached: dict[str, Any] = cache_or(lambda: cache.get_many(keys), {}, what="saved profile and alerts")
    saved_minted = minted_from_cached(cached.get(minted_key(account)))
    query = filters.parse_query(query_text)
    seq = active_seq()
    reusing = reuse and saved_minted is not None and bool(cached.get(fresh_key(account)))
    built = recent_items(account=account, minted=saved_minted, seq=seq) if reusing and saved_minted else None
    profile: Profile | None = None
    stale_reason = ""
    if built is None or needs_profile(built, query):
        saved = snapshot_load(account=account) if reusing else None
        if saved is not None:
            profile = saved.profile
        else:
            profile, stale_reason = profile_fetch(account=account, saved_minted=saved_minted)
        built = built_items(account=account, profile=profile, seq=seq)
    page = build_page(account=account, built=built, query=query, sort=sort, stale_reason=stale_reason,
                      profile=profile)
    page.alerts = global_alerts(cached.get(ALERTS_KEY))
    page.saved_searches = searches
    return page


def item_detail(*, account: BungieAccount, item_id: str) -> ItemDetail | None:
    """One item's page (stats, perks, buttons), from the saved profile when there is one;
    None when the player has no such item."""
    saved = snapshot_load(account=account)
    profile = saved.profile if saved is not None else profile_fetch(account=account)[0]
    detail = item_page(profile=profile, key=item_id)
    if detail is not None:
        detail.note = annotation_of(account=account, instance_id=detail.item.instance_id)
        detail.wishes = wish_matches(item_hash=detail.item.item_hash, perks=detail.item.perks,
                                     wishes=wishes_for(account=account, item_hashes=[detail.item.item_hash]))
    return detail
