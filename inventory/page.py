"""The page model: what the vault page and an item's page show, built from a `Profile`.

One definitions lookup for the whole vault page (items, buckets, classes, races), and a
page that renders whatever the manifest is doing: an item hash the active manifest lacks
(Bungie published, DVR has not synced yet) is an "Unknown item" with a notice, and a
manifest check is queued in the background. An item's page builds that one item (and the
characters its action buttons name), never the whole page.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from django.core.cache import cache
from django.utils import timezone

from dvr.accounts.models import BungieAccount
from dvr.lib import bungie
from dvr.lib.cache import cache_or
from inventory import filters, rolls
from inventory.annotations import NO_NOTE, Note, annotations_for
from inventory.loadouts import loadout_names_by_item
from inventory.models import SavedSearch
from inventory.profile import (
    CRAFTED,
    LOCKED,
    MASTERWORK,
    POSTMASTER_BUCKET,
    VAULT_BUCKET,
    CharacterComponent,
    OwnedItem,
    Profile,
)
from inventory.search import LOADOUT_KEYWORDS, WISH_KEYWORDS
from inventory.wishlists import WishMatch, wishes_for
from manifest.history import removed_in, version_names
from manifest.lookup import VALID_FROM, Definitions, active_seq, lookup
from manifest.models import ManifestVersion

logger = logging.getLogger(__name__)

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
# DestinyDamageType (openapi.json): 3 is Thermal, which players call Solar.
DAMAGE = {1: "kinetic", 2: "arc", 3: "solar", 4: "void", 6: "stasis", 7: "strand"}
# DestinyItemType and TierType enums.
KINDS = {3: "weapon", 2: "armor", 24: "ghost"}
TIERS = {6: "exotic", 5: "legendary", 4: "rare", 3: "uncommon", 2: "common"}
# DestinyClass: 3 is Unknown, which on an item means "any class".
POWER_STAT = 1935470627
UNKNOWN_CHECK_SECONDS = 300
CHANGED_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Target:
    """A character an item's page offers to move the item to or equip it on."""

    character_id: str
    class_name: str
    can_move: bool
    can_equip: bool


@dataclass(slots=True)  # ~1,200 per page: slots make them quicker to build and read
class ItemView:
    """One item as the page shows it (also what the filter language reads)."""

    key: str  # the instance id, or "<owner or vault>-<hash>" for an uninstanced stack
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
    changed_in: str = ""  # the version its definition came in as it is (set when a filter asks)
    # The item component's ItemState bits, as DIM badges them on the tile.
    masterwork: bool = False
    crafted: bool = False
    locked: bool = False
    class_name: str = ""  # titan | hunter | warlock; "" when any class can use it
    # What perk:, stat: and basestat: filters read (`attach_rolls`; the item page's roll):
    # every plug in its visible sockets and their alternatives, stats by lower-case name.
    perks: list[rolls.Plug] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    base_stats: dict[str, int] = field(default_factory=dict)
    random_roll: bool = False  # a column offers more than one perk
    # The item page's buttons (`set_actions`); a tile needs none of them.
    can_pull: bool = False
    can_vault: bool = False
    targets: tuple[Target, ...] = ()

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


@dataclass(frozen=True, slots=True)
class ChangedItem:
    """An item the latest manifest changed, once however many copies the player has."""

    item_hash: int
    name: str
    count: int  # how many the player owns


