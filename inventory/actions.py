"""Moving and equipping items: Bungie's TransferItem, EquipItem and PullFromPostmaster.

Each action checks the item against the player's own profile first (an id from someone
else's inventory is refused before Bungie is asked), paces calls per account (Bungie
allows about one transfer or equip per 100 ms per user), waits out throttling with
backoff, and turns Bungie's refusals into words a player understands. Every call to
Bungie, and its answer, goes into the player's journal (`inventory.journal`). After a move that
Bungie accepted, the saved profile is updated in place: Bungie's own profile cache keeps
answering the old location for a while, and the page must not show the item moving back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from dvr.accounts.models import BungieAccount
from dvr.accounts.tokens import LoginRequired, with_token_retry
from dvr.lib import bungie
from dvr.lib.bungie import PlatformErrorCode as Code
from dvr.lib.cache import cache_or
from dvr.lib.retry import RetryPolicy, call_with_retries
from inventory import filters
from inventory.annotations import annotations_for
from inventory.fetch import primary_membership, profile_fetch
from inventory.journal import Step, journal_record
from inventory.models import JournalAction
from inventory.page import ANY_CLASS, CLASSES, ITEMS, display_name, item_views
from inventory.profile import Destination, OwnedItem, Profile, ProfileOutOfStep
from inventory.search import NOTE_KEYWORDS
from inventory.snapshots import forget_fresh, snapshot_load, snapshot_save
from manifest.lookup import Definitions, definitions, lookup

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


class Outcome(StrEnum):
    DONE = "done"  # Bungie did it, or there was nothing to do
    REFUSED = "refused"  # Bungie or DVR said no to this one; another may work
    UNANSWERED = "unanswered"  # no usable answer: Bungie may or may not have acted
    UNREACHABLE = "unreachable"  # the profile could not be read
    THROTTLED = "throttled"  # Bungie kept limiting us after the backoff
    MAINTENANCE = "maintenance"  # Bungie is down for maintenance


# The next action would fail the same way: a loop of moves stops at once.
STOPPING = frozenset({Outcome.THROTTLED, Outcome.MAINTENANCE})


@dataclass(frozen=True)
class ActionResult:
    outcome: Outcome
    message: str  # what the player is told

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.DONE

    @property
    def stop(self) -> bool:
        """Bungie is throttling or in maintenance: don't try the next move now."""
        return self.outcome in STOPPING

    @property
    def level(self) -> str:
        return "success" if self.ok else "error"


class _Refused(Exception):
    def __init__(self, message: str, outcome: Outcome = Outcome.REFUSED, *, error: bungie.BungieError | None = None
                 ) -> None:
        super().__init__(message)
        self.message = message
        self.outcome = outcome
        self.error = error  # what Bungie answered, when this came from an answer (for the journal)


def _pace(account: BungieAccount, *, transfer: bool) -> None:
    """Keep at least PACE_SECONDS between this account's actions, and
    ``BUNGIE_TRANSFER_PACE_SECONDS`` between its transfers (Bungie allows about one a
    second per account), across processes. A courtesy: with the cache down, no pacing
    (a throttled call is then waited out), never a failed move."""
    pace_for = [(f"pace:{account.pk}", PACE_SECONDS)]
    if transfer:
        pace_for.append((f"pace:{account.pk}:transfer", settings.BUNGIE_TRANSFER_PACE_SECONDS))

    def pace() -> None:
        for key, seconds in pace_for:
            last = cache.get(key)
            if last is not None:
                wait = last + seconds - time.time()
                if wait > 0:
                    time.sleep(min(wait, seconds))
        now = time.time()
        cache.set_many({key: now for key, _ in pace_for}, timeout=10)

    cache_or(pace, None, what="pacing")


def _post(account: BungieAccount, path: str, body: dict[str, Any], *, step: Step) -> None:
    """POST an action (see `_call`) and keep it in the player's journal with Bungie's
    answer, whatever it is: the one place actions call Bungie."""
    try:
        _call(account, path, body)
    except _Refused as refused:
        error = refused.error
        journal_record(account=account, step=step, error_code=error.error_code if error else None,
                       error_status=error.error_status if error else "", explanation=refused.message)
        raise
    except LoginRequired:
        journal_record(account=account, step=step, error_code=None,
                       explanation="Bungie refused DVR's login for you, so nothing was asked: log in again.")
        raise
    journal_record(account=account, step=step, error_code=Code.Success)


