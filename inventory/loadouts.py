"""Loadouts, as the player keeps them: named sets of item instances for a class.

This module is the database side only (list, create, rename, remove items, delete, the
names the search reads, DIM's loadouts imported); what needs the profile or Bungie
(saving a character's equipment, where each item is, applying) is `inventory.loadout_apply`.

Every function takes the account and finds a loadout by id among that account's only: an
id of another player's is None here and a 404 in the view.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from dvr.accounts.models import BungieAccount
from inventory.models import LOADOUT_NAME_LENGTH, DestinyClass, DimLoadout, Loadout, LoadoutApply, LoadoutItem
from manifest.lookup import lookup

MAX_LOADOUTS = 100  # per account
MAX_ITEMS = 50  # per loadout: a character's equipment and a bucket or two of spares
ITEMS = "DestinyInventoryItemDefinition"


class LoadoutRefused(ValueError):
    """A bad name, a duplicate, too many: said, nothing written."""


@dataclass(frozen=True)
class Chosen:
    """An item to keep in a loadout: its instance id, hash, name now, and whether to equip it."""

    instance_id: str
    item_hash: int
    name: str
    equip: bool


def loadouts_for(*, account: BungieAccount) -> list[Loadout]:
    """The player's loadouts by name, their items with them: two queries."""
    return list(Loadout.objects.filter(account=account).prefetch_related("items").order_by("name"))


@dataclass(frozen=True)
class LoadoutsOverview:
    """The loadouts page: the player's loadouts, DIM's waiting to be imported, the latest runs."""

    loadouts: list[Loadout]
    dim_waiting: int
    runs: list[LoadoutApply]


def loadouts_overview(*, account: BungieAccount) -> LoadoutsOverview:
    return LoadoutsOverview(loadouts_for(account=account), DimLoadout.objects.filter(account=account).count(),
                            list(LoadoutApply.objects.filter(account=account).order_by("-created_at", "-id")[:10]))


def loadout_get(*, account: BungieAccount, loadout_id: int) -> Loadout | None:
    return Loadout.objects.filter(account=account, pk=loadout_id).first()


def clean_name(name: str) -> str:
    name = " ".join("".join(ch for ch in name if ch.isprintable()).split())
    if not name:
        raise LoadoutRefused("Give the loadout a name.")
    if len(name) > LOADOUT_NAME_LENGTH:
        raise LoadoutRefused(f"A loadout's name can be at most {LOADOUT_NAME_LENGTH} characters long.")
    return name


def loadout_create(*, account: BungieAccount, name: str, class_type: int, items: Iterable[Chosen],
                   dim_id: str = "") -> Loadout:
    """A new loadout of ``items`` (the first of each instance id counts)."""
    name = clean_name(name)
    chosen = list({c.instance_id: c for c in reversed(list(items))}.values())[::-1]
    if not chosen:
        raise LoadoutRefused("A loadout needs at least one item.")
    if len(chosen) > MAX_ITEMS:
        raise LoadoutRefused(f"A loadout can hold at most {MAX_ITEMS} items.")
    if Loadout.objects.filter(account=account).count() >= MAX_LOADOUTS:
        raise LoadoutRefused(f"You have {MAX_LOADOUTS} loadouts already: delete one first.")
    try:
        with transaction.atomic():
            loadout = Loadout.objects.create(account=account, name=name, class_type=class_type, dim_id=dim_id)
            LoadoutItem.objects.bulk_create(
                LoadoutItem(loadout=loadout, instance_id=c.instance_id, item_hash=c.item_hash, name=c.name[:200],
                            equip=c.equip) for c in chosen)
    except IntegrityError:
        raise LoadoutRefused(f"You already have a loadout named “{name}”.") from None
    return loadout