@dataclass(frozen=True)
class FilterProblem:
    """A part of the filter DVR could not read, to mark inline: the text around it too."""

    before: str
    bad: str
    after: str
    message: str


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
    changed_items: list[ChangedItem] = field(default_factory=list)  # the first CHANGED_SHOWN, by name
    changed_distinct: int = 0  # how many distinct items changed (the list may be cut)
    first_manifest: bool = False  # the active version is the first live one: nothing to compare with
    filter_problems: list[FilterProblem] = field(default_factory=list)  # a filter that can't be read: where
    notes: dict[str, Note] = field(default_factory=dict)  # the player's tags and notes, by instance id
    saved_searches: list[SavedSearch] = field(default_factory=list)  # the chips above the vault

    @property
    def query_saved(self) -> bool:
        """Whether the filter shown is one of the player's saved searches (no star then)."""
        return any(s.query == self.query.text for s in self.saved_searches)

    @property
    def tag_choices(self) -> list[tuple[str, str, bool]]:
        """The bulk tag picker's options ("No tag" clears it)."""
        return NO_NOTE.choices

    @property
    def age_seconds(self) -> float | None:
        return None if self.minted_at is None else max(0.0, (timezone.now() - self.minted_at).total_seconds())


@dataclass
class ItemDetail:
    """An item's page: the item with its stats, perks and buttons."""

    item: ItemView
    owner_name: str  # the class of the character holding it; "" in the vault
    manifest_version: str  # "" unless the item changed in it (the page links to the change)
    removed_in: str = ""  # an unknown item Bungie removed: the version that removed it ("" if new)
    roll: rolls.Roll | None = None
    compare_query: str = ""  # the filter compare uses to put this item beside others like it
    note: Note = NO_NOTE  # the player's tag and notes on it
    wishes: list[WishMatch] = field(default_factory=list)  # the wish-list rolls it matches


# --- one item --------------------------------------------------------------------------------------
def item_view(
    owned: OwnedItem, *, definition: dict[str, Any] | None, profile: Profile, client: bungie.BungieClient
) -> ItemView:
    """``owned`` as a tile shows it (``definition``: its summary, None when unknown)."""
    item = ItemView(
        key=owned.key, instance_id=owned.instance_id, item_hash=owned.item_hash, quantity=owned.quantity,
        bucket_hash=owned.bucket_hash, location=owned.location, owner=owned.owner, equipped=owned.equipped,
    )
    state = owned.state
    if state:
        item.locked = bool(state & LOCKED)
        item.masterwork = bool(state & MASTERWORK)
        item.crafted = bool(state & CRAFTED)
    if definition is not None:
        display: dict[str, Any] = definition.get("displayProperties") or {}
        inventory: dict[str, Any] = definition.get("inventory") or {}
        item.known = True
        item.name = display.get("name") or "Unnamed item"
        item.icon = _icon_url(client, display["icon"]) if isinstance(display.get("icon"), str) else ""
        item.tier = TIERS.get(inventory.get("tierType", 0), (inventory.get("tierTypeName") or "").lower())
        item.tier_name = inventory.get("tierTypeName") or item.tier.title()
        item.type_name = definition.get("itemTypeDisplayName") or ""
        item.kind = KINDS.get(definition.get("itemType", 0), "")
        item.slot = SLOTS.get(inventory.get("bucketTypeHash") or item.bucket_hash, "")
        item.damage = DAMAGE.get(definition.get("defaultDamageType") or 0, "")
        class_type = definition.get("classType")
        item.class_name = rolls.CLASS_TYPES.get(class_type, "") if isinstance(class_type, int) else ""
    elif item.bucket_hash in SLOTS:
        item.slot = SLOTS[item.bucket_hash]
    instance = profile.instances.get(owned.instance_id) if owned.instance_id else None
    if instance:
        item.damage = DAMAGE.get(instance.get("damageType") or 0, item.damage)
        power = (instance.get("primaryStat") or {}).get("value")
        if isinstance(power, int):
            item.power = power
    return item


def item_views(*, profile: Profile, owned: Iterable[OwnedItem]) -> list[ItemView]:
    """Tiles for ``owned`` alone (one lookup of their summaries), e.g. to filter them."""
    owned = list(owned)
    summaries = lookup({ITEMS: _hashes(o.item_hash for o in owned)}, view="summary")[ITEMS]
    client = bungie.client()
    return [item_view(o, definition=summaries.get(o.item_hash), profile=profile, client=client) for o in owned]


