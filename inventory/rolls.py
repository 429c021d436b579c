"""An item's roll as a Destiny player reads it: perk columns, stat bars and markers.

Built from the `Profile` (components 300, 304, 305, 310 and the item's ``state`` bits) and
definitions looked up once (`roll_wanted` says which, `roll_build` reads them). Everything
here is untrusted input: a missing component, a socket index out of range, a plug hash the
manifest lacks or a stat that is not a number gives a smaller roll, never an exception.

* Perk columns follow the definition's ``sockets.socketCategories`` in Bungie's order, one
  column per visible socket (``isVisible`` in 305), the inserted plug first and highlighted,
  then what 310 says the socket can also hold.
* Stats come from 304 when present (DIM shows those), split into the base and the bonus of
  the inserted plugs that are not intrinsic (barrels, magazines, masterwork, mods); without
  304 they are computed as DIM does: the definition's stats plus the inserted plugs'
  ``investmentStats``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dvr.lib import bungie
from inventory.profile import OwnedItem, Profile
from inventory.search import WEAPON_TYPES
from manifest.lookup import Definitions, lookup

ITEMS = "DestinyInventoryItemDefinition"
STATS = "DestinyStatDefinition"
CATEGORIES = "DestinySocketCategoryDefinition"

# ItemState bits (openapi.json: Destiny.ItemState).
LOCKED, MASTERWORK, CRAFTED, DEEPSIGHT = 1, 4, 8, 16
POWER_STAT = 1935470627
ITEM_TYPE_WEAPON, ITEM_TYPE_ARMOR = 3, 2

# Bungie's socket category hashes (stable across manifests, as DIM knows them): asked for with
# the item so that one lookup is enough; a category the definition names beyond these is
# looked up after.
KNOWN_CATEGORIES = (
    3956125808, 4241085061, 2685412949, 2048875504, 3154740035, 590099826, 1926152773, 760375309,
    3886482628, 3410521964,
)
INTRINSIC_CATEGORY = 3956125808

# Weapon stats in the order DIM shows them; the last ones are numbers, not bars.
IMPACT, RANGE, STABILITY, HANDLING, RELOAD = 4043523819, 1240592695, 155624089, 943549884, 4188031367
AIM_ASSIST, ZOOM, RECOIL, AMMO_GENERATION = 1345609583, 3555269338, 2715839340, 1931675084
BLAST_RADIUS, VELOCITY = 3614673599, 2523465841
RPM, MAGAZINE, CHARGE_TIME, DRAW_TIME = 4284893193, 3871231066, 2961396640, 447667954
WEAPON_ORDER = (
    IMPACT, BLAST_RADIUS, VELOCITY, RANGE, STABILITY, HANDLING, RELOAD, AIM_ASSIST, ZOOM, AMMO_GENERATION,
    RECOIL, RPM, CHARGE_TIME, DRAW_TIME, MAGAZINE,
)
NUMBERS = frozenset({RPM, MAGAZINE, CHARGE_TIME, DRAW_TIME})
# Armour: Mobility, Resilience, Recovery, Discipline, Intellect, Strength (2026: Weapons,
# Health, Class, Grenade, Super, Melee) — the same hashes as ever.
ARMOR_ORDER = (2996146975, 392767087, 1943323491, 1735777505, 144602215, 4244567218)
BAR_MAX = 100
ARMOR_BAR_MAX = 42  # an armour stat's usual ceiling (the definitions' displayMaximum)


@dataclass(frozen=True, slots=True)
class Plug:
    plug_hash: int
    name: str
    description: str
    icon: str
    inserted: bool
    empty: bool  # an empty socket or a default shader/ornament: shown dimmed as "nothing in it"


@dataclass(frozen=True, slots=True)
class Column:
    """One socket: what is in it, then what it can also hold (310)."""

    socket_index: int
    plugs: tuple[Plug, ...]

    @property
    def inserted(self) -> Plug | None:
        return next((p for p in self.plugs if p.inserted), None)


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    category_hash: int
    columns: tuple[Column, ...]


@dataclass(slots=True)
class StatLine:
    stat_hash: int
    name: str
    value: int
    base: int
    bonus: int  # from the inserted plugs that are not intrinsic; may be negative
    bar: bool  # False: shown as a number (rounds per minute, magazine...)
    maximum: int = BAR_MAX
    best: bool = False  # compare marks the best value of a row

    @property
    def base_percent(self) -> int:
        return _percent(min(self.base, self.value), self.maximum)

    @property
    def bonus_percent(self) -> int:
        return _percent(max(0, self.value - self.base), self.maximum)


@dataclass(slots=True)
class Roll:
    categories: list[Category] = field(default_factory=list)
    stats: list[StatLine] = field(default_factory=list)
    total: int | None = None  # armour: the sum of its six stats
    masterwork: bool = False
    crafted: bool = False
    locked: bool = False
    deepsight: bool = False
    energy_used: int | None = None
    energy_capacity: int | None = None

    @property
    def energy_percent(self) -> int:
        return _percent(self.energy_used or 0, self.energy_capacity or 0)


# --- what to look up ----------------------------------------------------------------------------
def roll_wanted(*, profile: Profile, owned: Iterable[OwnedItem]) -> dict[str, set[int]]:
    """The definitions the rolls of ``owned`` need that the profile alone names: the items,
    their inserted and offered plugs, their stats and Bungie's usual socket categories."""
    items: set[int] = set()
    stats: set[int] = set(WEAPON_ORDER) | set(ARMOR_ORDER)
    for o in owned:
        items.add(o.item_hash)
        if not o.instance_id:
            continue
        items.update(_ints(s.get("plugHash") for s in _sockets(profile, o.instance_id)))
        for plugs in _reusable(profile, o.instance_id).values():
            items.update(_ints(p.get("plugItemHash") for p in plugs if isinstance(p, dict)))
        stats.update(_ints(s.get("statHash") for s in _stat_values(profile, o.instance_id).values()))
    return {ITEMS: items - {0}, STATS: stats, CATEGORIES: set(KNOWN_CATEGORIES)}


