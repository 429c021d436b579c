"""Reading a player's Destiny profile and turning it into the inventory page.

One `GetProfile` call per page view (with the components the page needs), one
definitions lookup for the whole page (items, buckets, classes, races, stats, plugs), and
a page that renders whatever the world is doing:

* an item hash the active manifest lacks (Bungie published, DVR has not synced yet) is an
  "Unknown item" with a notice, and a manifest check is queued in the background;
* Bungie in maintenance or throttling: the last profile DVR saw, with its age and why;
* profiles are ordered by Bungie's ``responseMintedTimestamp``: Bungie caches profiles for
  seconds to minutes after a move, so an answer older than the last one seen is discarded.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from django.core.cache import cache
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dvr.accounts.models import BungieAccount, DestinyMembership
from dvr.accounts.tokens import LoginRequired, with_token_retry
from dvr.lib import bungie
from inventory import filters
from manifest.lookup import VALID_FROM, active_seq, lookup
from manifest.models import ManifestState

logger = logging.getLogger(__name__)

# Profile, characters, inventories, equipment, item instances and sockets.
PROFILE_COMPONENTS = "100,102,103,200,201,205,300,305"
# A profile DVR saw stays usable as a fallback for a week of maintenance.
SNAPSHOT_SECONDS = 7 * 24 * 3600
ALERTS_SECONDS = 300
UNKNOWN_CHECK_SECONDS = 300
ALERTS_KEY = "bungie:alerts"

ITEMS = "DestinyInventoryItemDefinition"
BUCKETS = "DestinyInventoryBucketDefinition"
CLASSES = "DestinyClassDefinition"
RACES = "DestinyRaceDefinition"
STATS = "DestinyStatDefinition"

# Bungie's bucket hashes are stable across manifests; these name the slots players use.
SLOTS = {
    1498876634: "kinetic", 2465295065: "energy", 953998645: "power",
    3448274439: "helmet", 3551918588: "gauntlets", 14239492: "chest", 20886954: "legs", 1585787867: "class",
    4023194814: "ghost",
}
SLOT_ORDER = list(SLOTS)
VAULT_BUCKET = 138197802
POSTMASTER_BUCKET = 215593132
# DestinyDamageType (openapi.json): 3 is Thermal, which players call Solar.
DAMAGE = {1: "kinetic", 2: "arc", 3: "solar", 4: "void", 6: "stasis", 7: "strand"}
# DestinyItemType and TierType enums.
KINDS = {3: "weapon", 2: "armor", 24: "ghost"}
TIERS = {6: "exotic", 5: "legendary", 4: "rare", 3: "uncommon", 2: "common"}
POWER_STAT = 1935470627


@dataclass(slots=True)  # ~1,200 per page: slots make them quicker to build and read
class ItemView:
    """One item as the page shows it (also what the filter language reads)."""

    key: str  # the instance id, or "<hash>" for an uninstanced stack
    instance_id: str | None
    item_hash: int
    quantity: int
    bucket_hash: int
    location: str  # character | vault | postmaster
    owner: str | None  # character id when on a character or in its postmaster
    equipped: bool
    name: str = "Unknown item"
    icon: str = ""
    tier: str = ""
    tier_name: str = ""
    type_name: str = ""
    damage: str = ""
    slot: str = ""
    kind: str = ""
    power: int | None = None
    known: bool = False
    changed_in_latest: bool = False
    stats: list[tuple[str, int]] = field(default_factory=list)
    perks: list[tuple[str, str]] = field(default_factory=list)  # (name, icon)

    @property
    def transferable(self) -> bool:
        return self.instance_id is not None and self.location != "postmaster" and not self.equipped


@dataclass
class CharacterView:
    character_id: str
    class_name: str
    race_name: str
    power: int
    emblem: str
    emblem_background: str
    equipped: list[ItemView]
    inventory: list[tuple[str, list[ItemView]]]  # (bucket name, items)
    postmaster: list[ItemView]

    @property
    def label(self) -> str:
        return f"{self.class_name} ({self.power})"


@dataclass
class InventoryPage:
    account: BungieAccount
    characters: list[CharacterView]
    vault: list[tuple[str, list[ItemView]]]
    items: dict[str, ItemView]
    query: filters.ParsedQuery
    sort: str
    shown: int
    total: int
    minted_at: datetime | None
    stale_reason: str = ""  # why the profile shown is not fresh from Bungie
    notices: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    manifest_version: str = ""
    changed_items: list[ItemView] = field(default_factory=list)

    @property
    def age_seconds(self) -> float | None:
        return None if self.minted_at is None else max(0.0, (timezone.now() - self.minted_at).total_seconds())

    def character(self, character_id: str | None) -> CharacterView | None:
        return next((c for c in self.characters if c.character_id == character_id), None)


class ProfileUnavailable(Exception):
    """Bungie could not give the profile and DVR has none saved to show instead."""

    def __init__(self, reason: str, *, maintenance: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maintenance = maintenance


# --- the profile itself ----------------------------------------------------------------------
def primary_membership(account: BungieAccount) -> DestinyMembership:
    membership = account.memberships.first()  # ordered primary first
    if membership is None:
        raise ProfileUnavailable("Your Bungie account has no Destiny 2 characters.", maintenance=False)
    return membership


def _snapshot_key(account: BungieAccount) -> str:
    return f"profile:{account.pk}"


def _minted_key(account: BungieAccount) -> str:
    """The saved snapshot's minted time alone: all a page view needs of it, most views."""
    return f"profile:{account.pk}:minted"