ANY_CLASS = 3  # DestinyClass "Unknown": every class may use it


# Filters that read an item's roll: their items need it built first (`attach_rolls`).
ROLL_KEYWORDS = ("perk", "perkname", "exactperk", "stat", "basestat", "is:randomroll", "not:randomroll",
                 *WISH_KEYWORDS)


def _read_roll(item: ItemView, roll: rolls.Roll) -> None:
    item.perks = [plug for c in roll.categories for col in c.columns for plug in col.plugs if not plug.empty]
    item.stats = {line.name.lower(): line.value for line in roll.stats}
    item.base_stats = {line.name.lower(): line.base for line in roll.stats}
    item.random_roll = any(len(col.plugs) > 1 for c in roll.categories for col in c.columns)


def attach_rolls(
    items: Iterable[ItemView], *, profile: Profile, seq: int | None, earlier: BuiltItems | None = None
) -> dict[str, int]:
    """Give every instanced item its perks and stats, for a filter that reads them: one
    lookup of full definitions (the items and every plug they hold or offer). Only done
    when the filter asks (a plain page needs none of it). An item whose roll is as it was
    in ``earlier`` (the same account's tiles moments ago, on this manifest) takes its
    perks and stats from there: a player typing a perk filter after a reload rebuilds only
    what changed. Returns each instance's roll print (`_roll_print`)."""
    by_id = {i.instance_id: i for i in items if i.instance_id}
    prints = {key: _roll_print(profile, key) for key in by_id}
    owned = []
    for key, item in by_id.items():
        before = earlier.items.get(key) if earlier is not None and earlier.roll_prints.get(key) == prints[key] else None
        if before is not None and before.item_hash == item.item_hash:
            item.perks, item.stats, item.base_stats = before.perks, before.stats, before.base_stats
            item.random_roll = before.random_roll
        elif (o := profile.find(key)) is not None:
            owned.append(o)
    if owned:
        found = rolls.roll_definitions(profile=profile, owned=owned, seq=seq)
        client = bungie.client()
        for o in owned:
            roll = rolls.roll_build(profile=profile, owned=o, found=found, client=client)
            _read_roll(by_id[o.instance_id or ""], roll)
    return prints


def _roll_print(profile: Profile, instance_id: str) -> int:
    """What an instance's roll is built from (its item, state, sockets, plugs, stats and
    energy in this profile), as one number: equal prints, equal rolls."""
    owned = profile.find(instance_id)
    instance = profile.instances.get(instance_id) or {}
    return hash(orjson.dumps([
        owned.item_hash if owned else 0, owned.state if owned else 0, profile.sockets.get(instance_id),
        profile.reusable_plugs.get(instance_id), profile.stats.get(instance_id), instance.get("energy"),
    ]))


def set_actions(
    item: ItemView, *, characters: Sequence[tuple[str, str, int | None]], item_class: int | None = None
) -> None:
    """The item page's buttons for ``item``; ``characters`` is (id, class name, class
    type) of each, ``item_class`` the definition's ``classType``.

    A postmaster item can only be pulled. Otherwise: to the vault unless there already; to
    each other character (to every one from the vault); equip on each character whose
    class can use it (a class item on its own class only), when it is a weapon, armor or a
    ghost, and not where it is already equipped. An equipped item moves too: DVR equips
    another item of that slot in its place first, as DIM does."""
    item.can_pull = item.location == "postmaster"
    if item.can_pull:
        return
    item.can_vault = item.location != "vault"

    def may_equip(cid: str, class_type: int | None) -> bool:
        fits = item_class in (None, ANY_CLASS) or class_type is None or item_class == class_type
        return bool(item.kind) and fits and not (item.equipped and item.owner == cid)

    targets = (
        Target(character_id=cid, class_name=name, can_move=item.location == "vault" or item.owner != cid,
               can_equip=may_equip(cid, class_type))
        for cid, name, class_type in characters
    )
    item.targets = tuple(t for t in targets if t.can_move or t.can_equip)