def _call(account: BungieAccount, path: str, body: dict[str, Any]) -> None:
    """POST an action, waiting out throttling (ThrottleSeconds, else exponential backoff)."""

    def once(attempt: int) -> None:
        _pace(account, transfer=path.endswith("/TransferItem/"))
        with_token_retry(account, lambda token: bungie.client().post(path, json=body, access_token=token))

    try:
        call_with_retries(
            once,
            policy=THROTTLE_POLICY,
            retryable=lambda exc: isinstance(exc, bungie.BungieThrottled),
            hint=lambda exc: exc.throttle_seconds if isinstance(exc, bungie.BungieError) else 0.0,
            what=f"POST {path} account={account.pk}",
        )
    except bungie.BungieThrottled as exc:
        raise _Refused("Bungie is limiting how fast items can move right now. Wait a moment and try again.",
                       Outcome.THROTTLED, error=exc) from None
    except bungie.BungieAuthError:
        raise LoginRequired("Bungie refused the player's token for an action") from None
    except bungie.BungieMaintenance as exc:
        raise _Refused("Bungie is down for maintenance: items can't be moved right now.",
                       Outcome.MAINTENANCE, error=exc) from None
    except bungie.BungieTransportError as exc:
        # No usable answer (a timeout, a 500, an HTML page): Bungie may or may not have
        # acted, and a POST is never retried. Say so rather than "refused".
        logger.warning("bungie action unanswered account=%s error=%s", account.pk, exc)
        forget_fresh(account=account)  # "the page shows where your items are now": it asks Bungie
        raise _Refused(UNANSWERED, Outcome.UNANSWERED) from None
    except bungie.BungieError as exc:
        if exc.error_code == Code.DestinyItemNotFound:
            forget_fresh(account=account)  # "the page has been refreshed": the next one asks Bungie
        if exc.error_code in REFUSALS:
            raise _Refused(REFUSALS[exc.error_code], error=exc) from None
        logger.warning("bungie action failed account=%s error=%s", account.pk, exc)
        raise _Refused(f"Bungie refused: {exc.message}", error=exc) from None


# --- the item, from the player's own profile --------------------------------------------------
def _load(account: BungieAccount, item_id: str) -> tuple[Profile, OwnedItem]:
    """The profile and the item, from the saved profile or, failing that, a fresh one."""
    saved = snapshot_load(account=account)
    if saved is not None and (owned := saved.profile.find(item_id)) is not None:
        return saved.profile, owned
    profile, _ = profile_fetch(account=account, saved=saved)
    owned = profile.find(item_id)
    if owned is None:
        raise _Refused("That item is not in your inventory.")
    return profile, owned


# --- keeping the saved profile true after a move ----------------------------------------------
def _home_bucket(item_hash: int) -> int:
    definition = definitions(ITEMS, [item_hash]).get(item_hash) or {}
    return int((definition.get("inventory") or {}).get("bucketTypeHash") or 0)


def _save_moved(
    account: BungieAccount, profile: Profile, owned: OwnedItem, *, to: Destination, character: str | None = None
) -> Profile:
    """Save ``profile`` with ``owned`` moved, and return what was saved (``profile``
    itself when the move no longer fits it)."""
    bucket = 0 if to == "vault" else _home_bucket(owned.item_hash)
    try:
        updated = profile.moved(owned, to=to, character=character, bucket=bucket, at=timezone.now())
    except ProfileOutOfStep:
        logger.info("saved profile out of step after a move; it is refetched next time")
        return profile
    snapshot_save(account=account, profile=updated)
    return updated


# --- saying which item and where --------------------------------------------------------------
EXOTIC = 6  # TierType


@dataclass(frozen=True)
class _Names:
    """The item's name and the characters' as a player says them ("your Hunter")."""

    item: str
    characters: dict[str, str]
    item_class: int | None  # the item's classType (3: any class), from the same lookup

    def of(self, destination: str | None) -> str:
        return "the vault" if destination == "vault" else self.characters.get(destination or "", "that character")


def _summaries(profile: Profile, item_hashes: list[int]) -> tuple[Definitions, Definitions]:
    """(item summaries, class summaries): one lookup for what an action names."""
    classes = [c.get("classHash") or 0 for c in profile.characters.values()]
    found = lookup({ITEMS: item_hashes, CLASSES: classes}, view="summary")
    return found[ITEMS], found[CLASSES]


def _names(profile: Profile, owned: OwnedItem) -> _Names:
    items, classes = _summaries(profile, [owned.item_hash])
    characters = {
        cid: f"your {display_name(classes.get(c.get('classHash') or 0), 'Guardian')}"
        for cid, c in profile.characters.items()
    }
    item = items.get(owned.item_hash)
    item_class = (item or {}).get("classType")
    return _Names(item=display_name(item, "That item"), characters=characters,
                  item_class=item_class if isinstance(item_class, int) else None)