def _minted(response: dict[str, Any]) -> datetime | None:
    value = response.get("responseMintedTimestamp")
    return parse_datetime(value) if isinstance(value, str) else None


def profile_fetch(*, account: BungieAccount, saved: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """(the profile Response, why it is not fresh — "" when it is).

    Calls Bungie once. A newer answer replaces the saved snapshot; an older one (Bungie's
    profile cache after a move) is discarded in favour of the saved one. When Bungie is
    down, the saved snapshot is returned with the reason; with none, `ProfileUnavailable`.
    ``saved`` is the snapshot (`snapshot_load`) or only ``{"minted": ...}``: its profile
    is then read from the cache only if it is used.
    """
    membership = primary_membership(account)
    path = f"/Destiny2/{membership.membership_type}/Profile/{membership.membership_id}/"
    try:
        response = with_token_retry(
            account,
            lambda token: bungie.client().get(path, params={"components": PROFILE_COMPONENTS}, access_token=token),
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
        if saved is not None and (data := _snapshot_data(account, saved)) is not None:
            return data, reason
        raise ProfileUnavailable(reason, maintenance=maintenance or exc.retryable) from exc
    if not isinstance(response, dict):
        raise ProfileUnavailable("Bungie sent a profile DVR could not read.", maintenance=False)
    minted = _minted(response)
    if saved is not None and minted is not None:
        saved_minted = parse_datetime(saved.get("minted", ""))
        if saved_minted is not None and minted < saved_minted:
            if (data := _snapshot_data(account, saved)) is not None:
                return data, ""
        elif saved_minted == minted:  # Bungie's cached answer again: the saved one already
            return response, ""
    snapshot_save(account=account, data=response, minted=minted)
    return response, ""


def snapshot_save(*, account: BungieAccount, data: dict[str, Any], minted: datetime | None) -> None:
    """Save ``data`` as the account's last profile. As JSON bytes: ~1 MB of profile
    pickled as Python objects cost ~10 ms to write and ~15 ms to read back on every page
    view; as bytes it is a copy, and decoded only when the snapshot is actually used.
    Its minted time also on its own (one round trip for both), which is what a page view
    reads: not the 1.6 MB."""
    stamp = (minted or timezone.now()).isoformat()
    try:
        cache.set_many({_snapshot_key(account): {"minted": stamp, "json": orjson.dumps(data)},
                        _minted_key(account): stamp}, timeout=SNAPSHOT_SECONDS)
    except Exception as exc:  # the cache is a convenience here, never a reason to fail
        logger.warning("profile snapshot not saved: %s", type(exc).__name__)


def _snapshot_data(account: BungieAccount, saved: dict[str, Any]) -> dict[str, Any] | None:
    """The profile of a saved snapshot, read from the cache if ``saved`` is only its
    minted time (None if it is gone meanwhile). Snapshots saved before DVR kept them as
    JSON bytes hold the profile decoded, as "data"."""
    if "data" in saved:
        return saved["data"]
    if "json" in saved:
        return orjson.loads(saved["json"])
    try:
        full = cache.get(_snapshot_key(account))
    except Exception:
        return None
    return None if full is None or not ("data" in full or "json" in full) else _snapshot_data(account, full)


def snapshot_load(account: BungieAccount) -> dict[str, Any] | None:
    """The saved snapshot, decoded: ``{"minted": iso time, "data": the profile}``."""
    try:
        saved = cache.get(_snapshot_key(account))
        return None if saved is None else {"minted": saved.get("minted", ""), "data": _snapshot_data(account, saved)}
    except Exception:
        return None


def global_alerts(cached: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Bungie's GlobalAlerts, fetched at most every five minutes (shared through the cache).
    ``cached`` is what the cache held (None: nothing)."""
    alerts = cached
    if alerts is None:
        try:
            alerts = bungie.client().get("/GlobalAlerts/", retry=False) or []
        except bungie.BungieError:
            alerts = []
        try:
            cache.set(ALERTS_KEY, alerts, timeout=ALERTS_SECONDS)
        except Exception:
            logger.debug("alerts not cached: cache unavailable")
    return [a for a in alerts if isinstance(a, dict)]


# --- building the page ----------------------------------------------------------------------
def _items_of(component: dict[str, Any] | None) -> list[dict[str, Any]]:
    data = (component or {}).get("data") or {}
    items = data.get("items") if isinstance(data, dict) else None
    return items if isinstance(items, list) else []


def _per_character(component: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    data = (component or {}).get("data") or {}
    return {cid: (v or {}).get("items") or [] for cid, v in data.items()} if isinstance(data, dict) else {}


def raw_items(profile: dict[str, Any]) -> list[tuple[dict[str, Any], str, str | None, bool]]:
    """(raw item, location, owner character, equipped) for everything the player owns."""
    found = []
    for raw in _items_of(profile.get("profileInventory")):
        if raw.get("bucketHash") == VAULT_BUCKET or raw.get("location") == 2:
            found.append((raw, "vault", None, False))
    for owner, items in _per_character(profile.get("characterEquipment")).items():
        found.extend((raw, "character", owner, True) for raw in items)
    for owner, items in _per_character(profile.get("characterInventories")).items():
        for raw in items:
            location = "postmaster" if raw.get("bucketHash") == POSTMASTER_BUCKET else "character"
            found.append((raw, location, owner, False))
    return found


def _describe(
    item: ItemView, definition: dict[str, Any] | None, instance: dict[str, Any] | None, client: bungie.BungieClient
) -> None:
    if definition is not None:
        display = definition.get("displayProperties") or {}
        inventory = definition.get("inventory") or {}
        item.known = True
        item.name = display.get("name") or "Unnamed item"
        item.icon = _icon_url(client, display["icon"]) if display.get("icon") else ""
        item.tier = TIERS.get(inventory.get("tierType"), (inventory.get("tierTypeName") or "").lower())
        item.tier_name = inventory.get("tierTypeName") or item.tier.title()
        item.type_name = definition.get("itemTypeDisplayName") or ""
        item.kind = KINDS.get(definition.get("itemType"), "")
        item.slot = SLOTS.get(inventory.get("bucketTypeHash") or item.bucket_hash, "")
        item.damage = DAMAGE.get(definition.get("defaultDamageType") or 0, "")
    elif item.bucket_hash in SLOTS:
        item.slot = SLOTS[item.bucket_hash]
    if instance:
        item.damage = DAMAGE.get(instance.get("damageType") or 0, item.damage)
        primary = instance.get("primaryStat") or {}
        if isinstance(primary.get("value"), int):
            item.power = primary["value"]


@lru_cache(maxsize=16_384)
def _icon_url(client: bungie.BungieClient, path: str) -> str:
    """``client.url(path)``, remembered: a page has ~1,200 icons, the same from one view
    to the next, and checking each path (``urlsplit``) was ~3 ms of every view. Keyed by
    the client, which is one per BUNGIE_ROOT_URL."""
    return client.url(path)


def _bucket_name(bucket_hash: int, buckets: dict[int, dict[str, Any]]) -> str:
    display = (buckets.get(bucket_hash) or {}).get("displayProperties") or {}
    return display.get("name") or ("Postmaster" if bucket_hash == POSTMASTER_BUCKET else "Other")


def build_page(
    *, account: BungieAccount, profile: dict[str, Any], query_text: str = "", sort: str = "power",
    stale_reason: str = "",
) -> InventoryPage:
    """Everything the inventory page shows, from one profile and one definitions lookup."""
    seq = active_seq()
    owned = raw_items(profile)
    instances = ((profile.get("itemComponents") or {}).get("instances") or {}).get("data") or {}
    characters = (profile.get("characters") or {}).get("data") or {}

    item_hashes = {raw.get("itemHash") for raw, *_ in owned}
    found = lookup(
        {
            ITEMS: item_hashes,
            BUCKETS: {raw.get("bucketHash") for raw, *_ in owned} | set(SLOTS) | {VAULT_BUCKET},
            CLASSES: {c.get("classHash") for c in characters.values()},
            RACES: {c.get("raceHash") for c in characters.values()},
        },
        seq=seq,
        view="summary",  # what a tile shows: ~0.3 KB a definition instead of ~5.7 KB
    )
    definitions, buckets = found[ITEMS], found[BUCKETS]
    changed = _changed_in_latest(definitions, seq)

    client = bungie.client()
    items: dict[str, ItemView] = {}
    for raw, location, owner, equipped in owned:
        item_hash = int(raw.get("itemHash") or 0)
        instance_id = raw.get("itemInstanceId")
        key = instance_id or f"{owner or 'vault'}-{item_hash}"
        item = ItemView(
            key=key, instance_id=instance_id, item_hash=item_hash, quantity=int(raw.get("quantity") or 1),
            bucket_hash=int(raw.get("bucketHash") or 0), location=location, owner=owner, equipped=equipped,
        )
        _describe(item, definitions.get(item_hash), instances.get(instance_id) if instance_id else None, client)
        item.changed_in_latest = item.known and item_hash in changed
        items[key] = item

    query = filters.parse_query(query_text)
    order = filters.sort_key(sort if sort in filters.SORTS else "power")
    shown = [i for i in items.values() if query.matches(i)]
    shown_keys = {i.key for i in shown}

    def grouped(selection: list[ItemView], *, by_slot: bool) -> list[tuple[str, list[ItemView]]]:
        groups: dict[int, list[ItemView]] = defaultdict(list)
        for item in selection:
            bucket = (definitions.get(item.item_hash) or {}).get("inventory", {}).get("bucketTypeHash")
            groups[bucket or item.bucket_hash].append(item)
        ordered = sorted(groups, key=lambda b: SLOT_ORDER.index(b) if b in SLOTS else len(SLOT_ORDER) + b)
        return [(_bucket_name(b, buckets), sorted(groups[b], key=order)) for b in ordered]

    character_views = []
    for character_id, character in characters.items():
        mine = [i for i in items.values() if i.owner == character_id and i.key in shown_keys]
        equipped = sorted((i for i in mine if i.equipped),
                          key=lambda i: SLOT_ORDER.index(i.bucket_hash) if i.bucket_hash in SLOTS else 99)
        character_views.append(CharacterView(
            character_id=character_id,
            class_name=_name(found[CLASSES].get(character.get("classHash")), "Guardian"),
            race_name=_name(found[RACES].get(character.get("raceHash")), ""),
            power=int(character.get("light") or 0),
            emblem=bungie.client().url(character["emblemPath"]) if character.get("emblemPath") else "",
            emblem_background=(
                bungie.client().url(character["emblemBackgroundPath"]) if character.get("emblemBackgroundPath") else ""
            ),
            equipped=equipped,
            inventory=grouped([i for i in mine if not i.equipped and i.location == "character"], by_slot=True),
            postmaster=sorted((i for i in mine if i.location == "postmaster"), key=order),
        ))

    page = InventoryPage(
        account=account,
        characters=character_views,
        vault=grouped([i for i in shown if i.location == "vault"], by_slot=False),
        items=items,
        query=query,
        sort=sort if sort in filters.SORTS else "power",
        shown=len(shown),
        total=len(items),
        minted_at=_minted(profile),
        stale_reason=stale_reason,
        changed_items=sorted((i for i in items.values() if i.changed_in_latest), key=lambda i: i.name)[:50],
    )
    unknown = sum(1 for i in items.values() if not i.known)
    if unknown:
        page.notices.append(
            f"{unknown} item{'s' if unknown != 1 else ''} not in DVR's manifest yet: Bungie has published new "
            "items. DVR is checking for the new manifest; names appear once it is synced."
        )
        _check_manifest_soon()
    if query.ignored:
        page.notices.append("Ignored in the filter: " + ", ".join(query.ignored[:5]))
    state = ManifestState.objects.current()
    page.manifest_version = state.active.version if state and state.active else ""
    return page


def _name(definition: dict[str, Any] | None, default: str) -> str:
    return ((definition or {}).get("displayProperties") or {}).get("name") or default


def _changed_in_latest(summaries: dict[int, dict[str, Any]], seq: int | None) -> set[int]:
    """Which of these items the newest live version added or changed: those whose
    definition first appeared in it (the summary carries its version; no query)."""
    if not seq:
        return set()
    return {item_hash for item_hash, summary in summaries.items() if summary.get(VALID_FROM) == seq}


def _check_manifest_soon() -> None:
    """Queue a manifest check, at most once per few minutes whatever the number of pages."""
    from manifest.tasks import enqueue_refresh

    try:
        if not cache.add("manifest:unknown-item-check", 1, timeout=UNKNOWN_CHECK_SECONDS):
            return
    except Exception:
        return
    try:
        enqueue_refresh(requested_by="unknown item on a page")
    except Exception as exc:  # the page must render even if the broker is down
        logger.warning("could not queue a manifest check: %s", type(exc).__name__)


def inventory_page(*, account: BungieAccount, query_text: str = "", sort: str = "power") -> InventoryPage:
    """The logged-in player's inventory page (see the module docstring)."""
    try:  # the saved profile's minted time and the alerts in one cache round trip
        cached, cache_ok = cache.get_many([_minted_key(account), ALERTS_KEY]), True
    except Exception:
        cached, cache_ok = {}, False
    minted = cached.get(_minted_key(account))
    # No minted time saved (a snapshot from before DVR kept one, or none): the whole one.
    saved = {"minted": minted} if minted else snapshot_load(account) if cache_ok else None
    profile, stale_reason = profile_fetch(account=account, saved=saved)
    page = build_page(account=account, profile=profile, query_text=query_text, sort=sort, stale_reason=stale_reason)
    page.alerts = global_alerts(cached.get(ALERTS_KEY))
    return page


def item_detail(*, account: BungieAccount, item_id: str) -> tuple[ItemView, InventoryPage] | None:
    """One item with its stats and perks, and the page it sits in (for its actions)."""
    saved = snapshot_load(account)
    profile, stale_reason = (saved["data"], "") if saved else profile_fetch(account=account, saved=None)
    page = build_page(account=account, profile=profile, stale_reason=stale_reason)
    item = page.items.get(item_id)
    if item is None:
        return None
    seq = active_seq()
    definition = lookup({ITEMS: [item.item_hash]}, seq=seq)[ITEMS].get(item.item_hash) or {}
    stats = ((definition.get("stats") or {}).get("stats") or {}).values()
    sockets = ((profile.get("itemComponents") or {}).get("sockets") or {}).get("data") or {}
    plugs = [s["plugHash"] for s in (sockets.get(item_id) or {}).get("sockets") or [] if s.get("plugHash")]
    found = lookup({STATS: [s.get("statHash") for s in stats if isinstance(s, dict)], ITEMS: plugs}, seq=seq)
    item.stats = [
        (_name(found[STATS].get(s["statHash"]), f"Stat {s['statHash']}"), int(s.get("value") or 0))
        for s in stats
        if isinstance(s, dict) and s.get("value") and s.get("statHash") != POWER_STAT
        and _name(found[STATS].get(s["statHash"]), "")
    ]
    item.perks = []
    for plug in plugs:
        display = (found[ITEMS].get(plug) or {}).get("displayProperties") or {}
        item.perks.append((display.get("name") or "Unknown perk", bungie.client().url(display["icon"])
                           if display.get("icon") else ""))
    return item, page