def item_page(*, profile: Profile, key: str) -> ItemDetail | None:
    """The page of the item ``key`` (`ItemView.key`), None when the player has no such item.

    One lookup of full definitions for the item and its roll (the item, its plugs, stats
    and socket categories: `rolls.roll_wanted`) and the characters' classes; a second only
    when the definition names a category or stat the profile did not (`rolls.roll_missing`).
    The item's summary (in each process's memory) says whether the latest manifest changed it."""
    owned = profile.find(key) or next((o for o in reversed(profile.items) if o.key == key), None)
    if owned is None:
        return None
    seq = active_seq()
    classes = _hashes(c.get("classHash") for c in profile.characters.values())
    found = rolls.roll_definitions(profile=profile, owned=[owned], seq=seq, also={CLASSES: classes})
    client = bungie.client()
    item = item_view(owned, definition=found[ITEMS].get(owned.item_hash), profile=profile, client=client)
    summary = lookup({ITEMS: [owned.item_hash]}, seq=seq, view="summary")[ITEMS]
    item.changed_in_latest = item.known and item.item_hash in (_changed_in_latest(summary, seq) or ())
    roll = rolls.roll_build(profile=profile, owned=owned, found=found, client=client)
    _read_roll(item, roll)
    names = {cid: _class_name(c, found[CLASSES]) for cid, c in profile.characters.items()}
    item_class = (found[ITEMS].get(owned.item_hash) or {}).get("classType")
    set_actions(
        item,
        characters=[(cid, names[cid], c.get("classType")) for cid, c in profile.characters.items()],
        item_class=item_class if isinstance(item_class, int) else None,
    )
    removed = removed_in(ITEMS, [item.item_hash]) if not item.known else {}
    if not item.known and item.item_hash not in removed:
        _check_manifest_soon()
    return ItemDetail(
        item=item,
        owner_name=names.get(item.owner or "", ""),
        manifest_version=manifest_version(seq) if item.changed_in_latest else "",
        removed_in=removed.get(item.item_hash, "") or ("an earlier version" if item.item_hash in removed else ""),
        roll=roll,
        compare_query=rolls.compare_query(kind=item.kind, type_name=item.type_name, slot=item.slot,
                                          class_type=item_class if isinstance(item_class, int) else 3),
    )


# --- the vault page ----------------------------------------------------------------------------------
@dataclass
class BuiltItems:
    """A profile's tiles and the definitions they came from: what every view of the same
    profile shares, whatever its filter or sort (`built_items`)."""

    found: dict[str, Definitions]  # the summaries looked up: items, buckets, classes, races
    items: dict[str, ItemView]
    characters: dict[str, CharacterComponent]
    minted: datetime | None
    seq: int | None
    changed: set[int] | None  # `_changed_in_latest`
    rolls: bool = False  # `attach_rolls` done on every item
    roll_prints: dict[str, int] = field(default_factory=dict)  # instance id → `_roll_print`
    versions: bool = False  # every item's `changed_in` set


