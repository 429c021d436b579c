"""Moving and equipping items: Bungie's TransferItem, EquipItem and PullFromPostmaster.

Each action checks the item against the player's own profile first (an id from someone
else's inventory is refused before Bungie is asked), paces calls per account (Bungie
allows about one transfer or equip per 100 ms per user), waits out throttling with
backoff, and turns Bungie's refusals into words a player understands. After a move that
Bungie accepted, the saved profile is updated in place: Bungie's own profile cache keeps
answering the old location for a while, and the page must not show the item moving back.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from dvr.accounts.models import BungieAccount
from dvr.accounts.tokens import LoginRequired, with_token_retry
from dvr.lib import bungie
from dvr.lib.bungie import PlatformErrorCode as Code
from dvr.lib.retry import RetryPolicy, call_with_retries
from inventory import filters
from inventory.profile import (
    ITEMS,
    VAULT_BUCKET,
    build_page,
    primary_membership,
    profile_fetch,
    raw_items,
    snapshot_load,
    snapshot_save,
)
from manifest.lookup import definitions

logger = logging.getLogger(__name__)

PACE_SECONDS = 0.1
# A throttled action is tried 4 times in all, waiting 0.5, 1, 2 s (or ThrottleSeconds),
# and given up when the waiting would pass 10 s: the player is looking at the page.
THROTTLE_POLICY = RetryPolicy(budget=10.0, tries=4, base=0.5, cap=10.0)
BULK_LIMIT = 50

# Bungie's refusals, as a player would want them said.
REFUSALS: dict[int, str] = {
    Code.DestinyItemNotFound: (
        "That item is no longer where it was (it may already have moved). The page has been refreshed."
    ),
    Code.DestinyItemUniqueEquipRestricted: (
        "Only one exotic weapon and one exotic armor piece can be equipped at a time."
    ),
    Code.DestinyNoRoomInDestination: "There is no room for that item there. Make space and try again.",
    Code.DestinyUniquenessViolation: "You already have one of those, and only one is allowed.",
    Code.DestinyCannotPerformActionOnEquippedItem: "Unequip that item before moving it.",
    Code.DestinyCannotPerformActionAtThisLocation: (
        "That can't be done here (wrong class, or not possible in this place)."
    ),
    Code.DestinyCharacterNotInTower: "Go to orbit or a social space to equip that.",
}


UNANSWERED = ("Bungie did not answer properly, so DVR can't tell whether that worked. "
              "The page shows where your items are now.")


@dataclass
class ActionResult:
    ok: bool
    message: str

    @property
    def level(self) -> str:
        return "success" if self.ok else "error"


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _pace(account: BungieAccount) -> None:
    """Keep at least PACE_SECONDS between this account's actions, across processes."""
    key = f"pace:{account.pk}"
    try:
        last = cache.get(key)
        if last is not None:
            wait = last + PACE_SECONDS - time.time()
            if wait > 0:
                time.sleep(min(wait, PACE_SECONDS))
        cache.set(key, time.time(), timeout=10)
    except Exception:  # pacing is a courtesy; never fail a move because the cache is down
        logger.debug("pacing skipped: cache unavailable")


def _post(account: BungieAccount, path: str, body: dict[str, Any]) -> None:
    """POST an action, waiting out throttling (ThrottleSeconds, else exponential backoff)."""

    def once(attempt: int) -> None:
        _pace(account)
        with_token_retry(account, lambda token: bungie.client().post(path, json=body, access_token=token))

    try:
        call_with_retries(
            once,
            policy=THROTTLE_POLICY,
            retryable=lambda exc: isinstance(exc, bungie.BungieThrottled),
            hint=lambda exc: exc.throttle_seconds if isinstance(exc, bungie.BungieError) else 0.0,
            what=f"POST {path} account={account.pk}",
        )
    except bungie.BungieThrottled:
        raise _Refused("Bungie is limiting how fast items can move right now. Wait a moment and try again.") from None
    except bungie.BungieAuthError:
        raise LoginRequired("Bungie refused the player's token for an action") from None
    except bungie.BungieMaintenance:
        raise _Refused("Bungie is down for maintenance: items can't be moved right now.") from None
    except bungie.BungieTransportError as exc:
        # No usable answer (a timeout, a 500, an HTML page): Bungie may or may not have
        # acted, and a POST is never retried. Say so rather than "refused".
        logger.warning("bungie action unanswered account=%s error=%s", account.pk, exc)
        raise _Refused(UNANSWERED) from None
    except bungie.BungieError as exc:
        if exc.error_code in REFUSALS:
            raise _Refused(REFUSALS[exc.error_code]) from None
        logger.warning("bungie action failed account=%s error=%s", account.pk, exc)
        raise _Refused(f"Bungie refused: {exc.message}") from None


