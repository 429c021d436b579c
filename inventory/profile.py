"""A player's Destiny profile (Bungie's GetProfile ``Response``), parsed once.

`Profile` is what the rest of the app passes around instead of Bungie's raw JSON: the items
the player owns with where each one is (`OwnedItem`), the characters, the item instances and
sockets components, and Bungie's ``responseMintedTimestamp``. It knows the JSON paths of
those components, so nothing else in DVR does.

A profile is never changed in place: `Profile.moved` returns a new one with an item moved
(what DVR applies after a move Bungie accepted, since Bungie's own profile cache keeps
answering the old location for a while). It is stored as JSON bytes (`to_json` /
`from_json`), so a saved profile costs a copy to keep and is decoded only when used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypedDict, cast

import orjson
from django.utils.dateparse import parse_datetime

# Bungie's bucket hashes are stable across manifests.
VAULT_BUCKET = 138197802
POSTMASTER_BUCKET = 215593132
# DestinyItemComponent.location (ItemLocation): 1 on a character, 2 in the vault.
ON_CHARACTER, IN_VAULT = 1, 2
# DestinyItemComponent.transferStatus: 1 ItemIsEquipped, 0 CanTransfer.
CAN_TRANSFER, IS_EQUIPPED = 0, 1
# DestinyItemComponent.state (ItemState, a bit field).
LOCKED, MASTERWORK, CRAFTED = 1, 4, 8


# --- the shapes of Bungie's JSON that DVR reads (Destiny.Responses.DestinyProfileResponse) ----------
class ItemComponent(TypedDict, total=False):
    """Destiny.Entities.Items.DestinyItemComponent (int64 ids are strings on the wire)."""

    itemHash: int
    itemInstanceId: str
    quantity: int
    bucketHash: int
    location: int
    transferStatus: int
    state: int  # ItemState bits: Locked 1, Tracked 2, Masterwork 4, Crafted 8, HighlightedObjective 16


class CharacterComponent(TypedDict, total=False):
    """Destiny.Entities.Characters.DestinyCharacterComponent."""

    characterId: str
    classHash: int
    classType: int  # DestinyClass: 0 Titan, 1 Hunter, 2 Warlock
    raceHash: int
    light: int
    emblemPath: str
    emblemBackgroundPath: str


class StatValue(TypedDict, total=False):
    statHash: int
    value: int


class InstanceComponent(TypedDict, total=False):
    """Destiny.Entities.Items.DestinyItemInstanceComponent."""

    damageType: int
    primaryStat: StatValue


class SocketState(TypedDict, total=False):
    plugHash: int
    isEnabled: bool
    isVisible: bool


class SocketsComponent(TypedDict, total=False):
    """Destiny.Entities.Items.DestinyItemSocketsComponent."""

    sockets: list[SocketState]


class ProfileResponse(TypedDict, total=False):
    """The components DVR asks for, each ``{"data": ..., "privacy": ...}`` (data absent when
    private). Only the keys DVR reads are named here."""

    responseMintedTimestamp: str
    profileInventory: dict[str, Any]  # data: {items: [ItemComponent]}
    characterInventories: dict[str, Any]  # data: {characterId: {items: [ItemComponent]}}
    characterEquipment: dict[str, Any]  # data: {characterId: {items: [ItemComponent]}}
    characters: dict[str, Any]  # data: {characterId: CharacterComponent}
    itemComponents: dict[str, Any]  # instances / stats / sockets / reusablePlugs: {data: {itemInstanceId: ...}}


Location = Literal["character", "vault", "postmaster"]
Destination = Literal["vault", "character", "equipped"]


@dataclass(slots=True)  # ~1,200 per profile: not frozen, which made building them ~3x slower
class OwnedItem:
    """One item the player owns and where it is (its fields read from ``raw`` once).
    Read it; never change it."""

    raw: ItemComponent
    location: Location
    owner: str | None  # the character holding it (its inventory, equipment or postmaster)
    equipped: bool
    instance_id: str | None
    item_hash: int
    quantity: int
    bucket_hash: int

    @classmethod
    def of(cls, raw: ItemComponent, location: Location, owner: str | None, equipped: bool) -> OwnedItem:
        # Positional: a profile builds ~1,200 of these on every page view.
        return cls(raw, location, owner, equipped, raw.get("itemInstanceId"), int(raw.get("itemHash") or 0),
                   int(raw.get("quantity") or 1), int(raw.get("bucketHash") or 0))

    @property
    def state(self) -> int:
        """Bungie's ItemState bits (`LOCKED`, `MASTERWORK`, `CRAFTED`); 0 when absent or not a number."""
        state = self.raw.get("state")
        return state if isinstance(state, int) else 0

    @property
    def key(self) -> str:
        """The instance id, or "<owner or vault>-<hash>" for an uninstanced stack."""
        return self.instance_id or f"{self.owner or 'vault'}-{self.item_hash}"