def loadout_rename(*, account: BungieAccount, loadout_id: int, name: str) -> Loadout | None:
    loadout = loadout_get(account=account, loadout_id=loadout_id)
    if loadout is None:
        return None
    loadout.name = clean_name(name)
    try:
        with transaction.atomic():
            loadout.save(update_fields=["name", "updated_at"])
    except IntegrityError:
        raise LoadoutRefused(f"You already have a loadout named “{loadout.name}”.") from None
    return loadout


def loadout_remove_items(*, account: BungieAccount, loadout_id: int, item_ids: Iterable[int]) -> int | None:
    """Remove these items (LoadoutItem ids) from the loadout; how many; None: not the player's loadout."""
    loadout = loadout_get(account=account, loadout_id=loadout_id)
    if loadout is None:
        return None
    removed, _ = LoadoutItem.objects.filter(loadout=loadout, pk__in=list(item_ids)).delete()
    return removed


def loadout_delete(*, account: BungieAccount, loadout_id: int) -> bool:
    deleted, _ = Loadout.objects.filter(account=account, pk=loadout_id).delete()
    return bool(deleted)


def loadout_names_by_item(*, account: BungieAccount) -> dict[str, frozenset[str]]:
    """Instance id → the names (lowercase) of the player's loadouts holding it: one query,
    what ``is:inloadout`` and ``inloadout:"name"`` read."""
    names: dict[str, set[str]] = defaultdict(set)
    for instance_id, name in LoadoutItem.objects.filter(loadout__account=account).values_list(
            "instance_id", "loadout__name"):
        names[instance_id].add(name.lower())
    return {key: frozenset(value) for key, value in names.items()}


# --- DIM's loadouts, kept aside by a DIM backup import ------------------------------------------------
def _dim_items(data: dict[str, object], key: str, *, equip: bool) -> list[tuple[str, int, bool]]:
    found = []
    entries = data.get(key)
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        instance_id, item_hash = str(entry.get("id") or "").strip(), entry.get("hash")
        if instance_id.isascii() and instance_id.isdigit() and len(instance_id) <= 20 and instance_id != "0" \
                and isinstance(item_hash, int) and 0 < item_hash < 2**32:
            found.append((instance_id, item_hash, equip))
    return found


def _free_name(account: BungieAccount, name: str) -> str:
    taken = set(Loadout.objects.filter(account=account).values_list("name", flat=True))
    if name not in taken:
        return name
    for n in range(2, 100):
        candidate = f"{name[:LOADOUT_NAME_LENGTH - 5]} ({n})"
        if candidate not in taken:
            return candidate
    raise LoadoutRefused(f"You already have many loadouts named “{name}”.")


def loadouts_import_dim(*, account: BungieAccount) -> tuple[int, int]:
    """Turn the DIM loadouts kept aside into the player's loadouts: (imported, skipped:
    none of their items had an instance id DVR can use). Each one imported leaves the
    kept-aside list; a name already taken gets a number."""
    imported = skipped = 0
    for kept in DimLoadout.objects.filter(account=account).order_by("name", "pk"):
        data = kept.data if isinstance(kept.data, dict) else {}
        entries = _dim_items(data, "equipped", equip=True) + _dim_items(data, "unequipped", equip=False)
        class_type = data.get("classType")
        if not isinstance(class_type, int) or class_type not in DestinyClass.values:
            class_type = DestinyClass.ANY
        found = lookup({ITEMS: [h for _, h, _ in entries]}, view="summary")[ITEMS] if entries else {}
        chosen = [Chosen(i, h, str(((found.get(h) or {}).get("displayProperties") or {}).get("name") or
                                    f"Item {h}"), equip) for i, h, equip in entries]
        with transaction.atomic():
            if chosen and len(chosen) <= MAX_ITEMS:
                try:
                    name = clean_name((kept.name or "")[:LOADOUT_NAME_LENGTH])
                except LoadoutRefused:
                    name = "DIM loadout"
                name = _free_name(account, name)
                loadout_create(account=account, name=name, class_type=class_type, items=chosen, dim_id=kept.dim_id)
                imported += 1
            else:
                skipped += 1
            kept.delete()
    return imported, skipped