def roll_missing(*, found: Mapping[str, Definitions], asked: Mapping[str, set[int]],
                 owned: Iterable[OwnedItem]) -> dict[str, set[int]]:
    """What the item definitions name that was not asked for (a category DVR does not know,
    a stat only the definition has): empty almost always, then no second lookup."""
    categories: set[int] = set()
    stats: set[int] = set()
    for o in owned:
        definition = found.get(ITEMS, {}).get(o.item_hash) or {}
        for category in _socket_categories(definition):
            categories.update(_ints([category.get("socketCategoryHash")]))
        stats.update(_ints(s.get("statHash") for s in _definition_stats(definition).values()))
    missing = {CATEGORIES: categories - asked.get(CATEGORIES, set()), STATS: stats - asked.get(STATS, set())}
    return {k: v for k, v in missing.items() if v}


def roll_definitions(
    *, profile: Profile, owned: list[OwnedItem], seq: int | None, also: Mapping[str, set[int]] | None = None
) -> dict[str, Definitions]:
    """Everything the rolls of ``owned`` need (and ``also``), full views: one lookup, and a
    second only for what the item definitions name beyond it (`roll_missing`)."""
    wanted = {**roll_wanted(profile=profile, owned=owned), **(also or {})}
    found = lookup(wanted, seq=seq)
    if missing := roll_missing(found=found, asked=wanted, owned=owned):
        for entity, more in lookup(missing, seq=seq).items():
            found.setdefault(entity, {}).update(more)
    return found


# --- the roll ------------------------------------------------------------------------------------
def roll_build(
    *, profile: Profile, owned: OwnedItem, found: Mapping[str, Definitions], client: bungie.BungieClient
) -> Roll:
    """The roll of ``owned`` from the profile and the definitions ``found`` (full views)."""
    items = found.get(ITEMS, {})
    definition = items.get(owned.item_hash) or {}
    instance_id = owned.instance_id or ""
    sockets = _sockets(profile, instance_id) if instance_id else []
    state = owned.raw.get("state")
    state = state if isinstance(state, int) else 0
    roll = Roll(locked=bool(state & LOCKED), crafted=bool(state & CRAFTED), deepsight=bool(state & DEEPSIGHT),
                masterwork=bool(state & MASTERWORK))
    roll.categories = _categories(
        definition, sockets, _reusable(profile, instance_id) if instance_id else {}, items, found.get(CATEGORIES, {}),
        client,
    )
    inserted = [(_int(s.get("plugHash")), s) for s in sockets]
    if any(_is_masterwork_plug(items.get(h) or {}) for h, _ in inserted):
        roll.masterwork = True
    roll.stats = _stats(definition, _stat_values(profile, instance_id) if instance_id else {},
                        _plug_bonus(definition, inserted, items), found.get(STATS, {}))
    if definition.get("itemType") == ITEM_TYPE_ARMOR and roll.stats:
        roll.total = sum(s.value for s in roll.stats)
    energy = (profile.instances.get(instance_id) or {}).get("energy") if instance_id else None
    if isinstance(energy, dict):
        capacity, used = energy.get("energyCapacity"), energy.get("energyUsed")
        if isinstance(capacity, int) and isinstance(used, int):
            roll.energy_capacity, roll.energy_used = capacity, used
    return roll


