"""Plugs, plug sets, socket types and categories, and the roll of every owned instance.

Bungie describes a weapon's or armour's roll in three places, and so does the fake:

* the item definition's ``sockets`` block: one ``socketEntries`` row per socket (intrinsic
  frame, barrel, magazine, two traits, origin, mod, masterwork, shader, ornament...), each
  pointing at a ``socketTypeHash`` and at its possible plugs (``reusablePlugItems``, a
  ``randomizedPlugSetHash`` for random-roll columns, a ``reusablePlugSetHash``), and
  ``socketCategories`` grouping the sockets into the columns a client shows, with
  Bungie's real category hashes;
* the plugs themselves, ordinary ``DestinyInventoryItemDefinition`` rows with a ``plug``
  block: the real 2017 plug rows (scopes, magazines, traits, shaders, armour mods...)
  and, where the sample has none of a kind, generated ones in the same shape (barrels,
  origin traits, ``v400.weapon.mod_*`` mods, ``masterworks.stat.*`` masterworks...),
  plus the ``DestinyPlugSetDefinition``, ``DestinySocketTypeDefinition`` and
  ``DestinySocketCategoryDefinition`` tables;
* the instance: components 305 (the plug in each socket), 310 (what a random column
  offers), 304 (stats with the plugs' ``investmentStats``), 300's ``energy`` and the item
  ``state`` bits. ``roll()`` computes them once per instance, deterministically from the
  instance id.

The catalogue does not depend on the item spec: every table of every size points at the
same plugs, and the plugs the generated table does not itself contain (real plug rows
beyond ``count``, generated plugs) are appended to the served item table
(``extra_item_rows``).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import icons
from .items import (
    ARMOR_BUCKETS,
    ARMOR_STATS,
    CHEST,
    CLASS_ITEM,
    GAUNTLETS,
    GHOST,
    HELMET,
    ITEM_TYPE_ARMOR,
    ITEM_TYPE_GHOST,
    ITEM_TYPE_WEAPON,
    LEGS,
    POWER_STAT,
    TIER_BY_NAME,
    ItemSpec,
    _prune,
    _source_rows,
    _spec_schema,
    build_item,
    fnv1a32,
)

# -- Bungie's socket categories (hashes as DIM and other clients know them) -----------------
CAT_INTRINSIC = 3956125808
CAT_WEAPON_PERKS = 4241085061
CAT_WEAPON_MODS = 2685412949
CAT_WEAPON_COSMETICS = 2048875504
CAT_ARMOR_PERKS = 3154740035
CAT_ARMOR_MODS = 590099826
CAT_ARMOR_COSMETICS = 1926152773
CAT_ARMOR_TIER = 760375309
CAT_GHOST_MODS = 3886482628
CAT_WEAPON_CRAFTING = 3410521964
# hash -> (name, categoryStyle): DestinySocketCategoryStyle 1 Reusable, 2 Consumable,
# 4 Intrinsic, 5 EnergyMeter.
SOCKET_CATEGORY_ROWS = {
    CAT_INTRINSIC: ("INTRINSIC TRAITS", 4),
    CAT_WEAPON_PERKS: ("WEAPON PERKS", 1),
    CAT_WEAPON_MODS: ("WEAPON MODS", 2),
    CAT_WEAPON_COSMETICS: ("WEAPON COSMETICS", 2),
    CAT_ARMOR_PERKS: ("ARMOR PERKS", 1),
    CAT_ARMOR_MODS: ("ARMOR MODS", 2),
    CAT_ARMOR_COSMETICS: ("ARMOR COSMETICS", 2),
    CAT_ARMOR_TIER: ("ARMOR TIER", 5),
    CAT_GHOST_MODS: ("GHOST SHELL MODS", 2),
    CAT_WEAPON_CRAFTING: ("WEAPON LEVEL", 1),
}

# Real plug hashes the clients special-case.
DEFAULT_SHADER = 4248210736
DEFAULT_ORNAMENT = 2931483505  # a real 2017 row (exotic_all_skins)
ENERGY_ANY = 1198124803  # DestinyEnergyTypeDefinition "Any"

# Real plugCategoryHash values for the identifiers Bungie uses (others: fnv1a32).
PLUG_CATEGORY_HASHES = {
    "frames": 7906839,
    "barrels": 2833605196,
    "magazines": 1806783418,
    "intrinsics": 1744546145,
    "shader": 2973005342,
}

ITEM_STATE_LOCKED, ITEM_STATE_MASTERWORK, ITEM_STATE_CRAFTED = 1, 4, 8

# Weapon stats (real hashes from DestinyStatDefinition).
RANGE, STABILITY, HANDLING, RELOAD, MAGAZINE, AIM_ASSIST, RECOIL, IMPACT = (
    1240592695,
    155624089,
    943549884,
    4188031367,
    3871231066,
    1345609583,
    2715839340,
    4043523819,
)
MASTERWORK_STATS = {RANGE: "Range", STABILITY: "Stability", HANDLING: "Handling", RELOAD: "Reload Speed"}
# 2026 names of the armour stats (real DestinyStatDefinition): the same hashes as ever.
ARMOR_STAT_NAMES = dict(zip(ARMOR_STATS, ("Weapons", "Health", "Class", "Grenade", "Super", "Melee"), strict=True))

# Socket kinds -> (socket category, visibility, plug category identifier of the whitelist).
SOCKET_KINDS: dict[str, tuple[int, int, str]] = {
    "intrinsic": (CAT_INTRINSIC, 0, "intrinsics"),
    "barrel": (CAT_WEAPON_PERKS, 0, "barrels"),
    "magazine": (CAT_WEAPON_PERKS, 0, "magazines"),
    "trait": (CAT_WEAPON_PERKS, 0, "frames"),
    "origin": (CAT_WEAPON_PERKS, 0, "origins"),
    "weapon_mod": (CAT_WEAPON_MODS, 0, "v400.weapon.mod_guns"),
    "weapon_masterwork": (CAT_WEAPON_MODS, 0, "v400.plugs.weapons.masterworks.stat"),
    "weapon_shader": (CAT_WEAPON_COSMETICS, 0, "shader"),
    "weapon_ornament": (CAT_WEAPON_COSMETICS, 0, "exotic_all_skins"),
    "crafting": (CAT_WEAPON_CRAFTING, 1, "crafting.plugs.weapons.mods.memories"),
    "armor_mod": (CAT_ARMOR_MODS, 0, "enhancements.v2_general"),
    "armor_slot_mod": (CAT_ARMOR_MODS, 0, "enhancements"),
    "armor_roll": (CAT_ARMOR_PERKS, 1, "intrinsics"),
    "armor_exotic": (CAT_ARMOR_PERKS, 0, "intrinsics"),
    "armor_masterwork": (CAT_ARMOR_TIER, 0, "v400.plugs.armor.masterworks"),
    "armor_shader": (CAT_ARMOR_COSMETICS, 0, "shader"),
    "armor_ornament": (CAT_ARMOR_COSMETICS, 0, "armor_skins_empty"),
    "ghost_mod": (CAT_GHOST_MODS, 0, "v300.ghosts.mods.perks"),
    "tracker": (0, 0, "v400.plugs.weapons.masterworks.trackers"),
    "other": (CAT_WEAPON_PERKS, 0, ""),
}
RANDOM_KINDS = ("barrel", "magazine", "trait", "armor_roll")
PLUG_SETS_PER_RANDOM_KIND = 24
ORIGIN_SETS = 8


TRACKER_SOCKET_TYPE = 1282012138  # Bungie's kill-tracker socket type


def socket_type_hash(kind: str) -> int:
    return TRACKER_SOCKET_TYPE if kind == "tracker" else fnv1a32(f"fake-socket-type-{kind}")


SOCKET_TYPE_KIND = {socket_type_hash(k): k for k in SOCKET_KINDS}

# Icon styles of plug kinds (the round glyph drawn for them).
STYLE_OF_CATEGORY = (
    ("barrels", "barrel"),
    ("scopes", "barrel"),
    ("tubes", "barrel"),
    ("guards", "barrel"),
    ("blades", "barrel"),
    ("grips", "barrel"),
    ("stocks", "barrel"),
    ("magazines", "magazine"),
    ("batteries", "magazine"),
    ("frames", "trait"),
    ("intrinsics", "intrinsic"),
    ("origins", "origin"),
    ("masterworks", "masterwork"),
    ("v400.weapon.mod", "mod"),
    ("v300.weapon", "mod"),
    ("enhancements", "armor_mod"),
    ("shader", "shader"),
    ("skins", "ornament"),
    ("crafting", "crafted"),
    ("ghosts", "ghost_mod"),
)


@functools.cache
def _real_category_hashes() -> dict[str, int]:
    out = {}
    for raw in _source_rows():
        plug = orjson.loads(raw).get("plug")
        if plug:
            out[plug["plugCategoryIdentifier"]] = plug["plugCategoryHash"]
    return out


def plug_category_hash(identifier: str) -> int:
    """The real hash where the 2017 rows have the identifier, else FNV-1a of it."""
    return _real_category_hashes().get(identifier) or PLUG_CATEGORY_HASHES.get(identifier) or fnv1a32(identifier)


def plug_style(category_identifier: str) -> str:
    for needle, style in STYLE_OF_CATEGORY:
        if needle in category_identifier:
            return style
    return "generic"


# -- generated plugs: name, description, stats ------------------------------------------------
_BARRELS = (
    ("Arrowhead Brake", "Lightly vented barrel. Greatly controls recoil.", {RECOIL: 30, HANDLING: 10}),
    (
        "Corkscrew Rifling",
        "Balanced barrel. Slightly increases range, stability and handling.",
        {RANGE: 5, STABILITY: 5, HANDLING: 5},
    ),
    ("Fluted Barrel", "Ultra-light barrel. Greatly improves handling.", {HANDLING: 15, STABILITY: 5}),
    ("Full Bore", "Strong, heavy barrel. Greatly increases range.", {RANGE: 10, STABILITY: -10, HANDLING: -10}),
    ("Polygonal Rifling", "Barrel optimized for recoil reduction.", {STABILITY: 10}),
    ("Smallbore", "Slightly increases range and stability.", {RANGE: 7, STABILITY: 7}),
    ("Extended Barrel", "Heavy barrel. Increases range, decreases handling.", {RANGE: 10, HANDLING: -10}),
    ("Hammer-Forged Rifling", "Durable barrel attachment. Increases range.", {RANGE: 10}),
)
_MAGAZINES: tuple[tuple[Any, ...], ...] = (
    ("Appended Mag", "This weapon has a greatly increased magazine size.", {MAGAZINE: 20}),
    ("Tactical Mag", "Increases magazine size and reload speed.", {STABILITY: 3, RELOAD: 10, MAGAZINE: 10}),
    ("Ricochet Rounds", "Rounds ricochet off hard surfaces. Increases range and stability.", {RANGE: 5, STABILITY: 10}),
    ("Armor-Piercing Rounds", "Rounds overpenetrate targets and do more damage to shields.", {RANGE: 5}),
    ("High-Caliber Rounds", "Shots from this weapon knock back targets.", {RANGE: 5}),
    ("Light Mag", "Slightly faster reload. Increases range.", {RANGE: 3, RELOAD: 5}),
    ("Alloy Magazine", "Faster reload when the magazine is empty.", {}),
)
_TRAITS = (
    ("Outlaw", "Precision kills greatly decrease reload time."),
    ("Kill Clip", "Reloading after a kill grants increased damage."),
    ("Feeding Frenzy", "Each rapid kill with this weapon increases reload speed."),
    ("Rapid Hit", "Rapid precision hits increase stability and reload speed."),
    ("Subsistence", "Kills partially refill the magazine."),
    ("Vorpal Weapon", "Increased damage against bosses, vehicles, and Guardian Supers."),
    ("Frenzy", "Being in combat for an extended time increases damage, handling and reload."),
    ("Headstone", "Precision final blows create a Stasis crystal."),
    ("Incandescent", "Defeating a target spreads scorch to nearby targets."),
    ("Voltshot", "Reloading after defeating a target overcharges the weapon."),
    ("Repulsor Brace", "Defeating a Void-debuffed target grants an overshield."),
    ("Destabilizing Rounds", "Final blows make nearby targets volatile."),
    ("Demolitionist", "Final blows grant grenade energy."),
    ("Golden Tricorn", "Final blows increase damage for a short time."),
    ("Adrenaline Junkie", "Grenade final blows increase damage and handling."),
    ("Moving Target", "Increased aim assistance and movement speed while aiming."),
    ("Threat Detector", "Stability, reload and handling increase when enemies are close."),
    ("Eye of the Storm", "Accuracy and handling increase as your health decreases."),
    ("Killing Wind", "Final blows increase mobility, range and handling."),
    ("Snapshot Sights", "Greatly increases aim down sights speed."),
    ("Perpetual Motion", "Moving keeps the weapon's stability, reload and handling up."),
    ("Encore", "Final blows increase stability, range and accuracy."),
    ("Kinetic Tremors", "Hitting a target repeatedly creates shockwaves."),
    ("Target Lock", "Sustained fire increases damage."),
)
_ORIGINS: tuple[tuple[Any, ...], ...] = (
    ("Veist Stinger", "Damaging a target has a chance to refill part of the magazine.", {}),
    ("Nadir Focus", "Precision hits increase aim assistance.", {}),
    ("Hakke Breach Armaments", "More damage against vehicles, constructs and barricades.", {}),
    ("Omolon Fluid Dynamics", "Increased reload and stability for the top half of the magazine.", {}),
    ("Suros Synergy", "Reloading grants increased handling and reduced recoil.", {}),
    ("Bray Inheritance", "Hits increase ability energy gains.", {}),
    ("Tex Balanced Stock", "Increased handling and reload speed.", {HANDLING: 10, RELOAD: 10}),
    ("Souldrinker", "Precision final blows heal you.", {}),
)
_WEAPON_MODS: tuple[tuple[Any, ...], ...] = (
    ("Backup Mag", "Increases magazine size.", "v400.weapon.mod_magazine", {MAGAZINE: 10}),
    ("Major Spec", "Increased damage against major enemies.", "v400.weapon.mod_damage", {}),
    ("Minor Spec", "Increased damage against minor enemies.", "v400.weapon.mod_damage", {}),
    ("Boss Spec", "Increased damage against bosses and vehicles.", "v400.weapon.mod_damage", {}),
    ("Counterbalance Stock", "Reduces horizontal recoil.", "v400.weapon.mod_guns", {RECOIL: 30}),
    ("Icarus Grip", "Improves accuracy while airborne.", "v400.weapon.mod_guns", {}),
    ("Targeting Adjuster", "Increases aim assistance.", "v400.weapon.mod_guns", {AIM_ASSIST: 5}),
    ("Freehand Grip", "Faster hip-fire handling.", "v400.weapon.mod_guns", {}),
    ("Quick Access Sling", "Faster swap speed after emptying the magazine.", "v400.weapon.mod_guns", {}),
)


def _stat_list(stats: dict[int, int]) -> list[dict[str, Any]]:
    return [{"statTypeHash": h, "value": v, "isConditionallyActive": False} for h, v in stats.items()]


@functools.cache
def _template() -> dict[str, Any]:
    """A real plug row (2017 'Extended Mag'), modernised: the shape generated plugs copy."""
    for raw in _source_rows():
        row = orjson.loads(raw)
        if row.get("plug", {}).get("plugCategoryIdentifier") == "magazines":
            return row
    raise LookupError("no real magazine plug row")


def _make_plug(
    name: str,
    description: str,
    category: str,
    type_name: str,
    *,
    tier: str = "Legendary",
    stats: dict[int, int] | None = None,
    plug_hash: int | None = None,
    energy_cost: int | None = None,
    energy_capacity: int | None = None,
) -> dict[str, Any]:
    row = orjson.loads(orjson.dumps(_template()))
    h = plug_hash or fnv1a32(f"fake-plug-{category}-{name}")
    tier_hash, tier_type = TIER_BY_NAME[tier]
    row["displayProperties"] = {
        "description": description,
        "name": name,
        "icon": icons.icon_path(
            "plug", key=f"plug-{h}", tier=tier_type, sub=icons.PLUG_STYLES.index(plug_style(category))
        ),
        "hasIcon": True,
    }
    row["itemTypeDisplayName"] = type_name
    row["itemTypeAndTierDisplayName"] = f"{tier} {type_name}"
    row["inventory"].update(
        tierTypeHash=tier_hash, tierTypeName=tier, tierType=tier_type, isInstanceItem=False, bucketTypeHash=0
    )
    plug = row["plug"]
    plug.update(
        plugCategoryIdentifier=category,
        plugCategoryHash=plug_category_hash(category),
        uiPlugLabel="masterwork" if "masterworks" in category else "",
        plugStyle=1 if "masterworks" in category else 0,
        plugAvailability=0,
        alternateUiPlugLabel="",
        alternatePlugStyle=0,
        isDummyPlug=category.endswith("empty") or name.startswith("Empty"),
    )
    if energy_cost is not None:
        plug["energyCost"] = {"energyCost": energy_cost, "energyTypeHash": ENERGY_ANY, "energyType": 0}
    if energy_capacity is not None:
        plug["energyCapacity"] = {"capacityValue": energy_capacity, "energyTypeHash": ENERGY_ANY, "energyType": 0}
    row["investmentStats"] = _stat_list(stats or {})
    row.update(
        hash=h,
        index=0,
        redacted=False,
        blacklisted=False,
        itemType=19,
        itemSubType=0,
        classType=3,
        equippable=False,
        perks=[],
        tooltipNotifications=[],
        isWrapper=False,
        doesPostmasterPullHaveSideEffects=False,
        traitIds=[],
        traitHashes=[],
        damageTypes=[],
        damageTypeHashes=[],
        defaultDamageType=0,
        breakerType=0,
    )
    _prune(row, _spec_schema("Destiny.Definitions.DestinyInventoryItemDefinition"))
    return row


@dataclass
class Catalogue:
    """Every plug, plug set, socket type and category the generated items can point at."""

    generated: dict[int, dict[str, Any]] = field(default_factory=dict)  # plug hash -> row (en)
    real: dict[int, int] = field(default_factory=dict)  # real plug hash -> 2017 row index
    pools: dict[str, list[int]] = field(default_factory=dict)  # kind -> plug hashes
    plug_sets: dict[int, dict[str, Any]] = field(default_factory=dict)
    random_sets: dict[str, list[int]] = field(default_factory=dict)  # kind -> plug set hashes
    reusable_sets: dict[str, int] = field(default_factory=dict)  # kind (or kind:key) -> set hash
    masterwork_tier: dict[int, tuple[int, int]] = field(default_factory=dict)  # plug -> (stat, tier)
    empty: dict[str, int] = field(default_factory=dict)  # kind -> empty plug
    shaped: int = 0

    def add(self, row: dict[str, Any], *pools: str) -> int:
        h = row["hash"]
        if h in self.generated or h in self.real:
            raise ValueError(f"plug hash collision {h}")
        self.generated[h] = row
        for pool in pools:
            self.pools.setdefault(pool, []).append(h)
        return h

    def add_set(self, key: str, plugs: list[int], rng: random.Random | None = None) -> int:
        h = fnv1a32(f"fake-plugset-{key}")
        retired = rng is not None and len(plugs) > 3 and rng.random() < 0.25
        self.plug_sets[h] = {
            "displayProperties": {"description": "", "name": "", "hasIcon": False},
            "reusablePlugItems": [
                {"currentlyCanRoll": not (retired and i == len(plugs) - 1), "plugItemHash": p}
                for i, p in enumerate(plugs)
            ],
            "isFakePlugSet": False,
            "hash": h,
            "index": len(self.plug_sets),
            "redacted": False,
            "blacklisted": False,
        }
        return h


_SLOT_OF_ENHANCEMENT = {"head": HELMET, "arms": GAUNTLETS, "chest": CHEST, "legs": LEGS, "class": CLASS_ITEM}


@functools.cache
def catalogue() -> Catalogue:
    cat = Catalogue()
    # Real 2017 plug rows, by what they are.
    for index, raw in enumerate(_source_rows()):
        row = orjson.loads(raw)
        plug = row.get("plug")
        if not plug:
            continue
        h, pci, name = row["hash"], plug["plugCategoryIdentifier"], row["displayProperties"].get("name") or ""
        cat.real[h] = index
        tier = row["inventory"].get("tierTypeName")
        if pci in ("barrels", "scopes", "tubes"):
            cat.pools.setdefault("barrel", []).append(h)
        elif pci in ("magazines", "magazines_gl", "batteries"):
            cat.pools.setdefault("magazine", []).append(h)
        elif pci == "frames" and name != "Base Frame":
            cat.pools.setdefault("trait", []).append(h)
        elif pci == "intrinsics" and tier == "Exotic":
            cat.pools.setdefault("exotic_intrinsic", []).append(h)
        elif pci == "intrinsics":
            cat.pools.setdefault("armor_roll", []).append(h)
        elif pci == "shader" and name:
            cat.pools.setdefault("shader", []).append(h)
        elif pci.startswith("exotic_") and pci.endswith("_skins") and h != DEFAULT_ORNAMENT:
            cat.pools.setdefault("weapon_ornament", []).append(h)
        elif pci.startswith("enhancements."):
            slot = pci.split(".", 1)[1].split("_", 1)[0]
            cat.pools.setdefault(f"armor_slot_mod:{_SLOT_OF_ENHANCEMENT[slot]}", []).append(h)
        elif pci == "v300.ghosts.mods.perks" and name != "Random Mod":
            cat.pools.setdefault("ghost_mod", []).append(h)

    # Generated plugs, in Bungie's categories.
    for name, desc in (
        ("Adaptive Frame", "A well-rounded, reliable frame."),
        ("Rapid-Fire Frame", "Deep reserves. Fast reload when the magazine is empty."),
        ("Precision Frame", "Recoil pattern is more predictably vertical."),
        ("Lightweight Frame", "Superior rate of fire. Move faster with this weapon equipped."),
        ("High-Impact Frame", "Slower rate of fire. Increased stability while aiming."),
        ("Aggressive Frame", "High damage, high recoil."),
    ):
        cat.add(_make_plug(name, desc, "intrinsics", "Intrinsic"), "intrinsic")
    for name, desc, stats in _BARRELS:
        cat.add(_make_plug(name, desc, "barrels", "Barrel", stats=stats), "barrel")
    for name, desc, stats in _MAGAZINES:
        cat.add(_make_plug(name, desc, "magazines", "Magazine", stats=stats), "magazine")
    for name, desc in _TRAITS:
        stats = {AIM_ASSIST: 5} if name == "Moving Target" else {}
        cat.add(_make_plug(name, desc, "frames", "Trait", stats=stats), "trait")
    for name, desc, stats in _ORIGINS:
        cat.add(_make_plug(name, desc, "origins", "Origin Trait", stats=stats), "origin")
    cat.empty["weapon_mod"] = cat.add(
        _make_plug("Empty Mod Socket", "Insert a weapon mod.", "v400.weapon.mod_empty", "Weapon Mod", tier="Common"),
        "weapon_mod",
    )
    for name, desc, pci, stats in _WEAPON_MODS:
        cat.add(_make_plug(name, desc, pci, "Weapon Mod", stats=stats), "weapon_mod")
    for stat, stat_name in MASTERWORK_STATS.items():
        slug = stat_name.lower().replace(" ", "_")
        for tier in range(1, 11):
            name = f"Masterworked: {stat_name}" if tier == 10 else f"Tier {tier}: {stat_name}"
            desc = f"Increases {stat_name.lower()} by {tier}."
            pci = f"v400.plugs.weapons.masterworks.stat.{slug}"
            h = cat.add(_make_plug(name, desc, pci, "Masterwork", stats={stat: tier}), f"weapon_masterwork:{stat}")
            cat.masterwork_tier[h] = (stat, tier)
    cat.add(
        _make_plug(
            "Default Shader",
            "Restores your gear to its default colors.",
            "shader",
            "Shader",
            tier="Common",
            plug_hash=DEFAULT_SHADER,
        ),
    )
    cat.pools["shader"] = [DEFAULT_SHADER, *cat.pools.get("shader", [])]
    cat.pools["weapon_ornament"] = [DEFAULT_ORNAMENT, *cat.pools.get("weapon_ornament", [])]
    cat.empty["armor_mod"] = cat.add(
        _make_plug("Empty Mod Socket", "Insert an armor mod.", "enhancements.v2_empty", "Armor Mod", tier="Common"),
        "armor_mod",
    )
    for stat, stat_name in ARMOR_STAT_NAMES.items():
        desc = f"Increases your {stat_name} stat."
        cat.add(
            _make_plug(
                f"{stat_name} Mod",
                desc,
                "enhancements.v2_general",
                "General Armor Mod",
                stats={stat: 10},
                energy_cost=3,
            ),
            "armor_mod",
        )
        cat.add(
            _make_plug(
                f"Minor {stat_name} Mod",
                desc,
                "enhancements.v2_general",
                "General Armor Mod",
                stats={stat: 5},
                energy_cost=1,
            ),
            "armor_mod",
        )
    for slot in ARMOR_BUCKETS:
        cat.pools[f"armor_slot_mod:{slot}"] = [cat.empty["armor_mod"], *cat.pools.get(f"armor_slot_mod:{slot}", [])]
    for tier in range(1, 11):
        name = "Masterworked Armor" if tier == 10 else f"Armor Energy Tier {tier}"
        stats = dict.fromkeys(ARMOR_STATS, 2) if tier == 10 else {}
        h = cat.add(
            _make_plug(
                name,
                f"Armor energy capacity {tier}.",
                "v400.plugs.armor.masterworks",
                "Armor Tier",
                stats=stats,
                energy_capacity=tier,
            ),
            "armor_masterwork",
        )
        cat.masterwork_tier[h] = (0, tier)
    cat.empty["armor_ornament"] = cat.add(
        _make_plug(
            "Default Ornament",
            "Restores your armor to its default appearance.",
            "armor_skins_empty",
            "Armor Ornament",
            tier="Common",
        ),
        "armor_ornament",
    )
    for name, desc in (
        ("Kill Tracker", "Tracks how many enemies you have defeated with this weapon."),
        ("Crucible Tracker", "Tracks how many opponents you have defeated with this weapon in the Crucible."),
    ):
        cat.add(_make_plug(name, desc, "v400.plugs.weapons.masterworks.trackers", "Tracker", tier="Common"), "tracker")
    cat.empty["crafting"] = cat.add(
        _make_plug(
            "Empty Memento Socket",
            "This weapon was not shaped.",
            "crafting.plugs.weapons.mods.memories.empty",
            "Weapon Level",
            tier="Common",
        ),
        "crafting",
    )
    cat.shaped = cat.add(
        _make_plug(
            "Shaped Weapon",
            "This weapon was shaped at the Relic. Its perks can be changed.",
            "crafting.plugs.weapons.mods.transfusers.level",
            "Weapon Level",
        ),
        "crafting",
    )

    # Plug sets: random-roll columns share a few dozen sets, as Bungie's weapons do.
    for kind in RANDOM_KINDS:
        rng = random.Random(f"plugsets:{kind}")
        pool = cat.pools[kind]
        sizes = (4, 6) if kind == "armor_roll" else (5, 8)
        cat.random_sets[kind] = [
            cat.add_set(f"{kind}-{k}", rng.sample(pool, min(len(pool), rng.randint(*sizes))), rng)
            for k in range(PLUG_SETS_PER_RANDOM_KIND)
        ]
    rng = random.Random("plugsets:origin")
    cat.random_sets["origin"] = [
        cat.add_set(f"origin-{k}", rng.sample(cat.pools["origin"], rng.randint(1, 2))) for k in range(ORIGIN_SETS)
    ]
    for key in ("weapon_mod", "shader", "armor_mod", "armor_masterwork", "ghost_mod", "crafting"):
        cat.reusable_sets[key] = cat.add_set(key, cat.pools[key])
    for stat in MASTERWORK_STATS:
        key = f"weapon_masterwork:{stat}"
        cat.reusable_sets[key] = cat.add_set(key, cat.pools[key])
    for slot in ARMOR_BUCKETS:
        key = f"armor_slot_mod:{slot}"
        cat.reusable_sets[key] = cat.add_set(key, cat.pools[key])
    return cat


# -- definition tables --------------------------------------------------------------------------


def _translated(rows: dict[int, dict[str, Any]], lang: str) -> dict[str, Any]:
    out = {}
    for h, row in rows.items():
        if lang != "en":
            row = orjson.loads(orjson.dumps(row))
            row["displayProperties"]["name"] = f"[{lang}] {row['displayProperties']['name']}"
        out[str(h)] = row
    return out


@functools.cache
def plug_set_table() -> dict[int, dict[str, Any]]:
    return catalogue().plug_sets


@functools.cache
def socket_type_table() -> dict[int, dict[str, Any]]:
    out = {}
    for index, (kind, (category, visibility, pci)) in enumerate(SOCKET_KINDS.items()):
        h = socket_type_hash(kind)
        out[h] = {
            "displayProperties": {"description": "", "name": "", "hasIcon": False},
            "insertAction": {"actionExecuteSeconds": 0, "actionType": 0},
            "plugWhitelist": [
                {
                    "categoryHash": plug_category_hash(pci),
                    "categoryIdentifier": pci,
                    "reinitializationPossiblePlugHashes": [],
                }
            ]
            if pci
            else [],
            "socketCategoryHash": category,
            "visibility": visibility,
            "alwaysRandomizeSockets": False,
            "isPreviewEnabled": False,
            "hideDuplicateReusablePlugs": False,
            "overridesUiAppearance": False,
            "avoidDuplicatesOnInitialization": kind == "trait",
            "currencyScalars": [],
            "hash": h,
            "index": index,
            "redacted": False,
            "blacklisted": False,
        }
    return out


@functools.cache
def socket_category_table() -> dict[int, dict[str, Any]]:
    return {
        h: {
            "displayProperties": {"description": "", "name": name, "hasIcon": False},
            "uiCategoryStyle": fnv1a32(f"socket-category-style-{style}"),
            "categoryStyle": style,
            "hash": h,
            "index": index,
            "redacted": False,
            "blacklisted": False,
        }
        for index, (h, (name, style)) in enumerate(SOCKET_CATEGORY_ROWS.items())
    }


GENERATED_TABLES = {
    "DestinyPlugSetDefinition": plug_set_table,
    "DestinySocketTypeDefinition": socket_type_table,
    "DestinySocketCategoryDefinition": socket_category_table,
}


@functools.lru_cache(maxsize=16)
def generated_table_bytes(table: str, lang: str = "en") -> bytes:
    return orjson.dumps(_translated(GENERATED_TABLES[table](), lang))


def generated_entity(table: str, h: int) -> dict[str, Any] | None:
    return GENERATED_TABLES[table]().get(h)


# -- plug rows appended to the item table --------------------------------------------------------

_REAL_ROWS_SPEC = ItemSpec(count=1000, seed=0)
EXTRA_INDEX_BASE = 10_000_000  # ``index`` of appended rows: past any generated item's


@functools.lru_cache(maxsize=16)
def extra_item_rows(spec: ItemSpec, lang: str = "en") -> tuple[dict[str, Any], ...]:
    """Plug rows the spec's own table lacks: real 2017 plug rows beyond ``count`` and the
    generated plugs. Skips any hash the table already has, so keys stay unique."""
    present = spec.index_of
    rows = []
    cat = catalogue()
    for h, gen_index in cat.real.items():
        if gen_index >= spec.count and present(h) is None:
            rows.append(build_item(_REAL_ROWS_SPEC, gen_index, gen_index, lang))
    for h, row in cat.generated.items():
        if present(h) is None:
            rows.append(row)
    out = []
    for position, row in enumerate(rows):
        row = orjson.loads(orjson.dumps(row))
        row["index"] = EXTRA_INDEX_BASE + position
        if lang != "en" and row["hash"] in cat.generated:
            row["displayProperties"]["name"] = f"[{lang}] {row['displayProperties']['name']}"
        out.append(row)
    return tuple(out)


@functools.lru_cache(maxsize=16)
def extra_item_bytes(spec: ItemSpec, lang: str = "en") -> bytes:
    """The appended rows as ``"<hash>":{...},...`` (no braces), to follow the table file."""
    return b",".join(b'"%d":%s' % (r["hash"], orjson.dumps(r)) for r in extra_item_rows(spec, lang))


@functools.lru_cache(maxsize=16)
def _extra_by_hash(spec: ItemSpec) -> dict[int, dict[str, Any]]:
    return {r["hash"]: r for r in extra_item_rows(spec)}


def extra_item_row(spec: ItemSpec, item_hash: int) -> dict[str, Any] | None:
    return _extra_by_hash(spec).get(item_hash)


@functools.lru_cache(maxsize=8192)
def definition(spec: ItemSpec, item_hash: int) -> dict[str, Any] | None:
    """The served item definition of a hash (table item or appended plug), index aside."""
    gen_index = spec.index_of(item_hash)
    if gen_index is not None:
        return build_item(spec, gen_index, 0)
    return _extra_by_hash(spec).get(item_hash)


# -- definition sockets (called by items.build_item) ----------------------------------------------


def _entry(
    kind: str,
    initial: int,
    *,
    reusable: list[int] | None = None,
    random_set: int = 0,
    reusable_set: int = 0,
    visible: bool = True,
    sources: int = 2,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "socketTypeHash": socket_type_hash(kind),
        "singleInitialItemHash": initial,
        "reusablePlugItems": [{"plugItemHash": p} for p in (reusable or [])],
        "preventInitializationOnVendorPurchase": False,
        "hidePerksInItemTooltip": not visible,
        "plugSources": sources,
    }
    if reusable_set:
        out["reusablePlugSetHash"] = reusable_set
    if random_set:
        out["randomizedPlugSetHash"] = random_set
    out["defaultVisible"] = visible
    return out


def _first_can_roll(set_hash: int) -> int:
    return next(p["plugItemHash"] for p in plug_set_table()[set_hash]["reusablePlugItems"] if p["currentlyCanRoll"])


def _block(entries: list[tuple[int, dict[str, Any]]], intrinsic: list[dict[str, Any]]) -> dict[str, Any]:
    cats: dict[int, list[int]] = {}
    for i, (category, _) in enumerate(entries):
        if category:  # the tracker belongs to no column
            cats.setdefault(category, []).append(i)
    return {
        "detail": "Details",
        "socketEntries": [e for _, e in entries],
        "intrinsicSockets": intrinsic,
        "socketCategories": [{"socketCategoryHash": c, "socketIndexes": idx} for c, idx in cats.items()],
    }


def weapon_sockets(rng: random.Random, exotic: bool) -> dict[str, Any]:
    cat = catalogue()
    entries: list[tuple[int, dict[str, Any]]] = []
    frame = rng.choice(cat.pools["exotic_intrinsic" if exotic else "intrinsic"])
    entries.append((CAT_INTRINSIC, _entry("intrinsic", frame, reusable=[frame])))
    for kind in ("barrel", "magazine", "trait", "trait"):
        if exotic:  # exotics have fixed perks
            plugs = rng.sample(cat.pools[kind], 2 if kind == "barrel" else 1)
            entries.append((CAT_WEAPON_PERKS, _entry(kind, plugs[0], reusable=plugs)))
        else:
            set_hash = rng.choice(cat.random_sets[kind])
            entries.append((CAT_WEAPON_PERKS, _entry(kind, _first_can_roll(set_hash), random_set=set_hash)))
    if not exotic:
        set_hash = rng.choice(cat.random_sets["origin"])
        entries.append((CAT_WEAPON_PERKS, _entry("origin", _first_can_roll(set_hash), reusable_set=set_hash)))
    mod_set = cat.reusable_sets["weapon_mod"]
    entries.append((CAT_WEAPON_MODS, _entry("weapon_mod", cat.empty["weapon_mod"], reusable_set=mod_set, sources=13)))
    mw_key = f"weapon_masterwork:{rng.choice(list(MASTERWORK_STATS))}"
    mw_set = cat.reusable_sets[mw_key]
    entries.append((CAT_WEAPON_MODS, _entry("weapon_masterwork", cat.pools[mw_key][0], reusable_set=mw_set)))
    shader_set = cat.reusable_sets["shader"]
    entries.append((CAT_WEAPON_COSMETICS, _entry("weapon_shader", DEFAULT_SHADER, reusable_set=shader_set, sources=13)))
    ornaments = [DEFAULT_ORNAMENT] + ([rng.choice(cat.pools["weapon_ornament"][1:])] if exotic else [])
    entries.append((CAT_WEAPON_COSMETICS, _entry("weapon_ornament", DEFAULT_ORNAMENT, reusable=ornaments)))
    trackers = cat.pools["tracker"]
    entries.append((0, _entry("tracker", trackers[0], reusable=trackers, sources=2)))
    if not exotic:
        crafting = [cat.empty["crafting"], cat.shaped]
        entries.append(
            (CAT_WEAPON_CRAFTING, _entry("crafting", cat.empty["crafting"], reusable=crafting, visible=False))
        )
    return _block(
        entries, [{"plugItemHash": frame, "socketTypeHash": socket_type_hash("intrinsic"), "defaultVisible": True}]
    )


def armor_sockets(rng: random.Random, slot: int, exotic: bool) -> dict[str, Any]:
    cat = catalogue()
    entries: list[tuple[int, dict[str, Any]]] = []
    general = cat.reusable_sets["armor_mod"]
    slot_key = f"armor_slot_mod:{slot}"
    entries.append((CAT_ARMOR_MODS, _entry("armor_mod", cat.empty["armor_mod"], reusable_set=general, sources=13)))
    entries.append(
        (
            CAT_ARMOR_MODS,
            _entry("armor_slot_mod", cat.empty["armor_mod"], reusable_set=cat.reusable_sets[slot_key], sources=13),
        )
    )
    entries.append((CAT_ARMOR_MODS, _entry("armor_mod", cat.empty["armor_mod"], reusable_set=general, sources=13)))
    if exotic:
        perk = rng.choice(cat.pools["exotic_intrinsic"])
        entries.append((CAT_ARMOR_PERKS, _entry("armor_exotic", perk, reusable=[perk])))
    for _ in range(4):  # the hidden stat roll, as Bungie's armour has
        set_hash = rng.choice(cat.random_sets["armor_roll"])
        entries.append(
            (CAT_ARMOR_PERKS, _entry("armor_roll", _first_can_roll(set_hash), random_set=set_hash, visible=False))
        )
    mw_set = cat.reusable_sets["armor_masterwork"]
    entries.append((CAT_ARMOR_TIER, _entry("armor_masterwork", cat.pools["armor_masterwork"][0], reusable_set=mw_set)))
    shader_set = cat.reusable_sets["shader"]
    entries.append((CAT_ARMOR_COSMETICS, _entry("armor_shader", DEFAULT_SHADER, reusable_set=shader_set, sources=13)))
    ornament = cat.empty["armor_ornament"]
    entries.append((CAT_ARMOR_COSMETICS, _entry("armor_ornament", ornament, reusable=[ornament])))
    return _block(entries, [])


def ghost_sockets(rng: random.Random) -> dict[str, Any]:
    cat = catalogue()
    mods = cat.reusable_sets["ghost_mod"]
    first = cat.pools["ghost_mod"][0]
    entries = [
        (CAT_GHOST_MODS, _entry("ghost_mod", first, reusable_set=mods, sources=13)),
        (CAT_GHOST_MODS, _entry("ghost_mod", first, reusable_set=mods, sources=13)),
        (
            CAT_ARMOR_COSMETICS,
            _entry("armor_shader", DEFAULT_SHADER, reusable_set=cat.reusable_sets["shader"], sources=13),
        ),
    ]
    return _block(entries, [])


def other_sockets(rng: random.Random) -> dict[str, Any]:
    """Most other items have sockets too (ornaments, shaders, transmat effects...): real plugs."""
    plugs = list(catalogue().real)
    entries = []
    for i in range(8):
        reusable = [rng.choice(plugs) for _ in range(rng.randint(3, 8))]
        entries.append(
            (
                (CAT_INTRINSIC, CAT_WEAPON_PERKS)[i % 2],
                _entry("other", rng.choice(plugs), reusable=reusable, visible=True),
            )
        )
    return _block(entries, [])


# -- the roll of an instance --------------------------------------------------------------------------


@dataclass(frozen=True)
class Roll:
    sockets: dict[str, Any]  # DestinyItemSocketsComponent
    reusable_plugs: dict[str, Any] | None  # DestinyItemReusablePlugsComponent
    stats: dict[str, Any]  # DestinyItemStatsComponent
    state: int  # ItemState bits
    energy: dict[str, Any] | None  # DestinyItemInstanceEnergy (armour)

    # Serialised once per instance: the large profile embeds ~1,200 of each per request.
    @functools.cached_property
    def sockets_json(self) -> orjson.Fragment:
        return orjson.Fragment(orjson.dumps(self.sockets))

    @functools.cached_property
    def stats_json(self) -> orjson.Fragment:
        return orjson.Fragment(orjson.dumps(self.stats))

    @functools.cached_property
    def reusable_plugs_json(self) -> orjson.Fragment:
        return orjson.Fragment(orjson.dumps(self.reusable_plugs))


EMPTY_ROLL = Roll(sockets={"sockets": []}, reusable_plugs=None, stats={"stats": {}}, state=0, energy=None)
WEAPON_STAT_RANGE = (0, 100)


def _plug_base(h: int) -> dict[str, Any]:
    return {"plugItemHash": h, "canInsert": True, "enabled": True}


@functools.lru_cache(maxsize=16384)
def roll(spec: ItemSpec, item_hash: int, instance_id: str) -> Roll:
    """Everything about one instance's roll; a pure function of its arguments."""
    item = definition(spec, item_hash)
    if item is None or not item.get("sockets"):
        return EMPTY_ROLL
    cat = catalogue()
    rng = random.Random(f"roll:{instance_id}:{item_hash}")
    item_type = item.get("itemType")
    tier = item["inventory"].get("tierType", 0)
    is_weapon, is_armor = item_type == ITEM_TYPE_WEAPON, item_type in (ITEM_TYPE_ARMOR, ITEM_TYPE_GHOST)
    crafted = is_weapon and tier == 5 and rng.random() < 0.08
    masterwork = rng.random() < (0.6 if crafted else 0.22)
    locked = rng.random() < 0.35
    states: list[dict[str, Any]] = []
    reusable: dict[str, list[dict[str, Any]]] = {}
    energy_capacity = 0
    for index, entry in enumerate(item["sockets"]["socketEntries"]):
        kind = SOCKET_TYPE_KIND.get(entry["socketTypeHash"], "other")
        plug = entry.get("singleInitialItemHash") or 0
        visible = bool(entry.get("defaultVisible", True))
        offered: list[int] = []
        if entry.get("randomizedPlugSetHash"):
            can_roll = [
                p["plugItemHash"]
                for p in plug_set_table()[entry["randomizedPlugSetHash"]]["reusablePlugItems"]
                if p["currentlyCanRoll"]
            ]
            if crafted:  # a shaped weapon can select any perk of its columns
                offered = can_roll
                plug = rng.choice(offered)
            else:  # newer drops offer one to three perks per column
                offered = rng.sample(can_roll, min(len(can_roll), rng.randint(1, 3)))
                plug = offered[0]
        elif kind in ("weapon_masterwork", "armor_masterwork"):
            tiers = [p["plugItemHash"] for p in plug_set_table()[entry["reusablePlugSetHash"]]["reusablePlugItems"]]
            plug = tiers[-1] if masterwork else tiers[rng.randrange(len(tiers) - 1)]
            if kind == "armor_masterwork":
                energy_capacity = cat.masterwork_tier[plug][1]
        elif kind == "origin":
            origins = plug_set_table()[entry["reusablePlugSetHash"]]["reusablePlugItems"]
            plug = rng.choice(origins)["plugItemHash"]
        elif kind in ("weapon_shader", "armor_shader"):
            plug = DEFAULT_SHADER if rng.random() < 0.5 else rng.choice(cat.pools["shader"])
        elif kind == "weapon_mod":
            plug = rng.choice(cat.pools["weapon_mod"]) if rng.random() < 0.6 else cat.empty["weapon_mod"]
        elif kind == "ghost_mod":
            plug = rng.choice(cat.pools["ghost_mod"])
        elif kind == "crafting":
            plug = cat.shaped if crafted else cat.empty["crafting"]
            visible = crafted
        elif len(entry.get("reusablePlugItems") or ()) > 1:  # e.g. the tracker, exotic ornaments
            offered = [p["plugItemHash"] for p in entry["reusablePlugItems"]]
        states.append({"plugHash": plug, "isEnabled": True, "isVisible": visible})
        if offered and kind != "crafting":
            reusable[str(index)] = [_plug_base(p) for p in offered]
    # Armour mods last: they must fit the energy the masterwork tier gives.
    energy_used = 0
    if is_armor and item_type == ITEM_TYPE_ARMOR:
        for index, entry in enumerate(item["sockets"]["socketEntries"]):
            mod_kind = SOCKET_TYPE_KIND.get(entry["socketTypeHash"])
            if mod_kind not in ("armor_mod", "armor_slot_mod") or rng.random() < 0.4:
                continue
            pool = cat.pools["armor_mod"] if mod_kind == "armor_mod" else cat.pools[f"armor_slot_mod:{_slot(item)}"]
            choice = rng.choice(pool)
            cost = _energy_cost(spec, choice)
            if energy_used + cost <= energy_capacity:
                states[index]["plugHash"] = choice
                energy_used += cost
    stats = _stats(spec, item, states)
    state = (ITEM_STATE_LOCKED if locked else 0) | (
        ITEM_STATE_MASTERWORK if masterwork and (is_weapon or is_armor) else 0
    )
    if crafted:
        state |= ITEM_STATE_CRAFTED
    energy = None
    if item_type == ITEM_TYPE_ARMOR:
        energy = {
            "energyTypeHash": ENERGY_ANY,
            "energyType": 0,
            "energyCapacity": energy_capacity,
            "energyUsed": energy_used,
            "energyUnused": energy_capacity - energy_used,
        }
    return Roll(
        sockets={"sockets": states},
        reusable_plugs={"plugs": reusable} if reusable else None,
        stats={"stats": stats},
        state=state if (is_weapon or is_armor) else state & ITEM_STATE_LOCKED,
        energy=energy,
    )


