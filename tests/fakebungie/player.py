"""The demo player: a Steam account with three characters, a vault, and Bungie's rules.

Item hashes come from the current generated item table (``ItemSpec.summaries()``): the
player owns instances of the table's weapons, armour and Ghost shells, drawn
deterministically (seeded) with repetition. The *number* of items is set by the profile
size ("normal": 600 in the vault, "large": ~1,100, or an explicit ``vault_items``), not by
the table size; a small table simply means more duplicate hashes, and an item table with
no armour for a class leaves that slot empty.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from . import icons
from .envelopes import PlatformError
from .items import (
    ARMOR_BUCKETS,
    CONSUMABLES,
    DAMAGE_TYPES,
    GENERAL_VAULT,
    GHOST,
    ITEM_TYPE_ARMOR,
    ITEM_TYPE_GHOST,
    ITEM_TYPE_WEAPON,
    KINETIC,
    POSTMASTER,
    WEAPON_BUCKETS,
    ItemSummary,
)
from .plugs import EMPTY_ROLL, Roll

Place = Literal["vault", "inventory", "equipped", "postmaster"]

MEMBERSHIP_TYPE = 3  # TigerSteam
DESTINY_MEMBERSHIP_ID = "4611686018467260757"
BUNGIE_MEMBERSHIP_ID = "14512345"
DISPLAY_NAME = "Guardian"
NAME_CODE = 1234
# Classes, races and genders: real hashes from the sample tables.
CHARACTERS = (
    # characterId, classHash, classType, raceHash, raceType, genderHash, genderType
    ("2305843009262373961", 3655393761, 0, 3887404748, 0, 3111576190, 0),  # Titan
    ("2305843009262373962", 671679327, 1, 2803282938, 1, 2204441813, 1),  # Hunter
    ("2305843009262373963", 2271682572, 2, 898834093, 2, 3111576190, 0),  # Warlock
)
BUCKET_CAPACITY = 9  # non-equipped items per weapon/armour/ghost bucket on a character
PROFILE_SIZES = {"normal": 600, "large": 1100}
POWER_STAT_HASH = 1935470627
ItemLocation = {"inventory": 1, "equipped": 1, "vault": 2, "postmaster": 4}


@dataclass
class OwnedItem:
    key: str  # itemInstanceId for instanced items, a synthetic key for stacks
    item_hash: int
    bucket_hash: int  # the definition's bucket: where the item goes on a character
    item_type: int
    tier_type: int
    class_type: int
    place: Place
    character_id: str | None = None
    instanced: bool = True
    quantity: int = 1
    power: int = 1900
    damage_type: int = 0

    @property
    def instance_id(self) -> str | None:
        return self.key if self.instanced else None

    @property
    def exotic_kind(self) -> str | None:
        if self.tier_type != 6:
            return None
        return (
            "weapon" if self.bucket_hash in WEAPON_BUCKETS else "armor" if self.bucket_hash in ARMOR_BUCKETS else None
        )

    def component(self, state: int = 0) -> dict[str, Any]:
        """DestinyItemComponent: int64 ids are strings on the wire, as Bungie sends them.
        ``state``: the ItemState bits of the instance's roll (locked, masterwork, crafted)."""
        bucket = {"vault": GENERAL_VAULT, "postmaster": POSTMASTER}.get(self.place, self.bucket_hash)
        out: dict[str, Any] = {"itemHash": self.item_hash}
        if self.instanced:
            out["itemInstanceId"] = self.key
        out.update(
            quantity=self.quantity,
            bindStatus=0,
            location=ItemLocation[self.place],
            bucketHash=bucket,
            transferStatus=1 if self.place == "equipped" else 0,
            lockable=self.instanced,
            state=state,
            isWrapper=False,
            tooltipNotificationIndexes=[],
            versionNumber=0,
        )
        return out

    def instance(self, energy: dict[str, Any] | None = None) -> dict[str, Any]:
        """DestinyItemInstanceComponent (``energy``: armour's, from its roll)."""
        out: dict[str, Any] = {"damageType": self.damage_type}
        if self.damage_type:
            out["damageTypeHash"] = DAMAGE_TYPES[self.damage_type]
        out.update(
            primaryStat={"statHash": POWER_STAT_HASH, "value": self.power},
            itemLevel=self.power // 10,
            quality=0,
            isEquipped=self.place == "equipped",
            canEquip=self.place in ("inventory", "equipped"),
            equipRequiredLevel=0,
            unlockHashesRequiredToEquip=[],
            cannotEquipReason=0 if self.place in ("inventory", "equipped") else 1,
            breakerType=0,
        )
        if energy is not None:
            out["energy"] = energy
        out["gearTier"] = 1 + (self.power % 5)
        return out