# --- the item, from the player's own profile --------------------------------------------------
@dataclass
class _Owned:
    raw: dict[str, Any]
    location: str  # character | vault | postmaster
    owner: str | None
    equipped: bool


def _find(profile: dict[str, Any], key: str) -> _Owned | None:
    for raw, location, owner, equipped in raw_items(profile):
        if raw.get("itemInstanceId") == key:
            return _Owned(raw, location, owner, equipped)
    return None


def _load(account: BungieAccount, key: str) -> tuple[dict[str, Any], _Owned]:
    """The profile and the item, from the saved profile or, failing that, a fresh one."""
    saved = snapshot_load(account)
    if saved is not None and (owned := _find(saved["data"], key)) is not None:
        return saved["data"], owned
    profile, _ = profile_fetch(account=account, saved=saved)
    owned = _find(profile, key)
    if owned is None:
        raise _Refused("That item is not in your inventory.")
    return profile, owned


def _characters(profile: dict[str, Any]) -> set[str]:
    return set(((profile.get("characters") or {}).get("data") or {}).keys())


# --- keeping the saved profile true after a move ----------------------------------------------
def _home_bucket(item_hash: int) -> int:
    definition = definitions(ITEMS, [item_hash]).get(item_hash) or {}
    return int((definition.get("inventory") or {}).get("bucketTypeHash") or 0)


def _remove(profile: dict[str, Any], owned: _Owned) -> dict[str, Any]:
    if owned.location == "vault":
        items = profile["profileInventory"]["data"]["items"]
    elif owned.equipped:
        items = profile["characterEquipment"]["data"][owned.owner]["items"]
    else:
        items = profile["characterInventories"]["data"][owned.owner]["items"]
    key = owned.raw.get("itemInstanceId")
    for index, raw in enumerate(items):
        if raw.get("itemInstanceId") == key:
            return items.pop(index)
    raise KeyError(key)


def _place(profile: dict[str, Any], raw: dict[str, Any], *, to: str, character: str | None = None) -> None:
    raw = dict(raw)
    if to == "vault":
        raw.update(bucketHash=VAULT_BUCKET, location=2, transferStatus=0)
        profile["profileInventory"]["data"]["items"].append(raw)
        return
    raw.update(bucketHash=_home_bucket(int(raw["itemHash"])) or raw.get("bucketHash"), location=1)
    if to == "equipped":
        equipment = profile["characterEquipment"]["data"][character]["items"]
        for index, other in enumerate(equipment):
            if other.get("bucketHash") == raw["bucketHash"]:
                _place(profile, equipment.pop(index), to="character", character=character)
                break
        raw["transferStatus"] = 1
        equipment.append(raw)
    else:
        raw["transferStatus"] = 0
        profile["characterInventories"]["data"][character]["items"].append(raw)