def _check_class(profile: Profile, character_id: str, names: _Names) -> None:
    """Refuse, before Bungie is asked, to equip a class item on another class."""
    item_class = names.item_class
    character_class = profile.characters.get(character_id, {}).get("classType")
    if isinstance(item_class, int) and item_class != ANY_CLASS and character_class is not None \
            and item_class != character_class:
        raise _Refused(f"{names.item} can't be equipped by {names.of(character_id)}: it is for another class.")


def _unequip(account: BungieAccount, profile: Profile, owned: OwnedItem, names: _Names) -> tuple[Profile, str]:
    """Bungie won't move an equipped item: equip another from the same slot on that
    character first (as DIM does), preferring one that is not exotic and fits the class.
    Returns the profile after that and the replacement's name."""
    character = owned.owner or ""
    candidates = [o for o in profile.items if o.owner == character and o.location == "character" and not o.equipped
                  and o.instance_id and o.bucket_hash == owned.bucket_hash]
    summaries = _summaries(profile, [o.item_hash for o in candidates])[0] if candidates else {}
    character_class = profile.characters.get(character, {}).get("classType")

    def fits(o: OwnedItem) -> bool:
        item_class = (summaries.get(o.item_hash) or {}).get("classType")
        return not isinstance(item_class, int) or item_class in (ANY_CLASS, character_class)

    ranked = sorted((o for o in candidates if fits(o)),
                    key=lambda o: (summaries.get(o.item_hash) or {}).get("inventory", {}).get("tierType") == EXOTIC)
    if not ranked:
        raise _Refused(f"{names.item} is equipped and nothing else in that slot on {names.of(character)} can "
                       "take its place. Equip something else there first.")
    replacement = ranked[0]
    replacement_name = display_name(summaries.get(replacement.item_hash), "another item")
    membership = primary_membership(account)
    _post(account, "/Destiny2/Actions/Items/EquipItem/", {
        "itemId": replacement.instance_id, "characterId": character, "membershipType": membership.membership_type,
    }, step=Step(JournalAction.EQUIP, replacement.item_hash, replacement.instance_id, replacement_name,
                 names.of(character), f"equipped on {names.of(character)}, in place of {names.item}"))
    updated = _save_moved(account, profile, replacement, to="equipped", character=character)
    return updated, replacement_name


# --- the actions -------------------------------------------------------------------------------
def _transfer(account: BungieAccount, owned: OwnedItem, names: _Names, *, to_vault: bool, character: str) -> None:
    membership = primary_membership(account)
    source, destination = (names.of(character), "the vault") if to_vault else ("the vault", names.of(character))
    _post(account, "/Destiny2/Actions/Items/TransferItem/", {
        "itemReferenceHash": owned.raw.get("itemHash"), "stackSize": owned.raw.get("quantity") or 1,
        "transferToVault": to_vault, "itemId": owned.instance_id, "characterId": character,
        "membershipType": membership.membership_type,
    }, step=Step(JournalAction.TRANSFER, owned.item_hash, owned.instance_id, names.item, source, destination))


def _move(account: BungieAccount, profile: Profile, owned: OwnedItem, destination: str, names: _Names) -> str:
    """Move to ``destination`` ("vault" or a character id); returns what happened."""
    if owned.location == "postmaster":
        raise _Refused("Pull that item from the postmaster first.")
    if destination == owned.owner or (destination == "vault" and owned.location == "vault"):
        return f"{names.item} is already there."
    done = ""
    if owned.equipped:
        profile, replacement = _unequip(account, profile, owned, names)
        owned = profile.find(owned.instance_id or "") or owned
        done = f"Equipped {replacement} on {names.of(owned.owner)} in its place, and moved"
    if owned.location == "character":
        _transfer(account, owned, names, to_vault=True, character=owned.owner or "")
        profile = _save_moved(account, profile, owned, to="vault")
        if destination == "vault":
            return f"{done or 'Moved'} {names.item} to the vault."
        owned = profile.find(owned.instance_id or "") or OwnedItem.of(owned.raw, "vault", None, False)
        try:
            _transfer(account, owned, names, to_vault=False, character=destination)
        except _Refused as refused:
            # The first half worked: the item is safe in the vault. Say exactly that.
            raise _Refused(f"{names.item} is in the vault: the move to {names.of(destination)} failed. "
                           f"{refused.message}", refused.outcome) from None
    else:
        _transfer(account, owned, names, to_vault=False, character=destination)
    _save_moved(account, profile, owned, to="character", character=destination)
    return f"{done or 'Moved'} {names.item} to {names.of(destination)}."