class ProfileOutOfStep(Exception):
    """The item is not where this profile says (the profile and the item disagree)."""


class Profile:
    """A GetProfile ``Response``, parsed once. Read it; never change it (see `moved`)."""

    __slots__ = ("_by_instance", "_json", "_response", "characters", "instances", "items", "minted", "reusable_plugs",
                 "sockets", "stats")

    def __init__(self, response: ProfileResponse, *, json: bytes | None = None) -> None:
        self._response = response
        self._json = json  # the bytes it was read from, when it was (`to_json` returns them)
        self.items: tuple[OwnedItem, ...] = tuple(_owned_items(response))
        self.characters = cast(dict[str, CharacterComponent], _data(response.get("characters")))
        components = response.get("itemComponents") or {}
        self.instances = cast(dict[str, InstanceComponent], _data(components.get("instances")))
        self.sockets = cast(dict[str, SocketsComponent], _data(components.get("sockets")))
        # Components 304 (ItemStats) and 310 (ItemReusablePlugs), what an item's roll reads.
        self.stats: dict[str, Any] = _data(components.get("stats"))
        self.reusable_plugs: dict[str, Any] = _data(components.get("reusablePlugs"))
        self.minted = _parse_time(response.get("responseMintedTimestamp"))
        self._by_instance: dict[str, OwnedItem] | None = None  # built by the first `find`: a page view needs none

    @classmethod
    def from_json(cls, data: bytes) -> Profile:
        """The profile of JSON bytes: a ``Response`` (`to_json`), or Bungie's whole
        envelope around one, as GetProfile's body came (a ``Response`` has no ErrorCode)."""
        parsed = orjson.loads(data)
        if isinstance(parsed, dict) and "ErrorCode" in parsed:
            parsed = parsed.get("Response")
        return cls(cast(ProfileResponse, parsed if isinstance(parsed, dict) else {}), json=data)

    @property
    def response(self) -> ProfileResponse:
        """GetProfile's ``Response`` as read. Read it; never change it."""
        return self._response

    def to_json(self) -> bytes:
        """JSON bytes `from_json` reads back: the ones it was read from, if any (no
        second encoding of ~2.6 MB on every page view)."""
        return self._json if self._json is not None else orjson.dumps(self._response)

    def find(self, instance_id: str) -> OwnedItem | None:
        """The item with this instance id, if the player owns it."""
        if self._by_instance is None:
            self._by_instance = {item.instance_id: item for item in self.items if item.instance_id}
        return self._by_instance.get(instance_id)

    def moved(
        self, item: OwnedItem, *, to: Destination, at: datetime, character: str | None = None, bucket: int = 0
    ) -> Profile:
        """A copy with ``item`` taken out of where it is and put in the vault, in
        ``character``'s inventory or equipped on ``character`` (the item equipped in that
        bucket before goes to the character's inventory). ``bucket`` is the item's own
        bucket (its definition's; 0: keep the one it has), ``at`` the copy's minted time:
        newer than anything Bungie minted before the move, so Bungie's cached answers
        are discarded. Raises `ProfileOutOfStep` when the item is not where it says."""
        response = _with_own_item_lists(self._response)
        try:
            raw = _take(response, item)
            _put(response, raw, to=to, character=character, bucket=bucket)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ProfileOutOfStep(item.instance_id) from exc
        response["responseMintedTimestamp"] = at.isoformat().replace("+00:00", "Z")
        return Profile(cast(ProfileResponse, response))