def _save_moved(
    account: BungieAccount, profile: dict[str, Any], change: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Save ``profile`` with ``change`` applied, and return what was saved (``profile``
    itself when the change no longer fits it)."""
    updated = copy.deepcopy(profile)
    try:
        change(updated)
    except (KeyError, TypeError):
        logger.info("saved profile out of step after a move; it is refetched next time")
        return profile
    # Newer than anything Bungie minted before the move: its cached answers are discarded.
    updated["responseMintedTimestamp"] = timezone.now().isoformat().replace("+00:00", "Z")
    snapshot_save(account=account, data=updated, minted=timezone.now())
    return updated


# --- the actions -------------------------------------------------------------------------------
def _transfer(account: BungieAccount, owned: _Owned, *, to_vault: bool, character: str) -> None:
    membership = primary_membership(account)
    _post(account, "/Destiny2/Actions/Items/TransferItem/", {
        "itemReferenceHash": owned.raw.get("itemHash"), "stackSize": owned.raw.get("quantity") or 1,
        "transferToVault": to_vault, "itemId": owned.raw.get("itemInstanceId"), "characterId": character,
        "membershipType": membership.membership_type,
    })


def _move(account: BungieAccount, profile: dict[str, Any], owned: _Owned, destination: str) -> str:
    """Move to ``destination`` ("vault" or a character id); returns what happened."""
    if owned.location == "postmaster":
        raise _Refused("Pull that item from the postmaster first.")
    if owned.equipped:
        raise _Refused(REFUSALS[Code.DestinyCannotPerformActionOnEquippedItem])
    if destination == owned.owner or (destination == "vault" and owned.location == "vault"):
        return "That item is already there."
    if owned.location == "character":
        _transfer(account, owned, to_vault=True, character=owned.owner or "")
        profile = _save_moved(account, profile, lambda p: _place(p, _remove(p, owned), to="vault"))
        if destination == "vault":
            return "Moved to the vault."
        owned = _find(profile, owned.raw["itemInstanceId"]) or _Owned(owned.raw, "vault", None, False)
        try:
            _transfer(account, owned, to_vault=False, character=destination)
        except _Refused as refused:
            # The first half worked: the item is safe in the vault. Say exactly that.
            raise _Refused(f"The item is in the vault: the move to the other character failed. {refused.message}")
    else:
        _transfer(account, owned, to_vault=False, character=destination)
    _save_moved(account, profile, lambda p: _place(p, _remove(p, owned), to="character", character=destination))
    return "Moved."


def _run(action: Callable[[], str]) -> ActionResult:
    try:
        return ActionResult(True, action())
    except _Refused as refused:
        return ActionResult(False, refused.message)
    except bungie.BungieError as exc:  # from reading the profile
        logger.warning("inventory action failed: %s", exc)
        return ActionResult(False, "Bungie could not be reached. Try again in a moment.")


def item_move(*, account: BungieAccount, item_id: str, destination: str) -> ActionResult:
    """Move an item to the vault or to a character (through the vault when it must)."""
    def act() -> str:
        profile, owned = _load(account, item_id)
        if destination != "vault" and destination not in _characters(profile):
            raise _Refused("That character is not yours.")
        return _move(account, profile, owned, destination)

    return _run(act)


def item_equip(*, account: BungieAccount, item_id: str, character_id: str) -> ActionResult:
    """Equip an item on a character, moving it there first when needed."""
    def act() -> str:
        profile, owned = _load(account, item_id)
        if character_id not in _characters(profile):
            raise _Refused("That character is not yours.")
        if owned.equipped and owned.owner == character_id:
            return "That item is already equipped."
        if owned.owner != character_id or owned.location != "character":
            _move(account, profile, owned, character_id)
            profile, owned = _load(account, item_id)
        membership = primary_membership(account)
        _post(account, "/Destiny2/Actions/Items/EquipItem/", {
            "itemId": item_id, "characterId": character_id, "membershipType": membership.membership_type,
        })
        _save_moved(account, profile, lambda p: _place(p, _remove(p, owned), to="equipped", character=character_id))
        return "Equipped."

    return _run(act)


def item_pull(*, account: BungieAccount, item_id: str) -> ActionResult:
    """Pull an item from its character's postmaster."""
    def act() -> str:
        profile, owned = _load(account, item_id)
        if owned.location != "postmaster":
            return "That item is not in the postmaster."
        membership = primary_membership(account)
        _post(account, "/Destiny2/Actions/Items/PullFromPostmaster/", {
            "itemReferenceHash": owned.raw.get("itemHash"), "stackSize": owned.raw.get("quantity") or 1,
            "itemId": item_id, "characterId": owned.owner, "membershipType": membership.membership_type,
        })
        _save_moved(account, profile, lambda p: _place(p, _remove(p, owned), to="character", character=owned.owner))
        return "Pulled from the postmaster."

    return _run(act)


def items_vault_matching(*, account: BungieAccount, query_text: str) -> ActionResult:
    """Send every unequipped item on a character that matches the filter to the vault
    (at most BULK_LIMIT at a time, paced so Bungie's limits are not tripped)."""
    query = filters.parse_query(query_text)
    if not query.active:
        return ActionResult(False, "Type a filter first: sending everything to the vault is not what you want.")
    saved = snapshot_load(account)
    profile = saved["data"] if saved else profile_fetch(account=account, saved=None)[0]
    page = build_page(account=account, profile=profile, query_text=query_text)
    keys = [i.instance_id for i in page.items.values()
            if i.location == "character" and not i.equipped and i.instance_id and query.matches(i)]
    moved, failures = 0, []
    for key in keys[:BULK_LIMIT]:
        result = item_move(account=account, item_id=key, destination="vault")
        if result.ok:
            moved += 1
        else:
            failures.append(result.message)
            if "limiting" in result.message or "maintenance" in result.message:
                break
    message = f"Sent {moved} item{'s' if moved != 1 else ''} to the vault."
    if len(keys) > BULK_LIMIT:
        message += f" {len(keys) - BULK_LIMIT} more match: run it again."
    if failures:
        message += f" {len(failures)} could not move: {failures[0]}"
    return ActionResult(not failures, message)