def _categories(
    definition: dict[str, Any], sockets: list[dict[str, Any]], reusable: dict[str, Any], items: Definitions,
    categories: Definitions, client: bungie.BungieClient,
) -> list[Category]:
    out = []
    for category in _socket_categories(definition):
        category_hash = _int(category.get("socketCategoryHash"))
        indexes = category.get("socketIndexes")
        columns = []
        for index in indexes if isinstance(indexes, list) else []:
            if not isinstance(index, int) or not 0 <= index < len(sockets):
                continue
            socket = sockets[index]
            if not socket.get("isVisible", True):
                continue
            inserted = _int(socket.get("plugHash"))
            offered = reusable.get(str(index))
            others = _ints(p.get("plugItemHash") for p in offered if isinstance(p, dict)) if isinstance(
                offered, list) else []
            plugs = [_plug(inserted, items, client, inserted=True)] if inserted else []
            plugs += [_plug(h, items, client, inserted=False) for h in dict.fromkeys(others) if h != inserted]
            if not plugs:  # nothing in it and nothing offered: an empty socket
                plugs = [Plug(0, "Empty socket", "", "", inserted=True, empty=True)]
            columns.append(Column(socket_index=index, plugs=tuple(plugs)))
        if columns:
            name = _display(categories.get(category_hash)).get("name") or "Perks"
            out.append(Category(name=str(name).title(), category_hash=category_hash, columns=tuple(columns)))
    return out


def _plug(plug_hash: int, items: Definitions, client: bungie.BungieClient, *, inserted: bool) -> Plug:
    definition = items.get(plug_hash)
    if definition is None:
        return Plug(plug_hash, "Unknown perk", "Not in DVR's manifest yet.", "", inserted=inserted, empty=False)
    display = _display(definition)
    name = str(display.get("name") or "Unnamed perk")
    identifier = str((definition.get("plug") or {}).get("plugCategoryIdentifier") or "") if isinstance(
        definition.get("plug"), dict) else ""
    empty = name.startswith(("Empty ", "Default ")) or identifier.endswith(("empty", ".empty"))
    icon = display.get("icon")
    return Plug(plug_hash, name, str(display.get("description") or ""),
                client.asset_url(icon), inserted=inserted, empty=empty)


def _plug_bonus(definition: dict[str, Any], inserted: list[tuple[int, dict[str, Any]]],
                items: Definitions) -> dict[int, int]:
    """Each stat's bonus from the inserted plugs that are not intrinsic (the frame, armour's
    stat rolls: those are the item's base)."""
    intrinsic: set[int] = set()
    for category in _socket_categories(definition):
        if _int(category.get("socketCategoryHash")) == INTRINSIC_CATEGORY and isinstance(
                category.get("socketIndexes"), list):
            intrinsic.update(i for i in category["socketIndexes"] if isinstance(i, int))
    bonus: dict[int, int] = {}
    for index, (plug_hash, socket) in enumerate(inserted):
        plug = items.get(plug_hash) or {}
        identifier = (plug.get("plug") or {}).get("plugCategoryIdentifier") if isinstance(
            plug.get("plug"), dict) else None
        if index in intrinsic or identifier == "intrinsics" or socket.get("isEnabled") is False:
            continue
        for stat_hash, value in _investments(plug):
            bonus[stat_hash] = bonus.get(stat_hash, 0) + value
    return bonus