# --- reading the components ------------------------------------------------------------------------
def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:  # well formed but impossible (a 13th month)
        return None


def _data(component: object) -> dict[str, Any]:
    data = component.get("data") if isinstance(component, dict) else None
    return data if isinstance(data, dict) else {}


def _items_of(component: object) -> list[ItemComponent]:
    items = _data(component).get("items")
    return items if isinstance(items, list) else []


def _per_character(component: object) -> dict[str, list[ItemComponent]]:
    return {cid: (v or {}).get("items") or [] for cid, v in _data(component).items()}


def _owned_items(response: ProfileResponse) -> list[OwnedItem]:
    """Everything the player owns: the vault (profile inventory, vault bucket or location),
    then what each character has equipped, then each character's inventory and postmaster."""
    of = OwnedItem.of
    found = [
        of(raw, "vault", None, False)
        for raw in _items_of(response.get("profileInventory"))
        if raw.get("bucketHash") == VAULT_BUCKET or raw.get("location") == IN_VAULT
    ]
    for owner, items in _per_character(response.get("characterEquipment")).items():
        found.extend(of(raw, "character", owner, True) for raw in items)
    for owner, items in _per_character(response.get("characterInventories")).items():
        for raw in items:
            found.append(of(raw, "postmaster" if raw.get("bucketHash") == POSTMASTER_BUCKET else "character", owner,
                            False))
    return found


# --- a moved copy ------------------------------------------------------------------------------------
def _with_own_item_lists(response: ProfileResponse) -> dict[str, Any]:
    """A shallow copy whose item lists (and the dicts above them) are its own: a move
    replaces item dicts, never changes one, so the ~1,200 items themselves are shared."""
    out: dict[str, Any] = dict(response)
    vault = out.get("profileInventory")
    if isinstance(vault, dict) and isinstance(vault.get("data"), dict) and isinstance(vault["data"].get("items"), list):
        out["profileInventory"] = {**vault, "data": {**vault["data"], "items": list(vault["data"]["items"])}}
    for name in ("characterInventories", "characterEquipment"):
        component = out.get(name)
        if isinstance(component, dict) and isinstance(component.get("data"), dict):
            out[name] = {**component, "data": {
                cid: {**v, "items": list(v["items"])} if isinstance(v, dict) and isinstance(v.get("items"), list)
                else v
                for cid, v in component["data"].items()
            }}
    return out


def _take(response: dict[str, Any], item: OwnedItem) -> ItemComponent:
    if item.location == "vault":
        items = response["profileInventory"]["data"]["items"]
    elif item.equipped:
        items = response["characterEquipment"]["data"][item.owner]["items"]
    else:
        items = response["characterInventories"]["data"][item.owner]["items"]
    for index, raw in enumerate(items):
        if raw.get("itemInstanceId") == item.instance_id:
            return cast(ItemComponent, items.pop(index))
    raise KeyError(item.instance_id)


def _put(
    response: dict[str, Any], raw: ItemComponent, *, to: Destination, character: str | None, bucket: int
) -> None:
    placed = cast(ItemComponent, dict(raw))  # a new dict: the old profile still holds ``raw``
    if to == "vault":
        placed["bucketHash"], placed["location"], placed["transferStatus"] = VAULT_BUCKET, IN_VAULT, CAN_TRANSFER
        response["profileInventory"]["data"]["items"].append(placed)
        return
    placed["bucketHash"] = bucket or raw.get("bucketHash", 0)
    placed["location"] = ON_CHARACTER
    if to == "equipped":
        equipment = response["characterEquipment"]["data"][character]["items"]
        for index, other in enumerate(equipment):
            if other.get("bucketHash") == placed["bucketHash"]:
                # Equipped in that bucket before: to the character's inventory, same bucket.
                _put(response, equipment.pop(index), to="character", character=character, bucket=0)
                break
        placed["transferStatus"] = IS_EQUIPPED
        equipment.append(placed)
    else:
        placed["transferStatus"] = CAN_TRANSFER
        response["characterInventories"]["data"][character]["items"].append(placed)