def _identity(number: int) -> dict[str, Any]:
    """Player ``number``'s own ids (number 0: the demo player's constants above)."""
    if number == 0:
        return {}
    return {
        "destiny_membership_id": str(int(DESTINY_MEMBERSHIP_ID) + number),
        "bungie_membership_id": str(int(BUNGIE_MEMBERSHIP_ID) + number),
        "display_name": f"{DISPLAY_NAME}{number + 1}",
        "_next_id": 6917529100000000000 + number * 100_000_000,
        "characters": tuple((str(int(c[0]) + number * 10), *c[1:]) for c in CHARACTERS),
    }


@dataclass
class Player:
    items: dict[str, OwnedItem] = field(default_factory=dict)
    vault_capacity: int = 600
    membership_type: int = MEMBERSHIP_TYPE
    destiny_membership_id: str = DESTINY_MEMBERSHIP_ID
    bungie_membership_id: str = BUNGIE_MEMBERSHIP_ID
    display_name: str = DISPLAY_NAME
    name_code: int = NAME_CODE
    _next_id: int = 6917529100000000000
    characters: tuple[tuple[Any, ...], ...] = CHARACTERS

    @property
    def bungie_name(self) -> str:
        return f"{self.display_name}#{self.name_code:04d}"

    @property
    def character_ids(self) -> list[str]:
        return [c[0] for c in self.characters]

    def new_instance_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    # -- generation --------------------------------------------------------------------------
    @classmethod
    def generate(
        cls,
        summaries: list[ItemSummary],
        *,
        vault_items: int = 600,
        vault_capacity: int = 600,
        seed: int = 0,
        number: int = 0,
    ) -> Player:
        """``number``: which of a fake's several players (0, the demo player, by default):
        player N > 0 has ids, characters and instance ids of its own, offset by N."""
        player = cls(vault_capacity=vault_capacity, **_identity(number))
        rng = random.Random(f"player:{seed}")
        gear = [
            s for s in summaries if s.instanced and s.item_type in (ITEM_TYPE_WEAPON, ITEM_TYPE_ARMOR, ITEM_TYPE_GHOST)
        ]
        gear = [s for s in gear if s.bucket_hash in WEAPON_BUCKETS + ARMOR_BUCKETS + (GHOST,)]
        by_bucket: dict[int, list[ItemSummary]] = {}
        for s in gear:
            by_bucket.setdefault(s.bucket_hash, []).append(s)

        for char_id, _, class_type, *_ in player.characters:
            for pool in by_bucket.values():
                fits = [s for s in pool if s.class_type in (class_type, 3)]
                if not fits:
                    continue
                # Equip a non-exotic (so exotic-rule tests start from a clean state) ...
                legendary = [s for s in fits if s.tier_type != 6] or fits
                player._add(rng.choice(legendary), "equipped", char_id, rng)
                # ... and keep a few in the bucket, leaving room to transfer in.
                for _ in range(rng.randint(2, 4)):
                    player._add(rng.choice(fits), "inventory", char_id, rng)
            weapons = [s for b in WEAPON_BUCKETS for s in by_bucket.get(b, [])]
            for _ in range(2 if weapons else 0):
                player._add(rng.choice(weapons), "postmaster", char_id, rng)

        if gear:
            for _ in range(min(vault_items, vault_capacity)):
                player._add(rng.choice(gear), "vault", None, rng)
        consumables = [s for s in summaries if not s.instanced and s.bucket_hash == CONSUMABLES]
        for s in consumables[:5]:
            player._add(s, "vault", None, rng, instanced=False, quantity=rng.randint(1, 50), place_override="inventory")
        return player

    def _add(
        self,
        s: ItemSummary,
        place: Place,
        char_id: str | None,
        rng: random.Random,
        *,
        instanced: bool = True,
        quantity: int = 1,
        place_override: Place | None = None,
    ) -> OwnedItem:
        key = self.new_instance_id() if instanced else f"stack-{s.hash}"
        item = OwnedItem(
            key=key,
            item_hash=s.hash,
            bucket_hash=s.bucket_hash,
            item_type=s.item_type,
            tier_type=s.tier_type,
            class_type=s.class_type,
            place=place_override or place,
            character_id=char_id,
            instanced=instanced,
            quantity=quantity,
            power=rng.randint(1800, 2000),
            damage_type=s.damage_type,
        )
        self.items[key] = item
        return item

    def add_item(
        self,
        item_hash: int,
        *,
        place: Place = "vault",
        character_id: str | None = None,
        bucket_hash: int = KINETIC,
        item_type: int = ITEM_TYPE_WEAPON,
        tier_type: int = 5,
        class_type: int = 3,
    ) -> OwnedItem:
        """Give the player an item, e.g. one whose hash is not in the manifest yet."""
        if place != "vault" and character_id not in self.character_ids:
            raise ValueError("character_id required for a character place")
        item = OwnedItem(
            key=self.new_instance_id(),
            item_hash=item_hash,
            bucket_hash=bucket_hash,
            item_type=item_type,
            tier_type=tier_type,
            class_type=class_type,
            place=place,
            character_id=None if place == "vault" else character_id,
            power=1950,
            damage_type=1 if item_type == ITEM_TYPE_WEAPON else 0,
        )
        self.items[item.key] = item
        return item

    # -- queries -------------------------------------------------------------------------------
    def fingerprint(self) -> int:
        """Changes whenever an item is added, moved, equipped or changed (the fake's kept
        GetProfile bodies are drawn again then)."""
        return hash(tuple((i.key, i.item_hash, i.place, i.character_id, i.power, i.quantity)
                          for i in self.items.values()))

    def vault(self) -> list[OwnedItem]:
        return [i for i in self.items.values() if i.place == "vault" and i.instanced]

    def on_character(self, char_id: str, place: Place) -> list[OwnedItem]:
        return [i for i in self.items.values() if i.character_id == char_id and i.place == place]

    def in_bucket(self, char_id: str, bucket: int) -> list[OwnedItem]:
        return [i for i in self.on_character(char_id, "inventory") if i.bucket_hash == bucket]

    def equipped(self, char_id: str) -> list[OwnedItem]:
        return self.on_character(char_id, "equipped")

    def locate(self, instance_id: str) -> dict[str, Any] | None:
        item = self.items.get(str(instance_id))
        return None if item is None else asdict(item)

    # -- actions (Bungie's rules, Bungie's error codes) --------------------------------------
    def _find(self, item_id: Any, item_hash: int | None = None) -> OwnedItem:
        item = self.items.get(str(item_id))
        if item is None or (item_hash is not None and item.item_hash != item_hash):
            raise PlatformError(1623)
        return item

    def _check_character(self, char_id: Any) -> str:
        if str(char_id) not in self.character_ids:
            raise PlatformError(1620)
        return str(char_id)

    def transfer(self, *, item_hash: int, item_id: Any, character_id: Any, to_vault: bool, stack_size: int = 1) -> None:
        char_id = self._check_character(character_id)
        item = self._find(item_id, item_hash)
        if to_vault:
            if item.place == "equipped" and item.character_id == char_id:
                raise PlatformError(1656)
            if item.place != "inventory" or item.character_id != char_id:
                raise PlatformError(1623)
            if item.instanced and len(self.vault()) >= self.vault_capacity:
                raise PlatformError(1642)
            item.place, item.character_id = "vault", None
        else:
            if item.place != "vault":
                raise PlatformError(1623)
            if item.instanced and len(self.in_bucket(char_id, item.bucket_hash)) >= BUCKET_CAPACITY:
                raise PlatformError(1642)
            item.place, item.character_id = "inventory", char_id

    def equip(self, *, item_id: Any, character_id: Any) -> None:
        char_id = self._check_character(character_id)
        item = self._find(item_id)
        if item.character_id != char_id or item.place not in ("inventory", "equipped"):
            raise PlatformError(1623)  # the item must be on that character
        if item.place == "equipped":
            return
        if item.bucket_hash not in WEAPON_BUCKETS + ARMOR_BUCKETS + (GHOST,):
            raise PlatformError(1671)
        class_type = next(c[2] for c in self.characters if c[0] == char_id)
        if item.class_type not in (class_type, 3):
            raise PlatformError(1671)
        equipped = self.equipped(char_id)
        if item.exotic_kind and any(
            e.exotic_kind == item.exotic_kind and e.bucket_hash != item.bucket_hash for e in equipped
        ):
            raise PlatformError(1641)
        for e in equipped:
            if e.bucket_hash == item.bucket_hash:
                e.place = "inventory"  # swap: the old item goes back into the bucket
        item.place = "equipped"

    def pull_from_postmaster(self, *, item_hash: int, item_id: Any, character_id: Any) -> None:
        char_id = self._check_character(character_id)
        item = self._find(item_id, item_hash)
        if item.place != "postmaster" or item.character_id != char_id:
            raise PlatformError(1623)
        if len(self.in_bucket(char_id, item.bucket_hash)) >= BUCKET_CAPACITY:
            raise PlatformError(1642)
        item.place = "inventory"

    # -- responses ------------------------------------------------------------------------------
    def user_info(self, cls_fields: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if cls_fields:
            out.update(LastSeenDisplayName=self.display_name, LastSeenDisplayNameType=MEMBERSHIP_TYPE)
        out.update(
            iconPath="/img/theme/bungienet/icons/steamLogo.png",
            crossSaveOverride=MEMBERSHIP_TYPE,
            applicableMembershipTypes=[MEMBERSHIP_TYPE],
            isPublic=True,
            membershipType=MEMBERSHIP_TYPE,
            membershipId=self.destiny_membership_id,
            displayName=self.display_name,
            bungieGlobalDisplayName=self.display_name,
            bungieGlobalDisplayNameCode=self.name_code,
        )
        return out

    def memberships(self) -> dict[str, Any]:
        """User.UserMembershipData."""
        return {
            "destinyMemberships": [self.user_info(cls_fields=True)],
            "primaryMembershipId": self.destiny_membership_id,
            "bungieNetUser": {
                "membershipId": self.bungie_membership_id,
                "uniqueName": self.bungie_name,
                "normalizedName": self.bungie_name.upper(),
                "displayName": self.display_name,
                "profilePicture": 70675,
                "profileTheme": 1249,
                "userTitle": 0,
                "successMessageFlags": "0",
                "isDeleted": False,
                "about": "",
                "firstAccess": "2017-09-06T17:00:00.000Z",
                "lastUpdate": "2026-06-01T12:00:00.000Z",
                "showActivity": True,
                "locale": "en",
                "localeInheritDefault": True,
                "showGroupMessaging": True,
                "profilePicturePath": "/img/profile/avatars/default_avatar.gif",
                "profileThemeName": "d2_25",
                "userTitleDisplay": "Newbie",
                "statusText": "",
                "statusDate": "0001-01-01T00:00:00Z",
                "steamDisplayName": self.display_name,
                "cachedBungieGlobalDisplayName": self.display_name,
                "cachedBungieGlobalDisplayNameCode": self.name_code,
            },
        }

    def character(self, char: tuple[Any, ...], now: str) -> dict[str, Any]:
        char_id, class_hash, class_type, race_hash, race_type, gender_hash, gender_type = char
        light = max((i.power for i in self.equipped(char_id)), default=1800)
        return {
            "membershipId": self.destiny_membership_id,
            "membershipType": MEMBERSHIP_TYPE,
            "characterId": char_id,
            "dateLastPlayed": now,
            "minutesPlayedThisSession": "42",
            "minutesPlayedTotal": "123456",
            "light": light,
            "stats": {"1935470627": light},
            "raceHash": race_hash,
            "genderHash": gender_hash,
            "classHash": class_hash,
            "raceType": race_type,
            "classType": class_type,
            "genderType": gender_type,
            "emblemPath": icons.icon_path("emblem", key=f"emblem-{char_id}", ext="jpg"),
            "emblemBackgroundPath": icons.icon_path("emblem_wide", key=f"emblem-{char_id}", ext="jpg"),
            "emblemHash": 3115055261,
            "emblemColor": {"red": 2, "green": 3, "blue": 4, "alpha": 255},
            "levelProgression": {
                "progressionHash": 1716568313,
                "dailyProgress": 0,
                "dailyLimit": 0,
                "weeklyProgress": 0,
                "weeklyLimit": 0,
                "currentProgress": 196000,
                "level": 50,
                "levelCap": 50,
                "stepIndex": 50,
                "progressToNextLevel": 0,
                "nextLevelAt": 0,
            },
            "baseCharacterLevel": 50,
            "percentToNextLevel": 0.0,
        }

    def profile(
        self,
        components: set[int],
        authorized: bool,
        rolls: Callable[[OwnedItem], Roll] | None = None,
        *,
        fragments: bool = False,
    ) -> dict[str, Any]:
        """Destiny.Responses.DestinyProfileResponse for the requested components.

        Without a valid token, private components come back as ``{"privacy": 2}`` with no
        data, as Bungie does for a profile whose inventory is not public. ``rolls`` gives
        each instance's roll (sockets, plugs, stats, state bits, energy); ``fragments``
        embeds each roll's pre-serialised JSON (``orjson.Fragment``) instead of its dicts.
        """

        rolled: dict[str, Roll] = {}
        if rolls is not None and components & {102, 201, 205, 300, 304, 305, 310}:
            rolled = {i.key: rolls(i) for i in self.items.values() if i.instanced}

        def roll(item: OwnedItem) -> Roll:
            return rolled.get(item.key, EMPTY_ROLL)

        def component(item: OwnedItem) -> dict[str, Any]:
            return item.component(roll(item).state)

        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out: dict[str, Any] = {"responseMintedTimestamp": now, "secondaryComponentsMintedTimestamp": now}

        def wrap(data: Any, private: bool = False) -> dict[str, Any]:
            if private and not authorized:
                return {"privacy": 2}
            return {"data": data, "privacy": 1}

        if 100 in components:
            out["profile"] = wrap(
                {
                    "userInfo": self.user_info(),
                    "dateLastPlayed": now,
                    "versionsOwned": 2147483647,
                    "characterIds": self.character_ids,
                    "seasonHashes": [],
                    "seasonPassHashes": [],
                    "eventCardHashesOwned": [],
                    "currentGuardianRank": 6,
                    "lifetimeHighestGuardianRank": 11,
                    "renewedGuardianRank": 0,
                }
            )
        if 102 in components:
            items = [component(i) for i in self.items.values() if i.place == "vault" or (i.character_id is None)]
            out["profileInventory"] = wrap({"items": items}, private=True)
        if 103 in components:
            glimmer = {
                "itemHash": 3159615086,
                "quantity": 250000,
                "bindStatus": 0,
                "location": 0,
                "bucketHash": 2689798308,
                "transferStatus": 2,
                "lockable": False,
                "state": 0,
                "isWrapper": False,
                "tooltipNotificationIndexes": [],
            }
            out["profileCurrencies"] = wrap({"items": [glimmer]}, private=True)
        if 200 in components:
            out["characters"] = wrap({c[0]: self.character(c, now) for c in self.characters})
        if 201 in components:
            out["characterInventories"] = wrap(
                {
                    cid: {
                        "items": [
                            component(i)
                            for i in self.items.values()
                            if i.character_id == cid and i.place in ("inventory", "postmaster")
                        ]
                    }
                    for cid in self.character_ids
                },
                private=True,
            )
        if 205 in components:
            out["characterEquipment"] = wrap(
                {cid: {"items": [component(i) for i in self.equipped(cid)]} for cid in self.character_ids}
            )
        item_components: dict[str, Any] = {}
        visible = [i for i in self.items.values() if i.instanced and (authorized or i.place == "equipped")]
        if 300 in components:
            item_components["instances"] = wrap({i.key: i.instance(roll(i).energy) for i in visible})
        if 304 in components:
            item_components["stats"] = wrap(
                {i.key: roll(i).stats_json if fragments else roll(i).stats for i in visible}
            )
        if 305 in components:
            item_components["sockets"] = wrap(
                {i.key: roll(i).sockets_json if fragments else roll(i).sockets for i in visible}
            )
        if 310 in components:
            plugs = {
                i.key: r.reusable_plugs_json if fragments else r.reusable_plugs
                for i in visible
                if (r := roll(i)).reusable_plugs is not None
            }
            item_components["reusablePlugs"] = wrap(plugs)
        if item_components or components & {300, 304, 305, 310}:
            out["itemComponents"] = item_components
        return out

    def state(self) -> dict[str, Any]:
        """The whole state, for tests: where every item is."""
        return {
            "bungieName": self.bungie_name,
            "membershipType": self.membership_type,
            "destinyMembershipId": self.destiny_membership_id,
            "bungieMembershipId": self.bungie_membership_id,
            "characters": self.character_ids,
            "vaultCapacity": self.vault_capacity,
            "items": [asdict(i) for i in self.items.values()],
        }