def _stats(definition: dict[str, Any], instance: dict[str, Any], bonus: dict[int, int],
           names: Definitions) -> list[StatLine]:
    armor = definition.get("itemType") == ITEM_TYPE_ARMOR
    values: dict[int, int] = {}
    if instance:
        for stat in instance.values():
            if isinstance(stat, dict) and isinstance(stat.get("value"), int):
                values[_int(stat.get("statHash"))] = stat["value"]
    else:  # no 304: as DIM computes it, the definition's stats plus every inserted plug's investment
        for stat in _definition_stats(definition).values():
            if isinstance(stat.get("value"), int):
                stat_hash = _int(stat.get("statHash"))
                values[stat_hash] = max(0, stat["value"] + bonus.get(stat_hash, 0))
    order = ARMOR_ORDER if armor else WEAPON_ORDER
    lines = []
    for stat_hash, value in values.items():
        name = _display(names.get(stat_hash)).get("name")
        if not stat_hash or stat_hash == POWER_STAT or not name:  # unnamed stats are hidden in game too
            continue
        extra = bonus.get(stat_hash, 0)
        base = max(0, value - extra)
        bar = stat_hash not in NUMBERS
        lines.append(StatLine(stat_hash=stat_hash, name=str(name), value=value, base=base if bar else value,
                              bonus=value - base if bar else 0, bar=bar,
                              maximum=ARMOR_BAR_MAX if armor else BAR_MAX))
    lines.sort(key=lambda s: (order.index(s.stat_hash) if s.stat_hash in order else len(order), s.name))
    return lines


def _is_masterwork_plug(plug: dict[str, Any]) -> bool:
    """A masterwork's top tier ("Masterworked: Range"), as Bungie names and files it."""
    identifier = (plug.get("plug") or {}).get("plugCategoryIdentifier") if isinstance(plug.get("plug"), dict) else ""
    name = _display(plug).get("name") or ""
    return isinstance(identifier, str) and ".masterworks.stat" in identifier and str(name).startswith("Masterworked")


CLASS_TYPES = {0: "titan", 1: "hunter", 2: "warlock"}  # DestinyClass; 3 is any class


def compare_query(*, kind: str, type_name: str, slot: str, class_type: int) -> str:
    """The filter that finds the player's items like this one (what compare puts beside
    it): a weapon's type keyword, or an armour piece's slot and class; "" otherwise."""
    if kind == "weapon":
        keyword = next((k for k, names in WEAPON_TYPES.items() if type_name.lower() in names), "")
        return f"is:{keyword}" if keyword else ""
    if kind == "armor" and slot:
        return f"is:armor slot:{slot}" + (f" is:{CLASS_TYPES[class_type]}" if class_type in CLASS_TYPES else "")
    return ""


# --- reading untrusted JSON ------------------------------------------------------------------------
def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _ints(values: Iterable[object]) -> list[int]:
    return [v for v in (_int(x) for x in values) if v]


def _percent(value: int, maximum: int) -> int:
    return max(0, min(100, round(100 * value / maximum))) if maximum > 0 else 0


def _display(definition: object) -> dict[str, Any]:
    display = definition.get("displayProperties") if isinstance(definition, dict) else None
    return display if isinstance(display, dict) else {}


def _socket_categories(definition: dict[str, Any]) -> list[dict[str, Any]]:
    sockets = definition.get("sockets")
    categories = sockets.get("socketCategories") if isinstance(sockets, dict) else None
    return [c for c in categories if isinstance(c, dict)] if isinstance(categories, list) else []


def _definition_stats(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    stats = definition.get("stats")
    inner = stats.get("stats") if isinstance(stats, dict) else None
    return {k: v for k, v in inner.items() if isinstance(v, dict)} if isinstance(inner, dict) else {}


def _investments(plug: dict[str, Any]) -> list[tuple[int, int]]:
    stats = plug.get("investmentStats")
    return [
        (_int(s.get("statTypeHash")), s["value"])
        for s in (stats if isinstance(stats, list) else [])
        if isinstance(s, dict) and isinstance(s.get("value"), int) and not s.get("isConditionallyActive")
    ]


def _sockets(profile: Profile, instance_id: str) -> list[dict[str, Any]]:
    component: object = profile.sockets.get(instance_id)
    sockets = component.get("sockets") if isinstance(component, dict) else None
    return [s if isinstance(s, dict) else {} for s in sockets] if isinstance(sockets, list) else []


def _reusable(profile: Profile, instance_id: str) -> dict[str, Any]:
    component = profile.reusable_plugs.get(instance_id)
    plugs = component.get("plugs") if isinstance(component, dict) else None
    return plugs if isinstance(plugs, dict) else {}


def _stat_values(profile: Profile, instance_id: str) -> dict[str, Any]:
    component = profile.stats.get(instance_id)
    stats = component.get("stats") if isinstance(component, dict) else None
    return {k: v for k, v in stats.items() if isinstance(v, dict)} if isinstance(stats, dict) else {}