def _run(action: Callable[[], str]) -> ActionResult:
    try:
        return ActionResult(Outcome.DONE, action())
    except _Refused as refused:
        return ActionResult(refused.outcome, refused.message)
    except bungie.BungieError as exc:  # from reading the profile
        logger.warning("inventory action failed: %s", exc)
        return ActionResult(Outcome.UNREACHABLE, "Bungie could not be reached. Try again in a moment.")


def item_move(*, account: BungieAccount, item_id: str, destination: str) -> ActionResult:
    """Move an item to the vault or to a character (through the vault when it must)."""
    def act() -> str:
        profile, owned = _load(account, item_id)
        if destination != "vault" and destination not in profile.characters:
            raise _Refused("That character is not yours.")
        return _move(account, profile, owned, destination, _names(profile, owned))

    return _run(act)


def item_equip(*, account: BungieAccount, item_id: str, character_id: str) -> ActionResult:
    """Equip an item on a character, moving it there first when needed."""
    def act() -> str:
        profile, owned = _load(account, item_id)
        if character_id not in profile.characters:
            raise _Refused("That character is not yours.")
        names = _names(profile, owned)
        if owned.equipped and owned.owner == character_id:
            return f"{names.item} is already equipped on {names.of(character_id)}."
        _check_class(profile, character_id, names)
        moved = owned.owner != character_id or owned.location != "character"
        if moved:
            _move(account, profile, owned, character_id, names)
            profile, owned = _load(account, item_id)
        membership = primary_membership(account)
        try:
            _post(account, "/Destiny2/Actions/Items/EquipItem/", {
                "itemId": item_id, "characterId": character_id, "membershipType": membership.membership_type,
            }, step=Step(JournalAction.EQUIP, owned.item_hash, owned.instance_id, names.item,
                         names.of(character_id), f"equipped on {names.of(character_id)}"))
        except _Refused as refused:
            if not moved:
                raise
            # The move worked: say where the item is now, then why it is not equipped.
            raise _Refused(f"{names.item} is now on {names.of(character_id)}, but it could not be equipped: "
                           f"{refused.message}", refused.outcome) from None
        _save_moved(account, profile, owned, to="equipped", character=character_id)
        return f"Equipped {names.item} on {names.of(character_id)}."

    return _run(act)


def item_pull(*, account: BungieAccount, item_id: str) -> ActionResult:
    """Pull an item from its character's postmaster."""
    def act() -> str:
        profile, owned = _load(account, item_id)
        if owned.location != "postmaster":
            return "That item is not in the postmaster."
        membership = primary_membership(account)
        names = _names(profile, owned)
        _post(account, "/Destiny2/Actions/Items/PullFromPostmaster/", {
            "itemReferenceHash": owned.raw.get("itemHash"), "stackSize": owned.raw.get("quantity") or 1,
            "itemId": item_id, "characterId": owned.owner, "membershipType": membership.membership_type,
        }, step=Step(JournalAction.PULL, owned.item_hash, owned.instance_id, names.item,
                     f"the postmaster of {names.of(owned.owner)}", names.of(owned.owner)))
        _save_moved(account, profile, owned, to="character", character=owned.owner)
        return f"Pulled {names.item} from the postmaster to {names.of(owned.owner)}."

    return _run(act)


def items_vault_matching(*, account: BungieAccount, query_text: str) -> ActionResult:
    """Send every unequipped item on a character that matches the filter to the vault
    (at most BULK_LIMIT at a time, paced so Bungie's limits are not tripped). Only the
    items that could go are described and filtered, not the whole page."""
    query = filters.parse_query(query_text)
    if not query.active:
        return ActionResult(Outcome.REFUSED,
                            "Type a filter first: sending everything to the vault is not what you want.")
    saved = snapshot_load(account=account)
    profile = saved.profile if saved is not None else profile_fetch(account=account)[0]
    carried = [o for o in profile.items if o.location == "character" and not o.equipped and o.instance_id]
    views = item_views(profile=profile, owned=carried)
    # Tags and notes are the player's, read from the database only when the filter names them.
    matches = query.bind(views, notes=annotations_for(account=account)) if query.uses(*NOTE_KEYWORDS) \
        else query.matches
    keys = [i.instance_id for i in views if i.instance_id and matches(i)]
    moved, failures = 0, []
    for key in keys[:BULK_LIMIT]:
        result = item_move(account=account, item_id=key, destination="vault")
        if result.ok:
            moved += 1
        else:
            failures.append(result)
            if result.stop:
                break
    message = f"Sent {moved} item{'s' if moved != 1 else ''} to the vault."
    if len(keys) > BULK_LIMIT:
        message += f" {len(keys) - BULK_LIMIT} more match: run it again."
    if failures:
        message += f" {len(failures)} could not move: {failures[0].message}"
    return ActionResult(failures[0].outcome if failures else Outcome.DONE, message)