def _slot(item: dict[str, Any]) -> int:
    return item["inventory"]["bucketTypeHash"]


def _energy_cost(spec: ItemSpec, plug: int) -> int:
    row = definition(spec, plug) or {}
    return ((row.get("plug") or {}).get("energyCost") or {}).get("energyCost", 0)


@functools.lru_cache(maxsize=16)
def _investments(spec: ItemSpec) -> dict[int, list[tuple[int, int]]]:
    """Plug hash -> its active (stat, value) pairs, filled as plugs are met (one per spec)."""
    return {}


def investment(
    spec: ItemSpec, plug: int, memo: dict[int, list[tuple[int, int]]] | None = None
) -> list[tuple[int, int]]:
    memo = _investments(spec) if memo is None else memo
    found = memo.get(plug)
    if found is None:
        row = definition(spec, plug) or {}
        found = memo[plug] = [
            (s["statTypeHash"], s["value"])
            for s in row.get("investmentStats", [])
            if not s.get("isConditionallyActive")
        ]
    return found


def _stats(spec: ItemSpec, item: dict[str, Any], states: list[dict[str, Any]]) -> dict[str, Any]:
    """The definition's stats plus every inserted plug's investment, clamped 0..100; no power."""
    values = {int(h): s["value"] for h, s in (item.get("stats") or {}).get("stats", {}).items() if int(h) != POWER_STAT}
    memo = _investments(spec)
    for state in states:
        for stat, value in investment(spec, state["plugHash"], memo):
            if stat in values:
                values[stat] += value
    low, high = WEAPON_STAT_RANGE
    return {str(h): {"statHash": h, "value": max(low, min(high, v))} for h, v in values.items()}


def slot_index(bucket_hash: int) -> int:
    return ARMOR_BUCKETS.index(bucket_hash) if bucket_hash in ARMOR_BUCKETS else (5 if bucket_hash == GHOST else 0)
