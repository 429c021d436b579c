"""The last profile DVR saw of each account, kept in the cache: a `Snapshot`.

What it is for: Bungie in maintenance or throttling still gets the player a page (the last
profile, with its age), and a move DVR made shows at once although Bungie's profile cache
answers the old location for a while (profiles are ordered by their minted time).

One shape in the cache, under ``profile:<account>``: ``{"minted": iso time, "json":
profile JSON bytes}``. As bytes because ~1 MB of profile pickled as Python objects cost
~10 ms to write and ~15 ms to read back on every page view; bytes are a copy, decoded only
when the snapshot is used. The minted time is also kept alone under
``profile:<account>:minted``: most page views need only that, not the 1.6 MB. A value of
any other shape (an older DVR's) is treated as no snapshot: the next fetch replaces it.

The cache is a convenience here: when it fails, nothing is saved and nothing is found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from django.core.cache import cache
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dvr.accounts.models import BungieAccount
from dvr.lib.cache import cache_or
from inventory.profile import Profile

# A profile DVR saw stays usable as a fallback for a week of maintenance.
SNAPSHOT_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Snapshot:
    """A saved profile: its minted time, and the profile as JSON bytes."""

    minted: datetime
    profile_json: bytes

    @classmethod
    def of(cls, profile: Profile) -> Snapshot:
        return cls(minted=profile.minted or timezone.now(), profile_json=profile.to_json())

    @cached_property
    def profile(self) -> Profile:
        """The profile, decoded on first use."""
        return Profile.from_json(self.profile_json)

    @classmethod
    def from_cached(cls, value: object) -> Snapshot | None:
        """The snapshot of a cached value; None for anything but the one shape."""
        if not isinstance(value, dict) or not isinstance(value.get("json"), bytes):
            return None
        minted = minted_from_cached(value.get("minted"))
        return None if minted is None else cls(minted=minted, profile_json=value["json"])


def snapshot_key(account: BungieAccount) -> str:
    return f"profile:{account.pk}"


def minted_key(account: BungieAccount) -> str:
    """The saved snapshot's minted time alone: all a page view needs of it, most views."""
    return f"profile:{account.pk}:minted"


def fresh_key(account: BungieAccount) -> str:
    """Present while the saved profile is one Bungie gave moments ago (`mark_fresh`)."""
    return f"profile:{account.pk}:fresh"


def mark_fresh(*, account: BungieAccount, seconds: int) -> None:
    """Bungie just answered for this account: for ``seconds``, a filter or sort may reuse
    the saved profile instead of asking again (one GetProfile per keystroke otherwise)."""
    if seconds > 0:
        cache_or(lambda: cache.set(fresh_key(account), 1, timeout=seconds), None, what="saved profile")


def forget_fresh(*, account: BungieAccount) -> None:
    """The saved profile may no longer say where the player's items are (Bungie may have
    acted on a move that got no answer, or an item was not where it said): the next page
    asks Bungie."""
    cache_or(lambda: cache.delete(fresh_key(account)), None, what="saved profile")


def minted_from_cached(value: object) -> datetime | None:
    """A minted time as the cache holds it (an ISO string), or None."""
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def snapshot_save(*, account: BungieAccount, profile: Profile) -> None:
    """Save ``profile`` as the account's last profile, and its minted time on its own (one
    round trip for both)."""
    snapshot = Snapshot.of(profile)
    stamp = snapshot.minted.isoformat()
    cache_or(
        lambda: cache.set_many(
            {snapshot_key(account): {"minted": stamp, "json": snapshot.profile_json}, minted_key(account): stamp},
            timeout=SNAPSHOT_SECONDS,
        ),
        None,
        what="saved profile",
    )


def snapshot_load(*, account: BungieAccount) -> Snapshot | None:
    """The account's saved snapshot, if any (its profile is decoded when first used)."""
    return Snapshot.from_cached(cache_or(lambda: cache.get(snapshot_key(account)), None, what="saved profile"))