class _Recent:
    """The last few profiles' `BuiltItems` in this process, by (account, minted time,
    manifest): a filter or sort typed on the page re-reads the profile Bungie gave seconds
    ago, and rebuilding 1,200 tiles from it (and every roll, for a perk filter) was most of
    such a view. A moved item makes a new profile (a new minted time), a new manifest a new
    key, so an entry is never stale; only ``size`` entries are kept (a few MB each with
    rolls)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[int, datetime, int | None], BuiltItems] = OrderedDict()
        self._lock = threading.Lock()  # gunicorn's threads share it

    def get(self, key: tuple[int, datetime, int | None]) -> BuiltItems | None:
        with self._lock:
            built = self._entries.get(key)
            if built is not None:
                self._entries.move_to_end(key)
            return built

    def put(self, key: tuple[int, datetime, int | None], built: BuiltItems) -> None:
        with self._lock:
            self._entries[key] = built
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def latest_with_rolls(self, account_pk: int, seq: int | None) -> BuiltItems | None:
        """The newest entry of this account on this manifest whose rolls are built."""
        with self._lock:
            for (pk, _, entry_seq), built in reversed(self._entries.items()):
                if pk == account_pk and entry_seq == seq and built.rolls:
                    return built
        return None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_recent = _Recent(size=8)  # ~1 MB each, a few MB more with rolls: a few active players per worker


def recent_items(*, account: BungieAccount, minted: datetime, seq: int | None) -> BuiltItems | None:
    """This process's tiles of the account's profile minted at ``minted``, if it built them
    on this manifest moments ago (`built_items`)."""
    return _recent.get((account.pk, minted, seq))


def built_items(*, account: BungieAccount, profile: Profile, seq: int | None) -> BuiltItems:
    """The tiles of ``profile`` (one lookup of summaries), or this process's copy of them
    when it built the same profile of the same account on the same manifest moments ago."""
    key = (account.pk, profile.minted, seq) if profile.minted is not None else None
    if key is not None and (built := _recent.get(key)) is not None:
        return built
    characters = profile.characters
    found = lookup(
        {
            ITEMS: _hashes(o.item_hash for o in profile.items),
            BUCKETS: _hashes(o.bucket_hash for o in profile.items) | set(SLOTS) | {VAULT_BUCKET},
            CLASSES: _hashes(c.get("classHash") for c in characters.values()),
            RACES: _hashes(c.get("raceHash") for c in characters.values()),
        },
        seq=seq,
        view="summary",  # what a tile shows: ~0.3 KB a definition instead of ~5.7 KB
    )
    definitions = found[ITEMS]
    changed = _changed_in_latest(definitions, seq)
    latest = changed or set()
    client = bungie.client()
    items: dict[str, ItemView] = {}
    for owned in profile.items:
        item = item_view(owned, definition=definitions.get(owned.item_hash), profile=profile, client=client)
        item.changed_in_latest = item.known and item.item_hash in latest
        items[item.key] = item
    built = BuiltItems(found=found, items=items, characters=characters, minted=profile.minted, seq=seq,
                       changed=changed)
    if key is not None:
        _recent.put(key, built)
    return built


def build_page(
    *, account: BungieAccount, built: BuiltItems, query: filters.ParsedQuery, sort: str = "power",
    stale_reason: str = "", profile: Profile | None = None,
) -> InventoryPage:
    """Everything the inventory page shows, from a profile's tiles (`built_items`).
    ``profile`` is needed only when the filter reads rolls this process has not built
    yet (`needs_profile`)."""
    seq, characters = built.seq, built.characters
    found, items = built.found, built.items
    client = bungie.client()
    definitions, buckets = found[ITEMS], found[BUCKETS]
    first_manifest = built.changed is None

    order = filters.sort_key(sort if sort in filters.SORTS else "power")
    latest = manifest_version(seq)
    if query.uses(*ROLL_KEYWORDS) and not built.rolls:
        if profile is None:
            raise ValueError("a filter that reads rolls needs the profile (see needs_profile)")
        built.roll_prints = attach_rolls(items.values(), profile=profile, seq=seq,
                                         earlier=_recent.latest_with_rolls(account.pk, seq))
        built.rolls = True
    if query.uses("changed") and not built.versions:  # changed:<version>: the version each definition came in
        names = version_names()
        for item in items.values():
            seq_from = (definitions.get(item.item_hash) or {}).get(VALID_FROM)
            item.changed_in = names.get(seq_from, "") if isinstance(seq_from, int) else ""
        built.versions = True
    notes = annotations_for(account=account)  # one query: the tiles' badges and tag:/notes: read it
    # The player's wish-list rolls for these items: one query, only when the filter asks.
    wishes = wishes_for(account=account, item_hashes={i.item_hash for i in items.values()}) \
        if query.uses(*WISH_KEYWORDS) else {}
    # The names of the player's loadouts holding each item: one query, only when the filter asks.
    loadouts = loadout_names_by_item(account=account) if query.uses(*LOADOUT_KEYWORDS) else {}
    shown = query.filter(items.values(), latest_version=latest, notes=notes, wishes=wishes, loadouts=loadouts)
    shown_keys = {i.key for i in shown}

    def grouped(selection: list[ItemView]) -> list[tuple[str, list[ItemView]]]:
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
            class_name=_class_name(character, found[CLASSES]),
            race_name=display_name(found[RACES].get(character.get("raceHash") or 0), ""),
            power=int(character.get("light") or 0),
            emblem=client.asset_url(character.get("emblemPath")),
            emblem_background=(
                client.asset_url(character.get("emblemBackgroundPath"))
            ),
            equipped=equipped,
            inventory=grouped([i for i in mine if not i.equipped and i.location == "character"]),
            postmaster=sorted((i for i in mine if i.location == "postmaster"), key=order),
        ))

    page = InventoryPage(
        account=account,
        characters=character_views,
        vault=grouped([i for i in shown if i.location == "vault"]),
        items=items,
        query=query,
        sort=sort if sort in filters.SORTS else "power",
        shown=len(shown),
        total=len(items),
        minted_at=built.minted,
        stale_reason=stale_reason,
        first_manifest=first_manifest,
        notes=notes,
    )
    page.changed_items = _changed_items(items.values())
    page.changed_distinct = len({i.item_hash for i in items.values() if i.changed_in_latest})
    unknown = [i for i in items.values() if not i.known]
    if unknown:
        page.notices.extend(unknown_notices(unknown))
    if query.ignored:
        page.notices.append("Ignored in the filter: " + ", ".join(query.ignored[:5]))
    page.filter_problems = [FilterProblem(*p.marked(query.text), p.message)
                            for p in query.problems if p.kind in ("syntax", "internal")]
    page.manifest_version = latest
    return page


def page_of(*, account: BungieAccount, profile: Profile, query_text: str = "") -> InventoryPage:
    """The vault page of ``profile`` filtered by ``query_text`` (what an action over the
    page's matches reads: tagging, the export)."""
    built = built_items(account=account, profile=profile, seq=active_seq())
    return build_page(account=account, built=built, query=filters.parse_query(query_text), profile=profile)


def needs_profile(built: BuiltItems, query: filters.ParsedQuery) -> bool:
    """Whether `build_page` needs the profile itself to show ``built`` filtered by
    ``query``: a roll filter on tiles whose rolls this process has not built."""
    return not built.rolls and query.uses(*ROLL_KEYWORDS)


# --- small helpers ------------------------------------------------------------------------------------
def _hashes(values: Iterable[int | None]) -> set[int]:
    """The hashes worth looking up: a missing one (None or 0) would miss the cache on
    every view and cost a query."""
    return {value for value in values if value}


@lru_cache(maxsize=16_384)
def _icon_url(client: bungie.BungieClient, path: str) -> str:
    """``client.asset_url(path)``, remembered: a page has ~1,200 icons, the same from one
    view to the next, and checking each path (``urlsplit``) was ~3 ms of every view. Keyed
    by the client, which is one per BUNGIE_ROOT_URL. A path off Bungie's host gives ""."""
    return client.asset_url(path)


def _bucket_name(bucket_hash: int, buckets: Definitions) -> str:
    display = (buckets.get(bucket_hash) or {}).get("displayProperties") or {}
    return display.get("name") or ("Postmaster" if bucket_hash == POSTMASTER_BUCKET else "Other")


def display_name(definition: dict[str, Any] | None, default: str) -> str:
    """A definition's ``displayProperties.name``, or ``default`` when it has none (or not a string)."""
    name = ((definition or {}).get("displayProperties") or {}).get("name")
    return name if isinstance(name, str) and name else default


def _class_name(character: CharacterComponent, classes: Definitions) -> str:
    return display_name(classes.get(character.get("classHash") or 0), "Guardian")


def _changed_in_latest(summaries: Definitions, seq: int | None) -> set[int] | None:
    """Which of these items the newest live version added or changed: those whose
    definition first appeared in it (the summary carries its version). None when that
    version is the first DVR put live: every definition "first appeared" in it, and
    calling the whole vault changed tells the player nothing. That takes one indexed
    query, and only when some item looks changed."""
    if not seq:
        return set()
    changed = {item_hash for item_hash, summary in summaries.items() if summary.get(VALID_FROM) == seq}
    if changed and not ManifestVersion.objects.filter(seq__lt=seq, live_at__isnull=False).exists():
        return None
    return changed


def _changed_items(items: Iterable[ItemView]) -> list[ChangedItem]:
    """The changed items once each, with how many of each the player owns (stacks
    count their quantity), by name: "Drang (14 of yours)", not Drang fourteen times."""
    counts: dict[int, int] = defaultdict(int)
    names: dict[int, str] = {}
    for item in items:
        if item.changed_in_latest:
            counts[item.item_hash] += item.quantity if not item.instance_id else 1
            names[item.item_hash] = item.name
    ordered = sorted(counts, key=lambda h: (names[h].casefold(), h))[:CHANGED_SHOWN]
    return [ChangedItem(item_hash=h, name=names[h], count=counts[h]) for h in ordered]


def unknown_notices(unknown: Sequence[ItemView]) -> list[str]:
    """What to say of items the live manifest lacks: new ones (Bungie published, DVR has
    not synced yet: a manifest check is queued) apart from ones Bungie removed."""
    removed = removed_in(ITEMS, {i.item_hash for i in unknown})
    notices = []
    new = sum(1 for i in unknown if i.item_hash not in removed)
    if new:
        notices.append(
            f"{new} item{'s' if new != 1 else ''} not in DVR's manifest yet: Bungie has published new "
            "items. DVR is checking for the new manifest; names appear once it is synced."
        )
        _check_manifest_soon()
    gone = sum(1 for i in unknown if i.item_hash in removed)
    if gone:
        versions = sorted({removed[i.item_hash] for i in unknown if i.item_hash in removed} - {""})
        notices.append(
            f"{gone} item{'s' if gone != 1 else ''} no longer in the manifest: Bungie removed "
            f"{'its definition' if gone == 1 else 'their definitions'}"
            f"{' in ' + ', '.join(versions) if versions else ''}, so DVR can't name "
            f"{'it' if gone == 1 else 'them'}."
        )
    return notices


# --- what the page asks of the manifest app ------------------------------------------------------------
def manifest_version(seq: int | None) -> str:
    """The version string of the sequence number ``seq`` (the one the page's definitions
    were read at, so the page never names a newer version than its tiles show), "" before
    the first sync."""
    if seq is None:
        return ""
    return ManifestVersion.objects.filter(seq=seq).values_list("version", flat=True).first() or ""


def _check_manifest_soon() -> None:
    """Queue a manifest check, at most once per few minutes whatever the number of pages."""
    from manifest.tasks import enqueue_refresh

    if not cache_or(lambda: cache.add("manifest:unknown-item-check", 1, timeout=UNKNOWN_CHECK_SECONDS), False,
                    what="manifest check pacing"):
        return
    try:
        enqueue_refresh(requested_by="unknown item on a page")
    except Exception as exc:  # the page must render even if the broker is down
        logger.warning("could not queue a manifest check: %s", type(exc).__name__)
